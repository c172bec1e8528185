"""Schema versions: a release 0.1.0 database is adopted with nothing lost, a
newer release's database is refused untouched, and an upgrade is one
transaction that a failing step rolls back whole."""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from gateway_harness import Device, make_config, running_gateway, wait_for

from gateway import schema
from lonewatch import cli
from gateway.schema import MIGRATIONS, Migration, SchemaError
from contract.vocabulary import INCIDENT_STATES
from gateway.store import Store

RELEASE_0_1_0 = Path(__file__).parent / "data" / "release-0.1.0.db"
LATEST = MIGRATIONS[-1].version


def copy_of_release_0_1_0(tmp_path: Path) -> Path:
    path = tmp_path / "lonewatch.db"
    shutil.copyfile(RELEASE_0_1_0, path)
    return path


def every_row(path: Path) -> dict[str, list[dict]]:
    """Every row of every table, read without the store."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: [dict(r) for r in conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid')] for t in tables}
    finally:
        conn.close()


def shape(path: Path) -> dict:
    """Tables with their columns, and index names: what a migration changes."""
    db = sqlite_utils.Database(path)
    try:
        return {"user_version": schema.version(db),
                "tables": {t: [c.name for c in db[t].columns] for t in db.table_names()},
                "indexes": sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'"))}
    finally:
        db.close()


def file_state(path: Path) -> tuple:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_a_release_0_1_0_database_is_adopted_with_nothing_lost(tmp_path, caplog):
    path = copy_of_release_0_1_0(tmp_path)
    before = every_row(path)
    assert shape(path)["user_version"] == 0

    with caplog.at_level(logging.INFO, logger="lonewatch.schema"):
        store = Store(str(path))
    assert f"schema: upgrading from 0 to 1: {MIGRATIONS[0].does}" in caplog.messages
    assert f"schema: {path} upgraded from version 0 to {LATEST}" in caplog.messages

    # What the fixture holds, through the store's own readers.
    assert {i["state"] for i in store.list_incidents()} == set(INCIDENT_STATES)
    assert {s["state"] for s in store.list_sessions()} == {"active", "overdue", "ended"}
    assert {r["reason"] for r in store.list_rejects()} == {"bad_json", "schema"}
    assert {a["action"] for a in store.list_audit()} >= {"raised", "acknowledged", "resolved", "escalated",
                                                          "session_started", "session_ended"}
    store.close()

    after = every_row(path)
    for table, rows in before.items():
        assert rows, f"the fixture has no {table} rows"
        kept = [{column: row[column] for column in rows[0]} for row in after[table]]
        assert kept == rows, f"{table} changed in the upgrade"
    # An adopted file is the same as one this release makes from nothing.
    assert shape(path) == shape(new_database(tmp_path / "new.db"))


def new_database(path: Path) -> Path:
    Store(str(path)).close()
    return path


async def test_the_gateway_runs_on_an_upgraded_0_1_0_database(tmp_path, mosquitto):
    path = copy_of_release_0_1_0(tmp_path)
    config = make_config(tmp_path, mosquitto, gateway={"db": str(path)},
                         devices={"registered": ["dev-001", "dev-002", "dev-003", "dev-004"]})
    async with running_gateway(config) as gateway:
        [old] = [i for i in gateway.store.list_incidents(state="raised") if i["type"] == "panic" and i["registered"]]
        await gateway.acknowledge(old["id"], "dave")
        device = Device(mosquitto, old["device"], boot=2)  # a new boot: new alarm ids
        # The alarm ids of 0.1.0 are still the dedup key: a resend is answered, not a new incident.
        device.alarm("panic", alarm_id=old["alarm_id"])
        assert (await device.wait_command("delivered")).body["ref"] == old["alarm_id"]
        device.alarm("panic")
        await wait_for(lambda: gateway.store.get_incident(old["id"])["alarm_count"] == 2, what="attached alarm")
        assert [i for i in gateway.store.list_incidents() if i["alarm_id"] == old["alarm_id"]] == \
               [gateway.store.get_incident(old["id"])]
        device.close()


def later_release(*steps) -> tuple[Migration, ...]:
    return MIGRATIONS + tuple(Migration(LATEST + n, does, apply) for n, (does, apply) in enumerate(steps, 1))


def add_escalation_note(db):
    db["incidents"].add_column("escalation_note", str)


def test_a_database_from_a_newer_release_is_refused_and_left_untouched(tmp_path, capsys):
    path = new_database(tmp_path / "lonewatch.db")
    db = sqlite_utils.Database(path)
    schema.upgrade(db, str(path), later_release(("a column of a later release", add_escalation_note)))
    db.close()
    untouched = file_state(path)

    with pytest.raises(SchemaError) as refused:
        Store(str(path))
    message = str(refused.value)
    assert f"schema version {LATEST + 1}" in message and f"versions up to {LATEST}" in message
    assert "Run that release" in message

    config = tmp_path / "gateway.toml"
    config.write_text(f'[gateway]\ndb = "{path}"\n')
    assert cli.main(["alarms", "--db", str(path)]) == 1
    assert cli.main(["gateway", "--config", str(config)]) == 1
    printed = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in printed] == ["lonewatch alarms", "lonewatch gateway"]
    assert all(f"schema version {LATEST + 1}" in line for line in printed)
    assert file_state(path) == untouched


def test_the_steps_of_an_upgrade_are_logged_and_committed_together(tmp_path, caplog):
    path = copy_of_release_0_1_0(tmp_path)
    Store(str(path)).close()
    last_column = shape(path)["tables"]["incidents"][-1]
    seen_by_others = []

    def count_by_device(db):
        db["alarm_counts"].create({"device": str, "alarms": int}, pk="device")
        db.execute("INSERT INTO alarm_counts SELECT device, sum(alarm_count) FROM incidents GROUP BY device")
        # Another connection, as `lonewatch alarms` would be: nothing of the upgrade yet.
        with contextlib.closing(sqlite3.connect(path)) as other:
            seen_by_others.append((other.execute("PRAGMA user_version").fetchone()[0],
                                   [c[1] for c in other.execute("PRAGMA table_info(incidents)")][-1]))

    db = sqlite_utils.Database(path)
    with caplog.at_level(logging.INFO, logger="lonewatch.schema"):
        schema.upgrade(db, str(path), later_release(("a note on escalations", add_escalation_note),
                                                    ("alarms counted by device", count_by_device)))
    db.close()

    assert seen_by_others == [(LATEST, last_column)]
    assert [m for m in caplog.messages if m.startswith("schema: upgrading")] == [
        f"schema: upgrading from {LATEST} to {LATEST + 1}: a note on escalations",
        f"schema: upgrading from {LATEST + 1} to {LATEST + 2}: alarms counted by device"]
    after = shape(path)
    assert after["user_version"] == LATEST + 2
    assert after["tables"]["incidents"][-1] == "escalation_note"
    assert sum(r["alarms"] for r in every_row(path)["alarm_counts"]) == \
           sum(i["alarm_count"] for i in every_row(path)["incidents"])


def test_a_failing_step_leaves_the_database_untouched(tmp_path):
    path = copy_of_release_0_1_0(tmp_path)
    Store(str(path)).close()
    untouched, rows, layout = file_state(path), every_row(path), shape(path)

    def resolve_everything(db):
        db.execute("UPDATE incidents SET state = 'resolved'")
        db.execute("ALTER TABLE incidents ADD COLUMN escalation_note TEXT")  # the step before added it

    db = sqlite_utils.Database(path)
    with pytest.raises(SchemaError) as failed:
        schema.upgrade(db, str(path), later_release(("a note on escalations", add_escalation_note),
                                                    ("resolve everything", resolve_everything)))
    db.close()
    message = str(failed.value)
    assert f"from schema version {LATEST} to {LATEST + 2}" in message
    assert f"step {LATEST + 2} (resolve everything) failed: duplicate column name: escalation_note" in message
    assert "Nothing was changed" in message
    assert (file_state(path), every_row(path), shape(path)) == (untouched, rows, layout)


def test_a_database_of_another_program_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, text TEXT)")
    untouched = file_state(path)
    with pytest.raises(SchemaError, match="its messages table has columns id, text, not those of lonewatch 0.1.0"):
        Store(str(path))
    assert file_state(path) == untouched


def test_migrations_are_numbered_one_after_another():
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_an_upgraded_0_1_0_database_gets_people_and_its_old_incidents_keep_no_worker(tmp_path, caplog):
    path = copy_of_release_0_1_0(tmp_path)
    before = every_row(path)
    with caplog.at_level(logging.INFO, logger="lonewatch.schema"):
        store = Store(str(path))
    assert f"schema: upgrading from 1 to 2: {MIGRATIONS[1].does}" in caplog.messages
    assert (store.list_workers(), store.list_users(), store.assignments()) == ([], [], [])
    old = store.list_incidents(limit=10_000)
    assert len(old) == len(before["incidents"]) and all(i["worker"] is None for i in old)

    # Someone wears an old device from now on: its old incidents still had nobody.
    import time

    from gateway import people
    device = old[0]["device"]
    with store.transaction():
        people.add_worker(store, "Ann", "555 0101", "", device, time.time(), "test")
    assert store.get_incident(old[0]["id"])["worker"] is None
    assert [d["worker"]["name"] for d in store.list_devices_for_desk(prealarms_since=0) if d["device"] == device] == ["Ann"]
    store.close()
    after = every_row(path)
    for table, rows in before.items():
        assert [{c: r[c] for c in rows[0]} for r in after[table]][:len(rows)] == rows


async def test_the_sessions_of_a_0_1_0_database_keep_their_due_time_as_their_end(tmp_path, mosquitto):
    path = copy_of_release_0_1_0(tmp_path)
    before = {row["id"]: row for row in every_row(path)["sessions"]}
    config = make_config(tmp_path, mosquitto, gateway={"db": str(path)},
                         devices={"registered": ["dev-001", "dev-002", "dev-003", "dev-004"]})
    async with running_gateway(config) as gateway:
        upgraded = {s["id"]: s for s in gateway.store.list_sessions()}
        assert upgraded.keys() == before.keys()
        for session_id, old in before.items():
            new = upgraded[session_id]
            assert (new["ends_at"], new["check_in_s"], new["check_ins"]) == (old["due_at"], None, 0)
            assert (new["overdue_at"] is not None) == (old["incident_id"] is not None or old["state"] == "overdue")
        # An old open session is the desk's to end like any other, and then part of the history.
        [still_open] = [s for s in gateway.sessions("active") if s["state"] == "overdue"]
        ended = await gateway.end_session(still_open["id"], "dave")
        assert ended["ended_how"] == "ended_by_desk"
        assert still_open["id"] in [s["id"] for s in gateway.iter_session_history()]


def test_the_dead_letters_of_a_0_1_0_database_can_be_put_back_for_delivery(tmp_path, capsys):
    path = copy_of_release_0_1_0(tmp_path)
    letters = every_row(path)["dead_letters"]
    assert cli.main(["deliveries", "retry", "--db", str(path), "--all"]) == 0

    after = every_row(path)
    assert after["dead_letters"] == []
    # 0.1.0 kept the incident id as text; pending deliveries key it as a number.
    assert [(d["delivery_id"], d["channel"], str(d["incident_id"]), d["event"], d["tier"], d["payload"])
            for d in after["deliveries"]] == [
        (d["delivery_id"], d["channel"], d["incident_id"], d["event"], d["tier"], d["payload"]) for d in letters]
    assert capsys.readouterr().out.startswith(f"{len(letters)} dead letter(s) back for delivery")


def test_an_upgraded_database_counts_each_devices_pre_alarms_from_an_index(tmp_path, caplog):
    path = copy_of_release_0_1_0(tmp_path)
    with caplog.at_level(logging.INFO, logger="lonewatch.schema"):
        store = Store(str(path))
    assert f"schema: upgrading from 4 to 5: {MIGRATIONS[4].does}" in caplog.messages
    assert "audit_actor_action" in shape(path)["indexes"]
    plan = store._all("EXPLAIN QUERY PLAN SELECT count(*) FROM audit au WHERE au.actor = 'dev-1'"
                      " AND au.action = 'pre_alarm_started' AND au.at >= 0")
    assert any("audit_actor_action" in row["detail"] for row in plan), plan
    store.close()
