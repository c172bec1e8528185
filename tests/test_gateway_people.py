"""Workers, the devices they wear over time, and desk users, as a site sets
them up with `lonewatch worker` and `lonewatch user`: an incident names the
worker who wore the device when it was raised (or whom the lone-work session
that raised it names), and so do mail and webhooks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway import accounts, incidents, people, sessions
from gateway.channels import Notification
from gateway.channels.mail import body, subject
from gateway.config import SessionsSection
from gateway.incidents import Effects
from gateway.store import Store
from lonewatch.commands.demo import _prepare

LONEWATCH = str(Path(sys.executable).parent / "lonewatch")


def lonewatch(*args, stdin: str | None = None):
    return subprocess.run([LONEWATCH, *args], input=stdin, capture_output=True, text=True, timeout=60)


@pytest.fixture
def db(tmp_path) -> str:
    path = str(tmp_path / "gateway.db")
    Store(path).close()
    return path


def raise_panic(store, device: str, now: float) -> int:
    with store.transaction():
        return incidents.raise_alarm(store, Effects(), site="hq", device=device, alarm_type="panic",
                                     cause=None, now=now)


def test_workers_from_the_command_line(db):
    added = lonewatch("worker", "add", "--db", db, "--name", "Ann Smith", "--phone", "+44 7700 900123",
                      "--note", "diabetic", "--device", "dev-001")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("worker 1 Ann Smith (+44 7700 900123) wears dev-001")
    assert lonewatch("worker", "add", "--db", db, "--name", "Bob", "--phone", "555 0102").returncode == 0
    moved = lonewatch("worker", "assign", "--db", db, "--device", "dev-001", "--worker", "Bob")
    assert moved.returncode == 0 and "dev-001 is now worn by Bob (worker 2)" in moved.stdout
    listed = lonewatch("worker", "list", "--db", db).stdout.splitlines()
    assert [line.split()[1] for line in listed[1:]] == ["Ann", "Bob"]
    assert "dev-001" in listed[2] and "dev-001" not in listed[1]

    bad_phone = lonewatch("worker", "add", "--db", db, "--name", "Cy", "--phone", "ring me")
    assert bad_phone.returncode == 2 and "phone must be a number to dial" in bad_phone.stderr
    nobody = lonewatch("worker", "assign", "--db", db, "--device", "dev-001", "--worker", "Zed")
    assert nobody.returncode == 2 and "no worker named 'Zed'" in nobody.stderr
    bad_device = lonewatch("worker", "assign", "--db", db, "--device", "Dev 1", "--worker", "1")
    assert bad_device.returncode == 2 and "device id must match" in bad_device.stderr
    missing = lonewatch("worker", "list", "--db", db + ".nope")
    assert missing.returncode == 1 and "no database at" in missing.stderr

    store = Store(db)
    assert [(a["worker_name"], a["ended_at"] is None) for a in store.assignments(device="dev-001")] == \
           [("Ann Smith", False), ("Bob", True)]
    assert {"worker_added", "device_assigned"} <= {a["action"] for a in store.list_audit()}
    store.close()


def test_an_old_incident_names_who_wore_the_device_then(db):
    store = Store(db)
    now = time.time()
    with store.transaction():
        ann = people.add_worker(store, "Ann", "555 0101", "", "dev-001", now - 300, "test")
        bob = people.add_worker(store, "Bob", "555 0102", "", None, now - 300, "test")
    before = raise_panic(store, "dev-001", now - 200)
    with store.transaction():
        incidents.resolve(store, Effects(), before, "desk", "test", "", now - 150)
        people.assign(store, bob["id"], "dev-001", now - 100, "test")
    after = raise_panic(store, "dev-001", now - 50)
    with store.transaction():
        people.assign(store, None, "dev-001", now - 10, "test")
    unworn = raise_panic(store, "dev-002", now)

    assert store.get_incident(before)["worker"]["name"] == "Ann"
    assert store.get_incident(after)["worker"]["name"] == "Bob"
    assert store.get_incident(unworn)["worker"] is None
    assert store.get_worker(ann["id"])["device"] is None
    store.close()


def test_mail_and_webhooks_name_the_worker_or_say_nobody_is_assigned(db):
    store = Store(db)
    with store.transaction():
        people.add_worker(store, "Ann Smith", "+44 7700 900123", "uses a wheelchair", "dev-001", time.time() - 5, "t")
    worn = store.get_incident(raise_panic(store, "dev-001", time.time()))
    unworn = store.get_incident(raise_panic(store, "dev-002", time.time()))
    store.close()

    n = Notification("d1", "raised", 0, worn, time.time())
    assert subject(n) == "[lonewatch] PANIC Ann Smith (dev-001) hq — raised"
    text = body(n)
    assert "Worker:   Ann Smith, phone +44 7700 900123" in text and "Note:     uses a wheelchair" in text
    alone = Notification("d2", "raised", 0, unworn, time.time())
    assert subject(alone) == "[lonewatch] PANIC dev-002 NO WORKER ASSIGNED hq — raised"
    assert "NO WORKER ASSIGNED to dev-002: find out who wears it" in body(alone)

    hook = json.loads(n.to_json())["incident"]["worker"]
    assert (hook["name"], hook["phone"]) == ("Ann Smith", "+44 7700 900123")
    assert json.loads(alone.to_json())["incident"]["worker"] is None


def test_mail_for_an_overdue_session_names_whom_the_session_names(db):
    # Typed in at the desk: nobody in the registry, and no device.
    store = Store(db)
    now = time.time()
    with store.transaction():
        sessions.start(store, Effects(), device="", site="hq", now=now - 60, ends_at=now - 1, check_in_s=None,
                       source="desk", actor="dave", worker="Bob Jones", phone="0161 496 0000", place="cellar")
        sessions.check_due(store, Effects(), SessionsSection(), now)
    [incident] = store.list_incidents()
    store.close()
    n = Notification("d3", "raised", 0, incident, now)
    assert subject(n).startswith("[lonewatch] OVERDUE Bob Jones (")
    assert "Worker:   Bob Jones, phone 0161 496 0000" in body(n)


def test_desk_users_from_the_command_line(db):
    added = lonewatch("user", "add", "ada", "--role", "admin", "--db", db, stdin="long enough secret\n")
    assert added.returncode == 0 and "user ada added as admin" in added.stdout
    again = lonewatch("user", "add", "ada", "--db", db, stdin="long enough secret\n")
    assert again.returncode == 2 and "user 'ada' already exists" in again.stderr
    short = lonewatch("user", "add", "bo", "--db", db, stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr

    store = Store(db)
    first = store.get_user("ada")
    assert first["role"] == "admin" and first["password_hash"].startswith("$argon2id$")
    assert accounts.verify_password("long enough secret", first["password_hash"])
    store.close()

    assert lonewatch("user", "passwd", "ada", "--db", db, stdin="another long one\n").returncode == 0
    assert lonewatch("user", "disable", "ada", "--db", db).returncode == 0
    unknown = lonewatch("user", "disable", "zed", "--db", db)
    assert unknown.returncode == 2 and "no user 'zed'" in unknown.stderr
    store = Store(db)
    user = store.get_user("ada")
    assert accounts.verify_password("another long one", user["password_hash"]) and user["disabled_at"]
    assert [a["action"] for a in store.list_audit()][::-1] == ["user_added", "user_password_changed", "user_disabled"]
    store.close()


def test_the_demo_gives_each_simulated_device_a_worker_once(db):
    _prepare(db, ["sim-001", "sim-002"])
    _prepare(db, ["sim-001", "sim-002", "sim-003"])
    store = Store(db)
    assert [(w["device"], w["phone"][:12]) for w in store.list_workers()] == \
           [("sim-001", "+44 7700 900"), ("sim-002", "+44 7700 900"), ("sim-003", "+44 7700 900")]
    store.close()


@pytest.mark.parametrize("name, phone, note, message", [
    ("", "555 0101", "", "name must be 1 to 100 characters"),
    ("Ann", "", "", "phone must be a number to dial"),
    ("Ann", "555 0101", "x" * 501, "note must be text of at most 500 characters"),
])
def test_a_worker_needs_a_name_and_a_number_to_call(name, phone, note, message):
    with pytest.raises(ValueError, match=message):
        people.check_worker(name, phone, note)
