"""The gateway over TLS with its own credentials, at the shipped mosquitto
config with certificates from `lonewatch certs`; a device with its own
password and ACL block from provisioning's broker files."""

from __future__ import annotations

import asyncio
import json

from contract import protocol
from lonewatch.commands import provision
from gateway_harness import make_config, running_gateway, wait_for
from test_mosquitto_config import PASSWORD, Client, shipped  # noqa: F401  (fixture)


class TlsBroker:
    """What make_config needs to point a gateway at the shipped TLS listener."""

    def __init__(self, broker):
        self.url = f"mqtts://127.0.0.1:{broker.tls_port}"


async def test_the_gateway_takes_an_alarm_over_tls_and_answers_the_device_alone(shipped, tmp_path, caplog):
    config = make_config(tmp_path, TlsBroker(shipped),
                         mqtt={"username": "gateway", "password": PASSWORD["gateway"], "ca_file": str(shipped.ca)})
    device = Client(shipped, "dev-001", tls=True)
    other = Client(shipped, "dev-002", tls=True)
    assert device.subscribe("lonewatch/v1/hq/dev-001/cmd") == 1
    assert other.subscribe("lonewatch/v1/hq/dev-002/cmd") == 1
    async with running_gateway(config) as gateway:
        body = {"v": 1, "device": "dev-001", "id": "dev-001:1:1", "type": "panic",
                "uptime_ms": 1000, "sent_uptime_ms": 1040}
        device.publish_all("lonewatch/v1/hq/dev-001/alarm", [protocol.encode(body)])
        topic, payload = await asyncio.to_thread(device.messages.get, timeout=10)
        assert topic == "lonewatch/v1/hq/dev-001/cmd"
        assert json.loads(payload)["cmd"] == "delivered" and json.loads(payload)["ref"] == "dev-001:1:1"
        await wait_for(lambda: gateway.store.open_incidents(), what="an incident")
    assert other.drain(1, idle_s=0.3) == []
    assert PASSWORD["gateway"] not in caplog.text


async def test_the_gateway_refuses_a_broker_whose_certificate_its_ca_did_not_sign(shipped, tmp_path):
    from lonewatch.commands import certs
    stranger = certs.make(tmp_path / "other-ca", ["127.0.0.1"])["ca.crt"]
    config = make_config(tmp_path, TlsBroker(shipped),
                         mqtt={"username": "gateway", "password": PASSWORD["gateway"], "ca_file": str(stranger),
                               "connect_timeout_s": 2.0})
    try:
        async with running_gateway(config):
            raise AssertionError("the gateway connected to a broker it cannot verify")
    except ConnectionError as e:
        assert "certificate verify failed" in str(e)
        assert PASSWORD["gateway"] not in str(e)


async def test_a_provisioned_device_raises_an_alarm_that_reaches_the_gateway_over_tls(shipped, tmp_path):
    """The issue's acceptance: provision over the pty, start that device's
    firmware with the config it received, its alarm reaches the gateway over
    TLS with its own credentials."""
    import signal

    from simulator.board import VirtualDevice
    from test_provision import PtyBoard, args_for

    from gateway.store import Store
    Store(str(tmp_path / "lonewatch.db")).close()
    workdir = tmp_path / "dev"
    board = PtyBoard(workdir / "flash")
    try:
        provision.provision(args_for(tmp_path, board.port, broker=f"mqtts://127.0.0.1:{shipped.tls_port}",
                                     ca=shipped.ca, passwd_file=shipped.workdir / "lonewatch.passwd",
                                     acl_file=shipped.workdir / "lonewatch.acl"), say=lambda s: None)
    finally:
        board.close()
    shipped.proc.send_signal(signal.SIGHUP)  # mosquitto reads the new password and ACL

    config = make_config(tmp_path, TlsBroker(shipped),
                         mqtt={"username": "gateway", "password": PASSWORD["gateway"], "ca_file": str(shipped.ca)})
    async with running_gateway(config) as gateway:
        device = VirtualDevice(workdir, None, proxy=False)
        try:
            await asyncio.to_thread(device.start, True, 30)
            device.press(2300)
            incident = await wait_for(lambda: gateway.store.open_incidents(), timeout=20, what="the alarm")
            assert incident[0]["device"] == "dev-007"
            await asyncio.to_thread(device.wait_console, "state alarm -> delivered", 20)
            assert not any("INSECURE" in line for line in device.console)
        finally:
            device.stop()


def test_the_firmware_refuses_a_broker_its_ca_did_not_sign_or_under_another_name(shipped, tmp_path):
    import base64

    from lonewatch.commands import certs
    from simulator.board import VirtualDevice, device_config

    other = certs.make(tmp_path / "other-ca", ["127.0.0.1"])["ca.crt"].read_bytes()
    own = shipped.ca.read_bytes()
    for name, ca, host in (("stranger", other, "127.0.0.1"), ("wrong-name", own, "localhost")):
        config = device_config(shipped.tls_port, device="dev-001", mqtt_tls=True, mqtt_host=host,
                               mqtt_user="dev-001", mqtt_password=PASSWORD["dev-001"])
        device = VirtualDevice(tmp_path / name, config, proxy=False)
        (device.flash / "ca.der").write_bytes(base64.b64decode(b"".join(ca.split(b"-----")[2].split())))
        try:
            device.start(wait_online=False)
            device.wait_console(r"link: connect to %s:\d+ failed" % host, 20)
            assert not any("link: online" in line for line in device.console)
        finally:
            device.stop()
