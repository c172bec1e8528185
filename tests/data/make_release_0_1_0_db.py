"""How tests/data/release-0.1.0.db was made; a record, not a tool to run again.

It ran once at the release commit named in README.md, before the database had
a schema version, through the real gateway: mosquitto, a running Gateway,
devices publishing over MQTT, the desk acting through the Gateway's methods.
Run with later code it would make a database of that later release, which is
not the fixture, so it refuses to run once gateway.schema exists.

    cd tests && PYTHONPATH=. ../.venv/bin/python data/make_release_0_1_0_db.py data/release-0.1.0.db
"""

from __future__ import annotations

import asyncio
import importlib.util
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from conftest import MosquittoBroker, free_port
from gateway_harness import Device, make_config, running_gateway, wait_for

ROUTING = f"""
[routing.channels.ops-hook]
type = "webhook"
url = "http://127.0.0.1:{free_port()}/nobody-listens"
secret = "fixture-secret-of-32-characters!"
max_attempts = 1

[[routing.rules]]
types = ["man_down"]
channels = ["ops-hook"]
"""


async def record(workdir: Path) -> Path:
    broker = MosquittoBroker(workdir)
    broker.start()
    config = make_config(workdir, broker, ROUTING, devices={"registered": ["dev-001", "dev-002", "dev-003", "dev-004"]},
                         alarms={"ack_timeout_s": 1.0}, sessions={"check_interval_s": 0.1, "reminder_before_s": 0.5})
    try:
        async with running_gateway(config) as gateway:
            store = gateway.store
            devices = {name: Device(broker, name, site="hq") for name in ("dev-001", "dev-002", "dev-003", "dev-004")}
            for name, device in devices.items():
                device.online()
                device.heartbeat(battery_pct=12 if name == "dev-002" else 85)
            await wait_for(lambda: all((store.get_device(n) or {}).get("state") == "online" for n in devices),
                           what="four devices online")

            def incident_of(alarm):
                return wait_for(lambda: next((i for i in store.list_incidents() if i["alarm_id"] == alarm["id"]
                                              and i["delivered_at"]), None), what=f"incident of {alarm['id']}")

            # acknowledged, with an attached second alarm and a location
            first = await incident_of(devices["dev-001"].alarm("panic", location={"zone": "boiler room"}))
            devices["dev-001"].alarm("man_down", cause="fall")
            await wait_for(lambda: store.get_incident(first["id"])["alarm_count"] == 2, what="attached alarm")
            await gateway.acknowledge(first["id"], "dave")

            # resolved: a false alarm with a note; a man-down that routing could not deliver (dead letter)
            second = await incident_of(devices["dev-002"].alarm("man_down", cause="no_motion", location={"zone": "loading bay"}))
            await wait_for(lambda: gateway.router.dead_letters_total["ops-hook"] == 1, timeout=10, what="dead letter")
            await gateway.acknowledge(second["id"], "erin")
            await gateway.resolve(second["id"], "erin", "false_alarm", "dropped on the floor")

            # raised and never acknowledged: escalated to tier 1
            third = await incident_of(devices["dev-003"].alarm("panic"))
            await wait_for(lambda: store.get_incident(third["id"])["tier"] >= 1, timeout=5, what="escalation")

            # resolved straight from raised
            test = await incident_of(devices["dev-004"].alarm("panic"))
            await gateway.resolve(test["id"], "dave", "test")

            # pre-alarm events, a device session (active), a desk session (ended), a desk session gone overdue
            devices["dev-001"].event("pre_alarm_started", cause="fall", countdown_s=20)
            devices["dev-001"].event("pre_alarm_cancelled", cause="fall")
            devices["dev-001"].event("session_start", duration_s=7200, location={"zone": "workshop"})
            devices["dev-001"].event("check_in", location={"zone": "workshop"})
            ended = await gateway.start_session("dev-003", "Ann Smith", "roof", "+44 7700 900123", time.time() + 3600)
            await gateway.end_session(ended["id"], "desk")
            overdue = await gateway.start_session("dev-004", "Bob Jones", "cellar", "+44 7700 900456", time.time() + 0.3)
            await wait_for(lambda: store.get_session(overdue["id"])["state"] == "overdue", what="overdue session")
            await wait_for(lambda: any(s["source"] == "device" for s in store.list_sessions(active_only=True)),
                           what="device session")

            # an unregistered device, and messages the gateway rejects
            stranger = Device(broker, "dev-777", site="hq")
            await incident_of(stranger.alarm("panic"))
            stranger.publish("alarm", b"{not json")
            devices["dev-003"].publish("heartbeat", {"v": 1, "device": "dev-003", "battery_pct": "full"})
            await wait_for(lambda: len(store.list_rejects()) >= 2, what="two rejects")
            await gateway.register_device("dev-777", "hq")

            devices["dev-004"].vanish()  # the broker sends its Last Will: offline
            await wait_for(lambda: store.get_device("dev-004")["state"] == "offline", what="dev-004 offline")
            await wait_for(lambda: store.count_unsent_commands() == 0, what="commands acknowledged")
            for device in (*devices.values(), stranger):
                if device.device != "dev-004":
                    device.close()
    finally:
        broker.stop()
    return Path(config.gateway.db)


def main(out: str) -> None:
    if importlib.util.find_spec("gateway.schema") is not None:
        sys.exit("this code has schema versions: it would not make a release 0.1.0 database")
    with tempfile.TemporaryDirectory() as tmp:
        db = asyncio.run(record(Path(tmp)))
        with sqlite3.connect(db) as conn:
            conn.execute("VACUUM INTO ?", (out,))
        with sqlite3.connect(out) as conn:  # as the gateway left it: WAL
            conn.execute("PRAGMA journal_mode=WAL")


if __name__ == "__main__":
    main(sys.argv[1])
