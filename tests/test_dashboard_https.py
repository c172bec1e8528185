"""The desk over HTTPS: `lonewatch gateway` serves it from the certificate and
key in its config, an operator logs in over TLS and gets a Secure cookie;
a config with a broken pair stops at start-up, naming the file."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from conftest import free_port
from gateway.accounts import hash_password
from gateway.config import ConfigError, load_config
from gateway_harness import GatewayProcess, wait_for, write_config

PASSWORD = "correct horse battery"


def make_certificate(folder: Path, name: str = "desk") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by the openssl command line."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=lonewatch test desk", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def https_gateway(tmp_path, mosquitto):
    cert, key = make_certificate(tmp_path)
    port = free_port()
    config = write_config(tmp_path, mosquitto, dashboard={
        "port": port, "tls_cert": str(cert), "tls_key": str(key)})
    with open(config, "a") as f:
        f.write(f'[dashboard.operators]\nada = "{hash_password(PASSWORD)}"\n')
    gateway = GatewayProcess(config)
    gateway.start()
    gateway.base = f"https://127.0.0.1:{port}"
    gateway.trust = ssl.create_default_context(cafile=str(cert))
    # The banner comes once the desk's site listens ("started" comes before, with the MQTT side).
    gateway.ready = lambda: wait_for(lambda: gateway.logged("desk page on"), timeout=20, what="the desk served")
    yield gateway
    gateway.stop()


async def test_an_operator_logs_in_over_https_and_the_cookie_is_secure(https_gateway):
    await https_gateway.ready()
    base = https_gateway.base
    # unsafe: the jar otherwise keeps no cookie for an address like 127.0.0.1.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=https_gateway.trust),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{base}/login", data={"name": "ada", "password": PASSWORD},
                             headers={"Origin": base}, allow_redirects=False) as response:
            assert response.status == 302 and response.headers["Location"] == "/"
            cookie = response.cookies["lonewatch_session"]
        assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict"
        async with http.get(f"{base}/api/me") as response:
            assert await response.json() == {"name": "ada", "role": "operator"}
    assert https_gateway.logged(f"desk page on {base}/")  # the banner names the scheme it serves


async def test_plain_http_gets_no_desk_on_the_https_port(https_gateway):
    await https_gateway.ready()
    plain = https_gateway.base.replace("https:", "http:")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"{plain}/login") as response:
                await response.read()


@pytest.mark.parametrize("setup, message", [
    (lambda d: (d / "desk-cert.pem", d / "missing-key.pem"), "tls_key: cannot read"),
    (lambda d: (d / "desk-cert.pem", d / "other-key.pem"), "is not the private key of tls_cert"),
    (lambda d: (d / "desk-key.pem", d / "desk-key.pem"), "are not a PEM certificate"),
    (lambda d: (d / "desk-cert.pem", ""), "tls_cert and tls_key go together"),
])
def test_a_broken_certificate_pair_stops_the_start_naming_the_file(tmp_path, setup, message):
    make_certificate(tmp_path)
    make_certificate(tmp_path, "other")
    cert, key = setup(tmp_path)
    path = tmp_path / "gateway.toml"
    path.write_text(f'[dashboard]\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    assert message in str(raised.value)
    if key:
        assert str(key).rsplit("/", 1)[-1] in str(raised.value)


def test_an_encrypted_key_is_refused_instead_of_asking_for_a_passphrase(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-passout", "pass:secret", "-days", "2",
                    "-subj", "/CN=x", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)
    path = tmp_path / "gateway.toml"
    path.write_text(f'[dashboard]\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    with pytest.raises(ConfigError, match="tls_key is encrypted with a passphrase"):
        load_config(str(path))
