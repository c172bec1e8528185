"""Ingest: store before acknowledging, exactly one incident per alarm, times."""

from __future__ import annotations

import sqlite3
import time

from gateway_harness import (Device, GatewayProcess, HoldingProxy, make_config, metric, next_live, running_gateway,
                             wait_for, write_config)

from gateway.config import load_config
from gateway.store import Store


async def test_alarm_becomes_incident_and_device_hears_delivered(tmp_path, any_broker):
    config = make_config(tmp_path, any_broker, devices={"registered": ["dev-001"]})
    async with running_gateway(config) as gateway:
        live = gateway.subscribe_live()
        device = Device(any_broker)
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


async def test_alarms_stored_in_one_batch_reach_the_desk_as_one_update(tmp_path, mosquitto):
    # A device back from an outage replays its outbox: nine more alarms of an
    # open incident arrive while the writer is busy, and are stored together.
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-001"]})
    async with running_gateway(config) as gateway:
        live = gateway.subscribe_live()
        arrived = []
        hand_to_writer = gateway.ingest.link.client.on_message

        def count_arrivals(client, userdata, message):
            hand_to_writer(client, userdata, message)
            arrived.append(message.topic)

        gateway.ingest.link.client.on_message = count_arrivals
        device = Device(mosquitto)
        device.alarm("panic")
        await next_live(live, lambda u: u["type"] == "incident" and u["event"] == "raised")
        with gateway.store.lock:  # the writer waits for it with what it has taken
            for _ in range(9):
                device.alarm("panic")
            await wait_for(lambda: sum(t.endswith("/alarm") for t in arrived) == 10, timeout=15,
                           what="all ten alarms handed to the writer")
        attached = []
        while not attached or attached[-1]["incident"]["alarm_count"] < 10:
            attached.append(await next_live(live, lambda u: u["type"] == "incident" and u["event"] == "attached"))
        # One _apply puts all of a batch's updates at once: any repeat is already queued.
        while not live.empty():
            update = live.get_nowait()
            if update["type"] == "incident" and update["event"] == "attached":
                attached.append(update)
        # The writer took some of the nine before it waited, and takes the rest
        # in one batch: two batches at most, one update each.
        assert 1 <= len(attached) <= 2
        assert attached[-1]["incident"]["alarm_count"] == 10
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
        await gateway.ready()
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


async def test_gateway_killed_between_store_and_ack_gives_one_incident(tmp_path, mosquitto):
    proxy = HoldingProxy(mosquitto)
    await proxy.start()
    config_path = write_config(tmp_path, mosquitto, mqtt={"url": proxy.url}, devices={"registered": ["dev-001"]})
    db_path = load_config(str(config_path)).gateway.db
    gateway = GatewayProcess(config_path)
    gateway.start()
    device = Device(mosquitto)
    try:
        await gateway.ready()
        proxy.hold_upstream = True  # from now on no PUBACK reaches the broker
        body = device.alarm("panic")
        await wait_for(lambda: Store(db_path).list_incidents(), timeout=10, what="alarm stored")
        gateway.kill()
        proxy.drop_connections()

        gateway.start()
        delivered = await device.wait_command("delivered", timeout=10)  # sent on the redelivered copy
        assert delivered.body["ref"] == body["id"]
        assert [i["alarm_id"] for i in Store(db_path).list_incidents()] == [body["id"]]
        assert len(Store(db_path).list_messages(kind="alarm")) == 1
    finally:
        gateway.stop()
        device.close()
        await proxy.stop()


async def test_bad_message_next_to_alarm_does_not_block_it(tmp_path, mosquitto, caplog):
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-001", "dev-002"]})
    async with running_gateway(config) as gateway:
        device = Device(mosquitto)
        noisy = Device(mosquitto, device="dev-002")
        for _ in range(20):
            noisy.publish("heartbeat", b"{not json")
        noisy.publish("event", {"v": 2, "device": "dev-002"})
        noisy.publish("heartbeat", {"v": 1, "device": "dev-001", "uptime_ms": 1, "battery_pct": 50, "fw": "x"})
        noisy.publish("alarm", b"\xff\xfe garbage")
        body = device.alarm("panic")
        await wait_for(lambda: any(i["alarm_id"] == body["id"] for i in gateway.store.list_incidents()),
                       what="the good alarm")
        await wait_for(lambda: sum(gateway.ingest.counters.rejected.values()) == 23, what="23 rejects")
        rejected = gateway.ingest.counters.rejected
        assert (rejected["bad_json"], rejected["bad_encoding"], rejected["unsupported_version"],
                rejected["device_mismatch"]) == (20, 1, 1, 1)
        # The unreadable alarm is on the desk, not swallowed.
        technical = [i for i in gateway.store.list_incidents() if i["cause"] == "unreadable_alarm"]
        assert len(technical) == 1 and technical[0]["device"] == "dev-002"
        assert "unreadable alarm from device dev-002" in technical[0]["summary"]
        assert technical[0]["priority"] == "critical"
        # Everything was acknowledged, good and bad, so nothing is stuck at the broker.
        # (24 device messages + the gateway's own retained status)
        await wait_for(lambda: gateway.ingest.counters.acked == 25, what="25 acks")
        logged = [r.getMessage() for r in caplog.records if "rejected message" in r.getMessage()]
        # Once a minute per device and reason: 4 lines for 23 rejects, one per distinct fault.
        assert sorted(m.split("(")[1].split(")")[0] for m in logged) == \
            ["bad_encoding", "bad_json", "device_mismatch", "unsupported_version"]
        assert metric(gateway, "lonewatch_messages_rejected_total", reason="bad_json") == 20
        device.close()
        noisy.close()


async def test_alarm_sent_while_gateway_is_down_arrives_when_it_returns(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-001"]})
    async with running_gateway(config):
        pass  # the broker now holds a persistent session for the gateway's client id
    device = Device(mosquitto)
    body = device.alarm("panic")
    async with running_gateway(config) as gateway:
        incidents = await wait_for(gateway.store.list_incidents, what="the queued alarm")
        assert incidents[0]["alarm_id"] == body["id"]
        assert (await device.wait_command("delivered")).body["ref"] == body["id"]
    device.close()


async def test_a_bug_handling_one_message_loses_only_that_message(tmp_path, mosquitto, monkeypatch, caplog):
    """The gateway's own code fails on one message of a batch: that message is
    kept as an internal_error reject, the rest of its batch is stored once and
    counted once, and everything is acknowledged."""
    from gateway import supervision

    real_battery_reported = supervision.battery_reported

    def battery_reported_with_a_bug(store, effects, config, site, device, pct, now, before):
        if device == "dev-002":
            raise KeyError("a bug")
        real_battery_reported(store, effects, config, site, device, pct, now, before)

    monkeypatch.setattr(supervision, "battery_reported", battery_reported_with_a_bug)
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-001", "dev-002"]})
    async with running_gateway(config) as gateway:
        device, buggy = Device(mosquitto), Device(mosquitto, device="dev-002")
        # Hold the writer on its first batch so that the next three messages form one batch.
        blocker = sqlite3.connect(config.gateway.db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        device.heartbeat()
        await wait_for(lambda: gateway.ingest.counters.store_retries, timeout=10, what="the writer held")
        body = device.alarm("panic")
        buggy.publish("heartbeat", {"v": 1, "device": "dev-002", "uptime_ms": 5, "battery_pct": 80, "fw": "x"}, qos=1)
        device.heartbeat(battery_pct=75)
        await wait_for(lambda: gateway.ingest.inbox.qsize() >= 3, what="three messages waiting")
        blocker.execute("ROLLBACK")
        blocker.close()

        await wait_for(lambda: gateway.ingest.counters.rejected["internal_error"] == 1, what="the internal error")
        assert [i["alarm_id"] for i in gateway.store.list_incidents()] == [body["id"]]
        stored = [(m["device"], m["kind"]) for m in reversed(gateway.store.list_messages())]
        assert stored == [("dev-001", "heartbeat"), ("dev-001", "alarm"), ("dev-001", "heartbeat")]
        reject = gateway.store.list_rejects()[0]
        assert (reject["device"], reject["reason"]) == ("dev-002", "internal_error") and "a bug" in reject["detail"]
        counters = gateway.ingest.counters
        # Counted once although the batch was done twice; the faulty one only as a reject.
        assert (counters.received["alarm"], counters.received["heartbeat"]) == (1, 2)
        # The QoS 1 ones: the alarm, the faulty heartbeat, and the gateway's own retained status.
        await wait_for(lambda: counters.acked == 3, what="three acks")
        assert any("internal error handling" in r.getMessage() for r in caplog.records)
        device.close()
        buggy.close()


async def test_a_parser_that_fails_on_one_message_holds_back_nothing(tmp_path, mosquitto, monkeypatch):
    """The failure that once wedged the ingest: the parser raising something
    other than Invalid. Retried message by message, it must be charged to that
    message, not taken for a broken database and retried for ever."""
    from contract import protocol

    real_parse = protocol.parse_message

    def parse_with_a_bug(topic, payload):
        if "/dev-002/" in topic:
            raise RecursionError("maximum recursion depth exceeded")
        return real_parse(topic, payload)

    monkeypatch.setattr(protocol, "parse_message", parse_with_a_bug)
    config = make_config(tmp_path, mosquitto, devices={"registered": ["dev-001", "dev-002"]})
    async with running_gateway(config) as gateway:
        device, buggy = Device(mosquitto), Device(mosquitto, device="dev-002")
        before = device.alarm("panic")
        buggy.publish("event", {"v": 1}, qos=1)
        after = device.alarm("panic")
        refs = {(await device.wait_command("delivered")).body["ref"] for _ in range(2)}
        assert refs == {before["id"], after["id"]}
        await wait_for(lambda: gateway.ingest.counters.rejected["internal_error"] == 1, what="the internal error")
        health = gateway.health()
        assert health["ok"] and health["db_writable"] and gateway.ingest.counters.store_retries == 0
        device.close()
        buggy.close()
