"""Downlink: every command to the wearer is durable. It is written to the
outbox with the change that causes it and published until the broker
acknowledged it, across broker outages and gateway deaths; a repeat carries
the same command id (the device ignores it)."""

from __future__ import annotations

import asyncio
import queue

import aiohttp
from conftest import free_port
from gateway_harness import (Device, GatewayProcess, HoldingProxy, make_config, metric, running_gateway, wait_for,
                             write_config)

from gateway.accounts import hash_password
from gateway.config import load_config
from gateway.store import Store

REGISTERED = {"registered": ["dev-001"]}


async def delivered_incident(store: Store, device: Device) -> dict:
    body = device.alarm("panic")
    assert (await device.wait_command("delivered", timeout=10)).body["ref"] == body["id"]
    return (await wait_for(lambda: [i for i in store.list_incidents() if i["alarm_id"] == body["id"]],
                           what="incident"))[0]


async def all_commands(device: Device, quiet_s: float = 1.0) -> list:
    """Every command that arrives until none has for quiet_s."""
    received = []
    while True:
        try:
            received.append(await asyncio.to_thread(device.commands.get, timeout=quiet_s))
        except queue.Empty:
            return received


def assert_one_command(cmd: str, received: list) -> dict:
    """Exactly one command of that kind; repeats allowed only under the same id."""
    copies = [m.body for m in received if m.body["cmd"] == cmd]
    assert copies, f"no {cmd} command arrived"
    assert len({c["id"] for c in copies}) == 1, f"{cmd} arrived as different commands: {copies}"
    return copies[0]


async def test_help_coming_decided_while_the_broker_is_down_reaches_the_wearer(tmp_path, persistent_mosquitto):
    broker = persistent_mosquitto
    async with running_gateway(make_config(tmp_path, broker, devices=REGISTERED)) as gateway:
        device = Device(broker, persistent=True)
        incident = await delivered_incident(gateway.store, device)
        broker.stop()
        await wait_for(lambda: not gateway.ingest.connected, what="the gateway to notice the broker is gone")

        await gateway.acknowledge(incident["id"], "alice")
        outbox = gateway.store.list_commands(device="dev-001")
        assert (outbox[0]["cmd"], outbox[0]["sent_at"]) == ("help_coming", None)  # committed with the ack

        broker.start()
        received = [await device.wait_command("help_coming", timeout=20)]
        await wait_for(lambda: gateway.store.count_unsent_commands() == 0, what="the broker's PUBACK noted")
        received += await all_commands(device)
        help_coming = assert_one_command("help_coming", received)
        assert (help_coming["ref"], help_coming["by"]) == (incident["alarm_id"], "alice")
        assert help_coming["id"] == outbox[0]["command_id"]
        device.close()


async def test_help_coming_survives_a_gateway_restart_while_the_broker_is_down(tmp_path, persistent_mosquitto):
    broker = persistent_mosquitto
    config = make_config(tmp_path, broker, devices=REGISTERED)
    device = Device(broker, persistent=True)
    async with running_gateway(config) as gateway:
        incident = await delivered_incident(gateway.store, device)
        broker.stop()
        await wait_for(lambda: not gateway.ingest.connected, what="the gateway to notice the broker is gone")
        await gateway.acknowledge(incident["id"], "alice")
        await gateway.resolve(incident["id"], "alice", "test")
    # The gateway is gone, and with it whatever paho held in memory.
    broker.start()
    async with running_gateway(config) as gateway:
        received = [await device.wait_command("help_coming", timeout=20)]
        await wait_for(lambda: gateway.store.count_unsent_commands() == 0, what="the broker's PUBACKs noted")
        received += await all_commands(device)
    assert assert_one_command("help_coming", received)["ref"] == incident["alarm_id"]
    assert assert_one_command("resolved", received)["ref"] == incident["alarm_id"]
    # In the order they were decided.
    assert [m.body["cmd"] for m in received if m.body["cmd"] != "delivered"][:2] == ["help_coming", "resolved"]
    device.close()


async def test_help_coming_survives_a_gateway_killed_right_after_the_acknowledgement(tmp_path, mosquitto):
    proxy = HoldingProxy(mosquitto)
    await proxy.start()
    http_port = free_port()
    config_path = write_config(tmp_path, mosquitto, mqtt={"url": proxy.url}, devices=REGISTERED,
                               dashboard={"port": http_port},
                               extra_toml=f'[dashboard.operators]\nalice = "{hash_password("secret")}"\n')
    db_path = load_config(str(config_path)).gateway.db
    gateway = GatewayProcess(config_path)
    gateway.start()
    device = Device(mosquitto)
    try:
        await gateway.ready()
        store = Store(db_path)
        incident = await delivered_incident(store, device)

        proxy.hold_upstream = True  # from now on nothing the gateway publishes reaches the broker
        base = f"http://127.0.0.1:{http_port}"
        # A browser sends Origin with every POST; the desk refuses state changes without it.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Origin": base}) as http:
            async with http.post(f"{base}/login", data={"name": "alice", "password": "secret"},
                                 allow_redirects=False) as r:
                assert r.status == 302 and r.headers["Location"] == "/"
            async with http.post(f"{base}/api/incidents/{incident['id']}/ack") as r:
                assert r.status == 200 and (await r.json())["state"] == "acknowledged"
        gateway.kill()
        proxy.drop_connections()
        assert "help_coming" in [c["cmd"] for c in store.unsent_commands()]
        assert all(m.body["cmd"] != "help_coming" for m in await all_commands(device, 0.3))

        gateway.start()  # publishes what the broker never acknowledged, under the same id
        received = [await device.wait_command("help_coming", timeout=15)]
        await wait_for(lambda: store.count_unsent_commands() == 0, timeout=10, what="the broker's PUBACK noted")
        received += await all_commands(device)
        help_coming = assert_one_command("help_coming", received)
        assert (help_coming["ref"], help_coming["by"]) == (incident["alarm_id"], "alice")
        store.close()
    finally:
        gateway.stop()
        device.close()
        await proxy.stop()


async def test_delivered_marks_the_incident_once_the_broker_has_it(tmp_path, mosquitto):
    async with running_gateway(make_config(tmp_path, mosquitto, devices=REGISTERED)) as gateway:
        device = Device(mosquitto)
        body = device.alarm("panic")
        device.alarm("panic", alarm_id=body["id"])  # a resend: answered again, as its own command
        received = [await device.wait_command("delivered")]
        received += await all_commands(device, 0.5)
        assert [m.body["ref"] for m in received] == [body["id"]] * 2
        assert len({m.body["id"] for m in received}) == 2
        incident = await wait_for(lambda: gateway.store.list_incidents()[0]["delivered_at"] and
                                  gateway.store.list_incidents()[0], what="delivered_at")
        assert [a["action"] for a in gateway.store.incident_audit(incident["id"])] == ["raised", "delivered"]
        assert all(c["sent_at"] for c in gateway.store.list_commands())
        assert metric(gateway, "lonewatch_commands_unsent") == 0
        device.close()
