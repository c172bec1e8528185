"""Hostile messages next to real alarms, against the real gateway process on
mosquitto: each is refused with its reason and acknowledged, and the alarms
sent before and after it are stored once each and answered `delivered`."""

from __future__ import annotations

import json

from conftest import free_port
from gateway_harness import Device, GatewayProcess, http_get, parse_metrics, wait_for, write_config

from gateway.config import load_config
from gateway.store import Store

REGISTERED = {"registered": ["dev-001", "dev-002"]}
HEARTBEAT = {"v": 1, "device": "dev-002", "uptime_ms": 5, "battery_pct": 80, "fw": "0.1.0"}
PANIC = {"v": 1, "device": "dev-002", "id": "dev-002:1:1", "type": "panic", "uptime_ms": 5, "sent_uptime_ms": 9}


def _json(body: dict) -> bytes:
    return json.dumps(body).encode()


# name -> (topic kind, payload, qos, the reason it is refused for)
POISON = {
    "deep nesting on an event, QoS 1": ("event", b"[" * 1000, 1, "too_deep"),
    "deep nesting on a heartbeat, QoS 0": ("heartbeat", b"[" * 1000, 0, "too_deep"),
    "deep nesting on an alarm": ("alarm", b"[" * 1000, 1, "too_deep"),
    "deep but closed nesting": ("status", b"[" * 600 + b"]" * 600, 1, "too_deep"),
    "a panic dated 2**63": ("alarm", _json({**PANIC, "time": 2**63}), 1, "schema"),
    "an unpaired surrogate as a JSON escape": ("heartbeat", _json(HEARTBEAT).replace(b'"0.1.0"', b'"\\ud800"'), 1,
                                               "bad_encoding"),
    "an unpaired surrogate as raw bytes": ("status", b'{"v":1,"device":"dev-002","state":"online","fw":"\xed\xa0\x80"}',
                                           1, "bad_encoding"),
    "UTF-16": ("heartbeat", json.dumps(HEARTBEAT).encode("utf-16"), 1, "bad_encoding"),
    "UTF-32": ("heartbeat", json.dumps(HEARTBEAT).encode("utf-32"), 1, "bad_encoding"),
    "UTF-8 with a byte order mark": ("heartbeat", b"\xef\xbb\xbf" + _json(HEARTBEAT), 1, "bad_encoding"),
    "v true": ("heartbeat", _json({**HEARTBEAT, "v": True}), 1, "unsupported_version"),
    "v 1.0": ("heartbeat", _json({**HEARTBEAT, "v": 1.0}), 1, "unsupported_version"),
    "NaN": ("heartbeat", _json(HEARTBEAT).replace(b"80", b"NaN"), 1, "bad_json"),
}


def _stored_alarm_ids(db_path: str, device: str) -> list[str]:
    store = Store(db_path)
    try:
        return [m["msg_id"] for m in store.list_messages(device=device, kind="alarm")]
    finally:
        store.close()


async def _all_delivered(device: Device, alarm_ids: set[str], timeout: float = 15.0) -> None:
    refs: set[str] = set()

    async def collect():
        while not alarm_ids <= refs:
            refs.add((await device.wait_command("delivered", timeout=timeout)).body["ref"])

    await collect()


async def test_hostile_messages_never_stop_the_alarms_around_them(tmp_path, mosquitto):
    http_port = free_port()
    config_path = write_config(tmp_path, mosquitto, devices=REGISTERED, dashboard={"port": http_port})
    db_path = load_config(str(config_path)).gateway.db
    gateway = GatewayProcess(config_path)
    gateway.start()
    device, hostile = None, None
    try:
        await gateway.ready()
        device, hostile = Device(mosquitto), Device(mosquitto, device="dev-002")
        alarm_ids = [device.alarm("panic")["id"]]
        for kind, payload, qos, _ in POISON.values():
            hostile.publish(kind, payload, qos=qos)
            alarm_ids.append(device.alarm("panic")["id"])

        await _all_delivered(device, set(alarm_ids))
        await wait_for(lambda: len(Store(db_path).list_rejects()) == len(POISON), timeout=10, what="every reject")
        assert sorted(_stored_alarm_ids(db_path, "dev-001")) == sorted(alarm_ids)  # each once

        store = Store(db_path)
        rejects = list(reversed(store.list_rejects()))
        assert [r["reason"] for r in rejects] == [p[3] for p in POISON.values()]
        # The poisoned alarm topics are on the desk as unreadable alarms, not swallowed.
        unreadable = [i for i in store.list_incidents() if i["cause"] == "unreadable_alarm"]
        assert [i["device"] for i in unreadable] == ["dev-002"]
        assert unreadable[0]["alarm_count"] == 2  # the deep one and the one dated 2**63
        store.close()

        status, body = http_get(http_port, "/healthz")
        health = json.loads(body)
        assert status == 200 and health["ok"] and health["db_writable"] and health["problems"] == []
        status, metrics = http_get(http_port, "/metrics")
        samples = parse_metrics(metrics)
        for reason in ("too_deep", "bad_encoding", "unsupported_version"):
            expected = sum(1 for p in POISON.values() if p[3] == reason)
            assert samples[("lonewatch_messages_rejected_total", frozenset({("reason", reason)}))] == expected
        assert not gateway.logged("Traceback")
    finally:
        gateway.stop()
        for d in (device, hostile):
            if d:
                d.close()


async def test_poison_queued_for_a_stopped_gateway_does_not_wedge_it_at_restart(tmp_path, mosquitto):
    """A QoS 1 poison message waits at the broker while the gateway is down;
    when it comes back, the poison is refused and acknowledged once, and the
    panic queued behind it is stored and delivered."""
    config_path = write_config(tmp_path, mosquitto, devices=REGISTERED)
    db_path = load_config(str(config_path)).gateway.db
    gateway = GatewayProcess(config_path)
    gateway.start()
    device = hostile = None
    try:
        await gateway.ready()
        gateway.stop()  # the broker keeps the gateway's persistent session
        device, hostile = Device(mosquitto), Device(mosquitto, device="dev-002")
        hostile.publish("event", b"[" * 1000, qos=1)
        body = device.alarm("panic")

        gateway.start()
        await _all_delivered(device, {body["id"]})
        assert _stored_alarm_ids(db_path, "dev-001") == [body["id"]]
        await wait_for(lambda: len(Store(db_path).list_rejects()) == 1, timeout=10, what="the poison refused")

        # It was acknowledged: a gateway killed now is not handed it again.
        gateway.kill()
        gateway.start()
        await gateway.ready()
        after = device.alarm("panic")
        await _all_delivered(device, {after["id"]})
        assert [r["reason"] for r in Store(db_path).list_rejects()] == ["too_deep"]
    finally:
        gateway.stop()
        for d in (device, hostile):
            if d:
                d.close()
