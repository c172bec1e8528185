"""A worker asks what is held about them, then to be forgotten. A marker name
and phone are planted everywhere the running system copies them (incident
summaries and notes, audit texts, a session and its check-in note, an
undelivered notification, locations in messages); the export finds them,
and after `forget` not one byte of them is left in the database file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateway_harness import Device, make_config, running_gateway, wait_for

from gateway.store import Store

LONEWATCH = str(Path(sys.executable).parent / "lonewatch")
NAME, PHONE, PLACE = "Zorro Markerson", "+47 998 87 766", "cold room Q7"
# A webhook to a closed port: the notification of the alarm ends as a dead letter naming the worker.
DEAD_HOOK = """
[routing.channels.duty]
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "a-test-secret-of-some-length"
max_attempts = 1
timeout_s = 1.0

[[routing.rules]]
channels = ["duty"]
"""


def lonewatch(*args) -> subprocess.CompletedProcess:
    return subprocess.run([LONEWATCH, "privacy", *args], capture_output=True, text=True, timeout=60)


def database_bytes(path: Path) -> bytes:
    """The whole database as stored: the file and its write-ahead log."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_export_finds_a_worker_everywhere_and_forget_leaves_no_trace(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto, DEAD_HOOK, devices={"registered": ["dev-001"]},
                         sessions={"check_interval_s": 0.1})
    async with running_gateway(config) as gateway:
        worker = await gateway.add_worker(NAME, PHONE, f"{NAME} has a pacemaker", "dev-001", by="alice")
        device = Device(mosquitto)
        alarm = device.alarm("panic", location={"zone": PLACE})
        incident = (await wait_for(gateway.store.list_incidents, what="the panic"))[0]
        await gateway.resolve(incident["id"], "alice", "genuine", note=f"called {NAME} on {PHONE}")
        session = await gateway.start_session(worker_id=worker["id"], place=PLACE, duration_s=1)
        await gateway.check_in_session(session["id"], by="alice", note=f"spoke to {NAME}")
        await wait_for(lambda: any(i["type"] == "overdue" for i in gateway.store.list_incidents()), timeout=10,
                       what="the session overdue")
        await wait_for(lambda: gateway.store.db.execute("SELECT count(*) FROM dead_letters").fetchone()[0],
                       timeout=10, what="a dead letter")
        device.close()

    db = Path(config.gateway.db)
    assert NAME.encode() in database_bytes(db) and PHONE.encode() in database_bytes(db)
    exported = lonewatch("export", "--db", str(db), "--worker", str(worker["id"]))
    assert exported.returncode == 0, exported.stderr
    held = json.loads(exported.stdout)
    assert held["worker"]["name"] == NAME
    assert alarm["id"] in {m["msg_id"] for m in held["messages"]}
    assert {i["type"] for i in held["incidents"]} == {"panic", "overdue"}
    assert [s["id"] for s in held["sessions"]] == [session["id"]] and held["check_ins"] and held["dead_letters"]

    forgotten = lonewatch("forget", "--db", str(db), "--worker", str(worker["id"]))
    assert forgotten.returncode == 0, forgotten.stderr
    store = Store(str(db))
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.db.execute("VACUUM")  # what SQLite kept in free pages is part of the file too
    store.close()
    stored = database_bytes(db)
    for marker in (NAME, PHONE, PLACE, "pacemaker"):
        assert marker.encode() not in stored, marker
    store = Store(str(db))
    audit = store.list_audit(action="privacy_forget")
    assert len(audit) == 1 and f"worker #{worker['id']} forgotten" in audit[0]["detail"]
    assert len(store.list_incidents()) == 2  # the desk's record of what happened stays
    store.close()
    again = lonewatch("forget", "--db", str(db), "--worker", str(worker["id"]))
    assert again.returncode == 2 and "forgotten already" in again.stderr


def test_an_unknown_worker_is_a_clear_error(tmp_path):
    db = tmp_path / "lonewatch.db"
    Store(str(db)).close()
    result = lonewatch("export", "--db", str(db), "--worker", "42")
    assert result.returncode == 2 and "no worker with id 42" in result.stderr
