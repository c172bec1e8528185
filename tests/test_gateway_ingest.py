"""Ingest: store before acknowledging, exactly one incident per alarm, times."""

from __future__ import annotations

import sqlite3
import time

from gateway_harness import Device, GatewayProcess, make_config, next_live, running_gateway, wait_for, write_config

from gateway.config import load_config
from gateway.store import Store


async def test_alarm_becomes_incident_and_device_hears_delivered(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-001"]})
    async with running_gateway(config) as gateway:
        live = gateway.subscribe_live()
        device = Device(mosquitto)
        body = device.alarm("man_down", cause="fall", location={"zone": "lab-3"}, battery_pct=70)
        update = await next_live(live, lambda u: u["type"] == "incident")
        incident = update["incident"]
        assert (incident["device"], incident["site"], incident["type"], incident["cause"]) == \
            ("dev-001", "hq", "man_down", "fall")
        assert incident["alarm_id"] == body["id"] and incident["state"] == "raised"
        assert incident["registered"] is True and incident["location"] == {"zone": "lab-3"}
        delivered = await device.wait_command("delivered")
        assert delivered.body["ref"] == body["id"]
        await wait_for(lambda: gateway.store.get_incident(incident["id"])["delivered_at"], what="delivered_at")
        assert [i["id"] for i in gateway.store.list_incidents()] == [incident["id"]]
        device.close()


async def test_duplicate_alarm_is_one_incident(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-001"]})
    async with running_gateway(config) as gateway:
        device = Device(mosquitto)
        body = device.alarm("panic")
        # The device resends after a reconnect (new packet id), and again after a reboot from its outbox.
        for _ in range(3):
            device.alarm("panic", alarm_id=body["id"])
        await wait_for(lambda: gateway.ingest.counters.duplicates == 3, what="three duplicates")
        incidents = gateway.store.list_incidents()
        assert len(incidents) == 1 and incidents[0]["alarm_count"] == 1
        assert len(gateway.store.list_messages(kind="alarm")) == 1
        # Every copy is answered, so the device stops resending.
        refs = [(await device.wait_command("delivered")).body["ref"] for _ in range(4)]
        assert refs == [body["id"]] * 4
        device.close()


async def test_second_panic_while_open_attaches_to_the_incident(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-001"]})
    async with running_gateway(config) as gateway:
        device = Device(mosquitto)
        device.alarm("panic")
        device.alarm("panic")
        device.alarm("man_down", cause="no_motion")
        await wait_for(lambda: gateway.store.list_incidents() and
                       gateway.store.list_incidents()[0]["alarm_count"] == 3, what="three attached alarms")
        assert len(gateway.store.list_incidents()) == 1
        actions = [a["action"] for a in gateway.store.incident_audit(gateway.store.list_incidents()[0]["id"])]
        assert actions.count("raised") == 1 and actions.count("attached") == 2
        device.close()


async def test_outbox_alarm_is_dated_when_it_happened(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-001"]})
    async with running_gateway(config) as gateway:
        device = Device(mosquitto)
        device_clock = time.time() - 65.0 + 2.0  # the device's clock runs 2 s fast
        device.alarm("panic", waited_ms=65_000, time=device_clock)
        incident = (await wait_for(gateway.store.list_incidents, what="incident"))[0]
        assert abs(incident["received_at"] - incident["event_time"] - 65.0) < 0.01
        assert abs(incident["skew_s"] - 2.0) < 1.0
        assert incident["device_time"] == device_clock
        device.close()


async def test_alarm_from_unregistered_device_is_a_loud_incident(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-001"]})
    async with running_gateway(config) as gateway:
        stranger = Device(mosquitto, device="dev-999")
        stranger.heartbeat()
        stranger.alarm("panic")
        incident = (await wait_for(gateway.store.list_incidents, what="incident"))[0]
        assert incident["registered"] is False
        assert "UNREGISTERED" in incident["summary"]
        listed = await wait_for(lambda: gateway.store.get_device("dev-999"), what="enrollment listing")
        assert listed["registered"] is False and listed["unregistered_messages"] == 1
        stranger.close()


async def test_alarm_acked_only_after_commit(tmp_path, mosquitto):
    """The database refuses writes, the gateway is killed, the alarm still arrives once."""
    config_path = write_config(tmp_path, mosquitto, devices={"registered": ["dev-001"]})
    db_path = load_config(str(config_path)).gateway.db
    Store(db_path).close()
    gateway = GatewayProcess(config_path)
    gateway.start()
    device = Device(mosquitto)
    try:
        await wait_for(lambda: gateway.logged("connected to"), timeout=10, what="gateway connected")
        blocker = sqlite3.connect(db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the disk is "full": nothing can commit
        body = device.alarm("panic")
        await wait_for(lambda: gateway.logged("cannot commit"), timeout=10, what="a failed commit")
        gateway.kill()
        blocker.execute("ROLLBACK")
        blocker.close()
        assert Store(db_path).list_incidents() == []

        gateway.start()  # the broker redelivers what was never acknowledged
        incidents = await wait_for(lambda: Store(db_path).list_incidents(), timeout=10, what="redelivered alarm")
        assert [i["alarm_id"] for i in incidents] == [body["id"]]
    finally:
        gateway.stop()
        device.close()
