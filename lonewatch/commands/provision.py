"""Enroll a wearable over USB serial (the MicroPython raw REPL): copy the
firmware (compiled with mpy-cross), write the device's config with its own
new MQTT password and the CA that signed the broker's certificate, read
every file back and compare hashes, then register the device in the gateway
database and write its broker password line and ACL block, and reboot it.

Files go to the device as NAME.tmp and are renamed only once every one of
them has been verified, config.json last: a failed run leaves the device's
previous files in place. Nothing on the broker or in the database changes
until the device holds its new files. A device already enrolled needs
--replace (which also gives it a new password). Broker files changed:
mosquitto must reload them (systemctl reload mosquitto)."""

from __future__ import annotations

import base64
import json
import re
import sys
import tempfile
from pathlib import Path

from contract.protocol import NAME_RE, parse_mqtt_url
from lonewatch import brokerfiles
from lonewatch.rawrepl import RawRepl, ReplError, sha256

CA_ON_DEVICE = "ca.der"


class ProvisionError(Exception):
    pass


def add_arguments(parser) -> None:
    parser.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB0")
    parser.add_argument("--device-id", required=True, help="the device's id: its MQTT user name and topic level")
    parser.add_argument("--site", required=True)
    parser.add_argument("--wifi-ssid", required=True)
    parser.add_argument("--wifi-password", required=True)
    parser.add_argument("--broker", required=True, help="mqtts://HOST[:8883] (mqtt:// only with --insecure-plain-mqtt)")
    parser.add_argument("--ca", type=Path, help="CA certificate of the broker (ca.crt from `lonewatch certs`); needed with mqtts://")
    parser.add_argument("--db", required=True, help="the gateway's database")
    parser.add_argument("--passwd-file", type=Path, default=Path("/etc/mosquitto/lonewatch.passwd"),
                        help="mosquitto password file (default %(default)s)")
    parser.add_argument("--acl-file", type=Path, default=Path("/etc/mosquitto/lonewatch.acl"),
                        help="mosquitto ACL file (default %(default)s)")
    parser.add_argument("--replace", action="store_true", help="enroll again a device id already enrolled")
    parser.add_argument("--insecure-plain-mqtt", action="store_true",
                        help="allow mqtt:// (passwords and alarms readable on the Wi-Fi)")
    parser.add_argument("--no-reboot", action="store_true", help="leave the board in the REPL")


def pem_to_der(pem: bytes) -> bytes:
    match = re.search(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", pem, re.S)
    if not match:
        raise ProvisionError("the --ca file holds no PEM certificate")
    return base64.b64decode(b"".join(match.group(1).split()))


def device_files(args, password: str) -> dict[str, bytes]:
    """name on the device -> content: firmware, CA and config."""
    from simulator.board import compile_firmware

    host, port = parse_mqtt_url(args.broker)
    tls = args.broker.startswith("mqtts:")
    config = {"device": args.device_id, "site": args.site, "wifi_ssid": args.wifi_ssid,
              "wifi_password": args.wifi_password, "mqtt_host": host, "mqtt_port": port,
              "mqtt_user": args.device_id, "mqtt_password": password, "mqtt_tls": tls}
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(compile_firmware(Path(tmp)).iterdir()):
            files[path.name] = path.read_bytes()
    if tls:
        files[CA_ON_DEVICE] = pem_to_der(args.ca.read_bytes())
        config["mqtt_ca"] = CA_ON_DEVICE
    files["config.json"] = json.dumps(config).encode()  # last: renamed last
    return files


def check_args(args) -> None:
    for what, value in (("--device-id", args.device_id), ("--site", args.site)):
        if not NAME_RE.match(value):
            raise ProvisionError("%s must be 1-32 of a-z 0-9 _ - (got %r)" % (what, value))
    try:
        parse_mqtt_url(args.broker)
    except ValueError as e:
        raise ProvisionError("--broker: %s" % e) from None
    if args.broker.startswith("mqtts:"):
        if not args.ca or not args.ca.is_file():
            raise ProvisionError("--ca FILE is needed with mqtts://: the device verifies the broker against it")
    elif not args.insecure_plain_mqtt:
        raise ProvisionError("--broker %s is plain MQTT: the password and alarms would be readable on the "
                             "Wi-Fi; use mqtts:// or say --insecure-plain-mqtt" % args.broker)
    if not args.acl_file.exists():
        raise ProvisionError("no ACL file %s (start from deploy/mosquitto.acl)" % args.acl_file)


def enrolled(args, store) -> list[str]:
    where = []
    device = store.get_device(args.device_id)
    if device and device["registered"]:
        where.append("the gateway database")
    if args.device_id in brokerfiles.users(args.passwd_file):
        where.append(str(args.passwd_file))
    if brokerfiles.acl_site(args.acl_file, args.device_id):
        where.append(str(args.acl_file))
    return where


def copy_and_verify(repl: RawRepl, files: dict[str, bytes], say) -> None:
    for name, data in files.items():
        say("writing %s (%d bytes)" % (name, len(data)))
        try:
            repl.write_file(name + ".tmp", data)
        except ReplError as e:
            raise ProvisionError("writing %s failed: %s" % (name, e)) from None
    for name, data in files.items():
        if repl.sha256(name + ".tmp") != sha256(data):
            raise ProvisionError("%s read back differs from what was written (verify mismatch); "
                                 "the device keeps its previous files" % name)
    for name in files:
        repl.rename(name + ".tmp", name)
    for name, data in files.items():
        if repl.sha256(name) != sha256(data):
            raise ProvisionError("%s differs after the rename (verify mismatch)" % name)
    say("verified %d files by SHA-256" % len(files))


def provision(args, say=print) -> None:
    from lonewatch.commands import open_store

    check_args(args)
    store = open_store(args.db, "provision")
    if store is None:
        raise ProvisionError("cannot open the gateway database %s" % args.db)
    where = enrolled(args, store)
    if where and not args.replace:
        raise ProvisionError("device %s is already enrolled (%s); --replace enrolls it again with a new password"
                             % (args.device_id, ", ".join(where)))
    password = brokerfiles.new_password()
    files = device_files(args, password)
    repl = RawRepl(args.port)
    try:
        repl.enter()
        copy_and_verify(repl, files, say)
        brokerfiles.set_password(args.passwd_file, args.device_id, password)
        brokerfiles.set_acl(args.acl_file, args.site, args.device_id)
        with store.transaction():
            store.register_device(args.device_id, args.site)
        say("enrolled %s at site %s: password line in %s, ACL block in %s, registered in %s"
            % (args.device_id, args.site, args.passwd_file, args.acl_file, args.db))
        if not args.no_reboot:
            repl.reset()
            say("rebooted the device")
    finally:
        repl.close()
        store.close()


def run(args) -> int:
    try:
        provision(args)
    except (ProvisionError, ReplError, OSError) as e:
        print("lonewatch provision: %s" % e, file=sys.stderr)
        return 1
    print("Reload the broker so it reads the new password and ACL: systemctl reload mosquitto")
    return 0
