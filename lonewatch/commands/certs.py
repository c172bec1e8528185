"""Make a private certificate authority and the broker's TLS certificate for
a lab installation, with the openssl command line:

    DIR/ca.crt      the CA certificate: on every device (provisioning copies it) and the gateway
    DIR/ca.key      the CA's private key: keep it off the broker, offline if you can
    DIR/broker.crt  the broker's certificate for the names given with --host
    DIR/broker.key  its private key: /etc/mosquitto/certs/, readable by mosquitto only

Run again with the same DIR to renew the broker's certificate: an existing CA
is kept, so devices need nothing new. Names that are IP addresses become IP
entries of the certificate, others DNS names; a device checks the name it
connects to against them."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CA_DAYS = 3650
# Clients refuse server certificates valid for more than 825 days (Apple's
# rule, followed by others); renewing yearly is the habit to keep.
BROKER_DAYS = 825


class CertError(Exception):
    pass


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="directory for ca.crt, ca.key, broker.crt, broker.key")
    parser.add_argument("--host", required=True, nargs="+", metavar="NAME",
                        help="host names or IP addresses the devices and the gateway use to reach the broker")
    parser.add_argument("--ca-name", default="lonewatch lab CA", help="the CA's common name")


def _openssl(*args: str) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise CertError("the openssl command is not installed (apt-get install openssl)")
    result = subprocess.run([exe, *args], capture_output=True, text=True)
    if result.returncode:
        raise CertError("openssl %s failed: %s" % (args[0], result.stderr.strip()))


def _san(host: str) -> str:
    try:
        return "IP:%s" % ipaddress.ip_address(host)
    except ValueError:
        return "DNS:%s" % host


def make(out: Path, hosts: list[str], ca_name: str = "lonewatch lab CA") -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {name: out / name for name in ("ca.crt", "ca.key", "broker.crt", "broker.key")}
    old = os.umask(0o077)  # keys are created unreadable to others
    try:
        if files["ca.key"].exists() != files["ca.crt"].exists():
            raise CertError("%s has only one of ca.crt and ca.key; restore the other or use a new directory" % out)
        if not files["ca.key"].exists():
            _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-days", str(CA_DAYS), "-subj", "/CN=" + ca_name,
                     "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                     "-keyout", str(files["ca.key"]), "-out", str(files["ca.crt"]))
            files["ca.crt"].chmod(0o644)
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            key, csr, ext = Path(tmp) / "broker.key", Path(tmp) / "broker.csr", Path(tmp) / "ext.cnf"
            ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                           "extendedKeyUsage=serverAuth\nsubjectAltName=%s\n" % ",".join(_san(h) for h in hosts))
            _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-subj", "/CN=" + hosts[0], "-keyout", str(key), "-out", str(csr))
            crt = Path(tmp) / "broker.crt"
            _openssl("x509", "-req", "-in", str(csr), "-CA", str(files["ca.crt"]), "-CAkey", str(files["ca.key"]),
                     "-CAserial", str(out / "ca.srl"), "-CAcreateserial",
                     "-days", str(BROKER_DAYS), "-extfile", str(ext), "-out", str(crt))
            # Both replaced only once both exist: a failed renewal leaves the old pair working.
            crt.chmod(0o644)
            os.replace(key, files["broker.key"])
            os.replace(crt, files["broker.crt"])
    finally:
        os.umask(old)
    return files


def run(args) -> int:
    try:
        files = make(args.out, args.host, args.ca_name)
    except (CertError, OSError) as e:
        print("lonewatch certs: %s" % e, file=sys.stderr)
        return 1
    for name, path in files.items():
        print("%-11s %s" % (name, path))
    print("Broker: copy broker.crt and broker.key to /etc/mosquitto/certs/ (docs/mosquitto.md).")
    print("Devices and the gateway: ca.crt (lonewatch provision --ca, [mqtt] ca_file).")
    return 0
