"""The database's schema version, and the steps that bring a database to it.

PRAGMA user_version in the file's header is the number of the last step
applied. Every open of the store (gateway, desk, `lonewatch alarms`, demo,
benchmarks) goes through upgrade(): a new file gets every step, an older one
the steps it lacks, all in one transaction, so a failure leaves the file as it
was. A file from a newer release is refused before anything is written.

Release 0.1.0 had no version: its files have user_version 0 and step 1 adopts
them, after checking that their tables are the ones 0.1.0 made.

A later schema change is a new step at the end of MIGRATIONS, never an edit to
an earlier one (docs/gateway.md, "Schema and upgrades").
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Callable, NamedTuple

import sqlite_utils

log = logging.getLogger("lonewatch.schema")

# IF NOT EXISTS: the same script creates a new file and completes a 0.1.0 one.
RELEASE_0_1_0 = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    msg_id TEXT,
    type TEXT,
    device_time REAL,
    event_time REAL,
    skew_s REAL,
    body TEXT NOT NULL
);
-- The protocol's message id is what makes a resend a duplicate.
CREATE UNIQUE INDEX IF NOT EXISTS messages_msg_id ON messages (kind, msg_id);
CREATE INDEX IF NOT EXISTS messages_received_at ON messages (received_at);
-- Heartbeats have a shorter retention; this finds the old ones without
-- walking past every other kind of message on the way.
CREATE INDEX IF NOT EXISTS messages_heartbeat_age ON messages (received_at) WHERE kind = 'heartbeat';

CREATE TABLE IF NOT EXISTS rejects (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    topic TEXT NOT NULL,
    device TEXT,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rejects_received_at ON rejects (received_at);

CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY,
    site TEXT,
    registered INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'unknown',
    first_seen REAL,
    last_seen REAL,
    battery_pct INTEGER,
    fw TEXT,
    rssi INTEGER,
    unregistered_messages INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    type TEXT NOT NULL,
    cause TEXT,
    priority TEXT NOT NULL,
    summary TEXT NOT NULL,
    state TEXT NOT NULL,
    alarm_id TEXT,
    registered INTEGER NOT NULL,
    raised_at REAL NOT NULL,
    received_at REAL NOT NULL,
    event_time REAL NOT NULL,
    device_time REAL,
    skew_s REAL,
    location TEXT,
    battery_pct INTEGER,
    alarm_count INTEGER NOT NULL DEFAULT 1,
    delivered_at REAL,
    tier INTEGER NOT NULL DEFAULT 0,
    alerted_at REAL NOT NULL,
    acknowledged_at REAL,
    acknowledged_by TEXT,
    resolved_at REAL,
    resolved_by TEXT,
    resolution TEXT,
    note TEXT
);
-- A device's open incidents, oldest first, with no sort: every alarm looks here.
CREATE INDEX IF NOT EXISTS incidents_open_by_device ON incidents (device, id) WHERE state != 'resolved';

-- Every alarm id that went into an incident: the dedup key.
CREATE TABLE IF NOT EXISTS incident_alarms (
    alarm_id TEXT PRIMARY KEY,
    incident_id INTEGER NOT NULL,
    received_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    incident_id INTEGER,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_incident ON audit (incident_id);

CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    site TEXT NOT NULL,
    worker TEXT,
    place TEXT,
    phone TEXT,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at REAL NOT NULL,
    interval_s REAL NOT NULL,
    due_at REAL NOT NULL,
    reminded_due_at REAL,
    last_check_in REAL,
    location TEXT,
    incident_id INTEGER,
    ended_at REAL,
    ended_by TEXT
);
CREATE INDEX IF NOT EXISTS sessions_device ON sessions (device, state);

-- Commands to devices, written in the transaction that decided them; sent_at
-- is set when the broker acknowledged one (PUBACK). Unsent ones are published
-- again when the gateway starts.
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    command_id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    cmd TEXT NOT NULL,
    ref TEXT,
    payload TEXT NOT NULL,
    sent_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Notifications routing gave up on (gateway/channels/dead_letters.py).
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    time REAL,
    channel TEXT,
    incident_id TEXT,
    event TEXT,
    tier INTEGER,
    delivery_id TEXT,
    payload TEXT,
    last_error TEXT,
    attempts INTEGER
);
"""
# Tables a 0.1.0 file may lack: its router made dead_letters only when a gateway started.
MADE_LATER_BY_0_1_0 = {"dead_letters"}


class SchemaError(RuntimeError):
    """The database cannot be used by this release; it was left as it was."""


class Migration(NamedTuple):
    version: int
    does: str  # for the log: "schema: upgrading from 3 to 4: <does>"
    apply: Callable[[sqlite_utils.Database], None]


def _run_script(db: sqlite_utils.Database, script: str) -> None:
    """One statement at a time: sqlite3's executescript() would commit the
    upgrade's transaction first."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""


def _columns(db: sqlite_utils.Database) -> dict[str, list[str]]:
    return {name: [c.name for c in db[name].columns] for name in db.table_names()}


def _release_0_1_0(db: sqlite_utils.Database) -> None:
    found = _columns(db)
    if found:
        expected = sqlite_utils.Database(memory=True)
        _run_script(expected, RELEASE_0_1_0)
        release_columns = _columns(expected)
        expected.close()
        for table, columns in release_columns.items():
            if table not in found and table not in MADE_LATER_BY_0_1_0:
                raise SchemaError(f"it has no {table} table, so it is not a lonewatch 0.1.0 database")
            if table in found and found[table] != columns:
                raise SchemaError(f"its {table} table has columns {', '.join(found[table])}, "
                                  f"not those of lonewatch 0.1.0 ({', '.join(columns)})")
    _run_script(db, RELEASE_0_1_0)


PEOPLE_AND_ACCOUNTS = """
CREATE TABLE workers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);

-- Who wore which device from when to when: an old incident names the
-- worker of its time, not today's.
CREATE TABLE assignments (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    worker_id INTEGER NOT NULL REFERENCES workers (id),
    assigned_at REAL NOT NULL,
    ended_at REAL,
    assigned_by TEXT NOT NULL
);
CREATE INDEX assignments_device ON assignments (device, assigned_at);
CREATE UNIQUE INDEX assignments_current_device ON assignments (device) WHERE ended_at IS NULL;
CREATE UNIQUE INDEX assignments_current_worker ON assignments (worker_id) WHERE ended_at IS NULL;

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('operator', 'admin')),
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    password_changed_at REAL NOT NULL,
    disabled_at REAL
);

-- The board reads every open incident; history reads by time.
CREATE INDEX incidents_open ON incidents (id) WHERE state != 'resolved';
CREATE INDEX incidents_raised_at ON incidents (raised_at);
"""


# Lone-work sessions as the desk registers them: who from the registry, a
# note, the expected end apart from the next check-in (the amber timer), when
# it first ran overdue and how it ended; each check-in a row of its own;
# the session an incident was raised for.
# Rows of 0.1.0 had one due time, which was also their end.
SESSIONS_FOR_THE_DESK = """
ALTER TABLE sessions ADD COLUMN worker_id INTEGER REFERENCES workers (id);
ALTER TABLE sessions ADD COLUMN note TEXT;
ALTER TABLE sessions ADD COLUMN ends_at REAL;
ALTER TABLE sessions ADD COLUMN check_in_s REAL;
ALTER TABLE sessions ADD COLUMN overdue_at REAL;
ALTER TABLE sessions ADD COLUMN ended_how TEXT;
ALTER TABLE sessions ADD COLUMN check_ins INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET ends_at = due_at;
UPDATE sessions SET overdue_at = due_at WHERE state = 'overdue' OR incident_id IS NOT NULL;
CREATE INDEX sessions_ended_at ON sessions (ended_at) WHERE state = 'ended';

CREATE TABLE session_check_ins (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    note TEXT
);
CREATE INDEX session_check_ins_session ON session_check_ins (session_id, at);

-- The session an incident was raised for: its summary names the worker, so
-- it is purged with the session.
ALTER TABLE incidents ADD COLUMN session_id INTEGER REFERENCES sessions (id);
CREATE INDEX incidents_session ON incidents (session_id) WHERE session_id IS NOT NULL;
"""


# Notifications routing decided and has not yet delivered or given up on:
# written in the transaction of the incident change that caused them, so a
# gateway that dies resumes them at its next start (gateway/routing.py). One
# row per channel; a decision is made once per incident, event and tier, which
# also makes writing it twice in one transaction harmless.
PENDING_DELIVERIES = """
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    incident_id INTEGER NOT NULL,
    event TEXT NOT NULL,
    tier INTEGER NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (incident_id, event, tier, channel)
);
"""


# Each device's pre-alarms (the audit holds them: they are not incidents),
# counted for the devices page without reading the whole audit.
AUDIT_BY_ACTOR = """
CREATE INDEX audit_actor_action ON audit (actor, action, at);
"""


MIGRATIONS = (
    Migration(1, "create the tables of release 0.1.0, or adopt a 0.1.0 file's", _release_0_1_0),
    Migration(2, "workers, their devices over time, desk users; indexes for the board and history",
              lambda db: _run_script(db, PEOPLE_AND_ACCOUNTS)),
    Migration(3, "sessions for the desk: worker, note, end apart from the check-in timer, how it ended, check-ins",
              lambda db: _run_script(db, SESSIONS_FOR_THE_DESK)),
    Migration(4, "pending notifications, so deliveries survive a gateway's death",
              lambda db: _run_script(db, PENDING_DELIVERIES)),
    Migration(5, "the audit indexed by who and what, for each device's pre-alarms on the devices page",
              lambda db: _run_script(db, AUDIT_BY_ACTOR)),
)


def version(db: sqlite_utils.Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def _refuse_newer(found: int, latest: int, path: str) -> None:
    if found > latest:
        raise SchemaError(
            f"{path} has schema version {found}, but this release of lonewatch knows versions up to {latest}: "
            f"a newer release wrote it. Run that release (or a later one) on this database; it was left untouched.")


def upgrade(db: sqlite_utils.Database, path: str, migrations=MIGRATIONS) -> None:
    """Bring the database to the last version in migrations, in one transaction; SchemaError if it cannot be."""
    latest = migrations[-1].version
    try:
        found = version(db)
    except sqlite3.DatabaseError as exc:
        raise SchemaError(f"cannot read {path}: {exc}") from exc
    _refuse_newer(found, latest, path)
    if found == latest:
        return
    conn = db.conn
    try:
        # The write lock first: two processes opening an old file upgrade it once.
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise SchemaError(f"cannot upgrade {path} from schema version {found} to {latest}: {exc}; "
                          "stop whatever is writing to it and start again") from exc
    doing = None
    try:
        found = version(db)
        _refuse_newer(found, latest, path)
        if found == latest:  # another process upgraded it while we waited for the lock
            conn.rollback()
            return
        new = found == 0 and not db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if new:
            log.info("schema: new database %s, creating schema version %d", path, latest)
        for step in migrations:
            if step.version > found:
                doing = f"step {step.version} ({step.does})"
                log.log(logging.DEBUG if new else logging.INFO,
                        "schema: upgrading from %d to %d: %s", step.version - 1, step.version, step.does)
                step.apply(db)
        doing = "the commit"
        conn.execute(f"PRAGMA user_version = {latest:d}")
        conn.commit()
    except Exception as exc:
        conn.rollback()
        if doing is None:
            raise
        raise SchemaError(f"cannot upgrade {path} from schema version {found} to {latest}: {doing} failed: "
                          f"{exc}. Nothing was changed; this release cannot use the database until that is fixed."
                          ) from exc
    except BaseException:
        conn.rollback()
        raise
    if not new:
        log.info("schema: %s upgraded from version %d to %d", path, found, latest)
