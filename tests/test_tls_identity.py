"""The gateway over TLS with its own credentials, at the shipped mosquitto
config with certificates from `lonewatch certs`; a device with its own
password and ACL block from provisioning's broker files."""

from __future__ import annotations

import asyncio
import json

from contract import protocol
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
