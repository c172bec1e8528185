"""The gateway's SQLite database: every message, incidents, devices, sessions, audit.

All times are unix seconds (float, UTC) as given by time.time(): cheap to
compare and subtract, and the dashboard formats them for people.

One connection shared by the ingest writer thread and the asyncio side,
serialised by a lock; WAL keeps other processes (the CLI, `lonewatch alarms`)
reading while the gateway writes. synchronous=FULL because an acknowledged
alarm must survive a power cut, not only a crash; group commit in the ingest
writer pays for the fsync.

The tables, and how an older file is upgraded to them, are in gateway.schema.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading

import sqlite_utils

from contract.vocabulary import SESSION_OPEN_STATES
from gateway import schema

_OPEN_SESSION = "state IN (%s)" % ", ".join(f"'{state}'" for state in SESSION_OPEN_STATES)


# Each incident with the worker to call, and the lone-work session that
# raised it if one did. The worker is whoever wore its device when it was
# raised, or the person that session names: the desk may have typed in
# someone the registry does not know, and a session may have no device.
_WORKER_THEN = """(SELECT worker_id FROM assignments a WHERE a.device = incidents.device
    AND a.assigned_at <= incidents.raised_at AND (a.ended_at IS NULL OR a.ended_at > incidents.raised_at)
    ORDER BY a.assigned_at DESC LIMIT 1)"""
_SESSION_FIELDS = ("id", "worker_id", "worker", "phone", "place", "device", "state", "due_at", "last_check_in")
_INCIDENTS = ("SELECT incidents.*, w.id AS worker__id, w.name AS worker__name, w.phone AS worker__phone,"
              " w.note AS worker__note, " + ", ".join(f"s.{key} AS session__{key}" for key in _SESSION_FIELDS)
              + f" FROM incidents LEFT JOIN workers w ON w.id = {_WORKER_THEN}"
              " LEFT JOIN sessions s ON s.id = incidents.session_id")
_WORKER_FIELDS = ("id", "name", "phone", "note")


def _incident(row: dict | None) -> dict | None:
    if row is None:
        return None
    row["registered"] = bool(row["registered"])
    row["location"] = json.loads(row["location"]) if row["location"] else None
    worker = {key: row.pop(f"worker__{key}", None) for key in _WORKER_FIELDS}
    row["worker"] = worker if worker["id"] is not None else None
    session = {key: row.pop(f"session__{key}", None) for key in _SESSION_FIELDS}
    row["session"] = session if session["id"] is not None else None
    if session["worker"] and (worker["id"] is None or worker["id"] != session["worker_id"]):
        row["worker"] = {"id": session["worker_id"], "name": session["worker"], "phone": session["phone"] or "",
                         "note": None}
    return row


def _filters(filters: dict) -> tuple[str, list]:
    """WHERE clause of history: raised_from/raised_to (unix s), type, site, device, worker (id), state."""
    where, params = [], []
    for key, column in (("type", "type"), ("site", "site"), ("device", "device")):
        if filters.get(key):
            where.append(f"incidents.{column} = ?")
            params.append(filters[key])
    state = filters.get("state")
    if state == "open":
        where.append("incidents.state != 'resolved'")
    elif state:
        where.append("incidents.state = ?")
        params.append(state)
    if filters.get("raised_from") is not None:
        where.append("incidents.raised_at >= ?")
        params.append(filters["raised_from"])
    if filters.get("raised_to") is not None:
        where.append("incidents.raised_at < ?")
        params.append(filters["raised_to"])
    if filters.get("worker") is not None:
        where.append(f"{_WORKER_THEN} = ?")
        params.append(filters["worker"])
    return (" WHERE " + " AND ".join(where) if where else ""), params


# Each session with the state of its device (the desk shows whether it can still hear the wearer).
_SESSIONS = ("SELECT s.*, d.state AS device_state, d.last_seen AS device_last_seen, d.battery_pct AS device_battery"
             " FROM sessions s LEFT JOIN devices d ON d.device = s.device AND s.device != ''")


def _session(row: dict | None) -> dict | None:
    if row is None:
        return None
    row["location"] = json.loads(row["location"]) if row["location"] else None
    return row


def _purged_summary(i: str) -> str:
    """What the summary of a session's alarm (table alias i) says once the retention period is over."""
    return (f"(CASE {i}.type WHEN 'overdue' THEN 'OVERDUE' ELSE 'LOST CONTACT DURING LONE WORK' END"
            f" || ': lone-work session ' || {i}.session_id || ' on ' || {i}.device"
            " || ' (who and where removed after the retention period)')")


class Store:
    def __init__(self, path: str):
        self.path = path
        # A short busy timeout: the ingest writer has its own retry with backoff.
        conn = sqlite3.connect(path, check_same_thread=False, timeout=1.0)
        self.db = sqlite_utils.Database(conn)
        self.lock = threading.RLock()
        try:
            # First, before the journal mode is set: a newer release's file is left untouched.
            schema.upgrade(self.db, path)
        except BaseException:
            conn.close()
            raise
        self.db.enable_wal()
        self.db.execute("PRAGMA synchronous=FULL")
        # Sorts in memory: with the default, a query's sorter can open a temporary file.
        self.db.execute("PRAGMA temp_store=MEMORY")

    def close(self) -> None:
        with self.lock:
            self.db.close()

    @contextlib.contextmanager
    def transaction(self):
        """One atomic unit of work; nested calls are savepoints within the outer transaction."""
        with self.lock, self.db.atomic():
            yield self

    @contextlib.contextmanager
    def savepoint(self):
        """Inside a transaction: undo only this part if it raises. One fixed
        name (SQLite releases the innermost of that name), so the statements
        stay in the connection's cache, unlike a fresh random name per call."""
        conn = self.db.conn
        conn.execute("SAVEPOINT part")
        try:
            yield self
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK TO part")
                conn.execute("RELEASE part")
            raise
        conn.execute("RELEASE part")

    # The hot path (every message, several statements each) goes to the
    # sqlite3 connection directly: sqlite-utils' execute() adds its own checks
    # per call, and the writes here always run inside transaction().

    def _all(self, sql: str, params=()) -> list[dict]:
        with self.lock:
            cursor = self.db.conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _one(self, sql: str, params=()) -> dict | None:
        with self.lock:
            cursor = self.db.conn.execute(sql, params)
            row = cursor.fetchone()
            return None if row is None else dict(zip([d[0] for d in cursor.description], row))

    def _write(self, sql: str, params=()) -> int:
        """Run one statement inside the caller's transaction; return lastrowid."""
        return self.db.conn.execute(sql, params).lastrowid

    # ---- messages -----------------------------------------------------------

    def add_message(self, received_at, site, device, kind, body, msg_id=None,
                    device_time=None, event_time=None, skew_s=None) -> bool:
        """Append one accepted message; False if its protocol id was seen before."""
        cursor = self.db.conn.execute(
            "INSERT OR IGNORE INTO messages (received_at, site, device, kind, msg_id, type,"
            " device_time, event_time, skew_s, body) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (received_at, site, device, kind, msg_id, body.get("type"),
             device_time, event_time, skew_s, json.dumps(body, separators=(",", ":"))),
        )
        return cursor.rowcount == 1

    def add_reject(self, received_at, topic, device, reason, detail, size) -> None:
        self._write(
            "INSERT INTO rejects (received_at, topic, device, reason, detail, size) VALUES (?,?,?,?,?,?)",
            (received_at, topic[:200], device, reason, detail[:500], size),
        )

    def list_messages(self, device: str | None = None, kind: str | None = None, limit: int = 200) -> list[dict]:
        where, params = [], []
        if device:
            where.append("device = ?")
            params.append(device)
        if kind:
            where.append("kind = ?")
            params.append(kind)
        sql = "SELECT * FROM messages" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._all(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        for row in rows:
            row["body"] = json.loads(row["body"])
        return rows

    def list_rejects(self, limit: int = 200) -> list[dict]:
        return self._all("SELECT * FROM rejects ORDER BY id DESC LIMIT ?", (limit,))

    def count_rejects(self) -> int:
        return self._one("SELECT count(*) AS n FROM rejects")["n"]

    # ---- devices ------------------------------------------------------------

    def get_device(self, device: str) -> dict | None:
        row = self._one("SELECT * FROM devices WHERE device = ?", (device,))
        if row:
            row["registered"] = bool(row["registered"])
        return row

    def list_devices(self) -> list[dict]:
        rows = self._all("SELECT * FROM devices ORDER BY device")
        for row in rows:
            row["registered"] = bool(row["registered"])
        return rows

    def register_device(self, device: str, site: str | None = None) -> None:
        self._write(
            "INSERT INTO devices (device, site, registered) VALUES (?, ?, 1)"
            " ON CONFLICT (device) DO UPDATE SET registered = 1, site = COALESCE(excluded.site, site)",
            (device, site),
        )

    def touch_device(self, device: str, site: str, now: float, **fields) -> dict:
        """Record that the device was heard from; returns the row as it was before."""
        before = self.get_device(device)
        if before is None:
            self._write(
                "INSERT INTO devices (device, site, first_seen, last_seen) VALUES (?,?,?,?)",
                (device, site, now, now),
            )
        sets = ["site = ?", "last_seen = ?", "first_seen = COALESCE(first_seen, ?)"]
        params = [site, now, now]
        for key, value in fields.items():
            sets.append(f"{key} = ?")
            params.append(value)
        self._write(f"UPDATE devices SET {', '.join(sets)} WHERE device = ?", (*params, device))
        return before or {"device": device, "site": site, "registered": False, "state": "unknown",
                          "battery_pct": None, "last_seen": None}

    def set_device_state(self, device: str, state: str) -> None:
        self._write("UPDATE devices SET state = ? WHERE device = ?", (state, device))

    def count_unregistered_message(self, device: str) -> None:
        self._write("UPDATE devices SET unregistered_messages = unregistered_messages + 1 WHERE device = ?", (device,))

    def devices_never_heard(self) -> list[dict]:
        """Registered devices no message has ever come from."""
        return self._all("SELECT * FROM devices WHERE registered = 1 AND state = 'unknown' AND last_seen IS NULL")

    def devices_silent_since(self, cutoff: float) -> list[dict]:
        """Devices that were online but have not been heard from since cutoff."""
        return self._all(
            "SELECT * FROM devices WHERE state = 'online' AND last_seen < ?", (cutoff,)
        )

    def list_devices_for_desk(self, prealarms_since: float) -> list[dict]:
        """Every device with the worker wearing it now, its open incidents, and
        the pre-alarms it started since `prealarms_since` and how many of
        them its wearer cancelled."""
        rows = self._all(
            "SELECT d.*, w.id AS worker__id, w.name AS worker__name, w.phone AS worker__phone,"
            " w.note AS worker__note,"
            " (SELECT count(*) FROM incidents i WHERE i.device = d.device AND i.state != 'resolved') AS open_incidents,"
            " (SELECT count(*) FROM audit au WHERE au.actor = d.device AND au.action = 'pre_alarm_started'"
            "  AND au.at >= :since) AS prealarms,"
            " (SELECT count(*) FROM audit au WHERE au.actor = d.device AND au.action = 'pre_alarm_cancelled'"
            "  AND au.at >= :since) AS prealarms_cancelled"
            " FROM devices d LEFT JOIN assignments a ON a.device = d.device AND a.ended_at IS NULL"
            " LEFT JOIN workers w ON w.id = a.worker_id ORDER BY d.registered, d.device",
            {"since": prealarms_since})
        for row in rows:
            row["registered"] = bool(row["registered"])
            worker = {key: row.pop(f"worker__{key}") for key in _WORKER_FIELDS}
            row["worker"] = worker if worker["id"] is not None else None
        return rows

    # ---- workers and who wears which device ---------------------------------

    def add_worker(self, name: str, phone: str, note: str, now: float) -> int:
        return self._write("INSERT INTO workers (name, phone, note, created_at) VALUES (?,?,?,?)",
                           (name, phone, note, now))

    def update_worker(self, worker_id: int, **fields) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._write(f"UPDATE workers SET {sets} WHERE id = ?", (*fields.values(), worker_id))

    def get_worker(self, worker_id: int) -> dict | None:
        return self._one("SELECT w.*, a.device FROM workers w LEFT JOIN assignments a"
                         " ON a.worker_id = w.id AND a.ended_at IS NULL WHERE w.id = ?", (worker_id,))

    def workers_named(self, name: str) -> list[dict]:
        return self._all("SELECT w.*, a.device FROM workers w LEFT JOIN assignments a"
                         " ON a.worker_id = w.id AND a.ended_at IS NULL WHERE w.name = ? ORDER BY w.id", (name,))

    def list_workers(self) -> list[dict]:
        return self._all("SELECT w.*, a.device FROM workers w LEFT JOIN assignments a"
                         " ON a.worker_id = w.id AND a.ended_at IS NULL ORDER BY w.name, w.id")

    def assign(self, device: str, worker_id: int | None, now: float, by: str) -> None:
        """From now on `device` is worn by worker_id (None: by nobody); the
        worker's and the device's earlier assignments end now."""
        self._write("UPDATE assignments SET ended_at = ? WHERE ended_at IS NULL AND (device = ? OR worker_id = ?)",
                    (now, device, worker_id))
        if worker_id is not None:
            self._write("INSERT INTO assignments (device, worker_id, assigned_at, assigned_by) VALUES (?,?,?,?)",
                        (device, worker_id, now, by))

    def assignments(self, device: str | None = None, worker_id: int | None = None) -> list[dict]:
        where, params = [], []
        if device is not None:
            where.append("a.device = ?")
            params.append(device)
        if worker_id is not None:
            where.append("a.worker_id = ?")
            params.append(worker_id)
        return self._all("SELECT a.*, w.name AS worker_name FROM assignments a JOIN workers w ON w.id = a.worker_id"
                         + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY a.assigned_at, a.id",
                         params)

    # ---- desk users -----------------------------------------------------------

    def add_user(self, name: str, role: str, password_hash: str, now: float) -> None:
        self._write("INSERT INTO users (name, role, password_hash, created_at, password_changed_at)"
                    " VALUES (?,?,?,?,?)", (name, role, password_hash, now, now))

    def get_user(self, name: str) -> dict | None:
        return self._one("SELECT * FROM users WHERE name = ?", (name,))

    def list_users(self) -> list[dict]:
        return self._all("SELECT name, role, created_at, password_changed_at, disabled_at FROM users ORDER BY name")

    def set_user_password(self, name: str, password_hash: str, now: float) -> None:
        self._write("UPDATE users SET password_hash = ?, password_changed_at = ? WHERE name = ?",
                    (password_hash, now, name))

    def set_user_disabled(self, name: str, now: float | None) -> None:
        self._write("UPDATE users SET disabled_at = ? WHERE name = ?", (now, name))

    # ---- incidents ----------------------------------------------------------

    def create_incident(self, **fields) -> int:
        fields["location"] = json.dumps(fields["location"]) if fields.get("location") else None
        fields["registered"] = int(bool(fields["registered"]))
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        return self._write(f"INSERT INTO incidents ({names}) VALUES ({marks})", tuple(fields.values()))

    def update_incident(self, incident_id: int, **fields) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._write(f"UPDATE incidents SET {sets} WHERE id = ?", (*fields.values(), incident_id))

    def get_incident(self, incident_id: int) -> dict | None:
        return _incident(self._one(f"{_INCIDENTS} WHERE incidents.id = ?", (incident_id,)))

    def get_incidents(self, incident_ids) -> dict[int, dict]:
        """By id, in one query (the ids of one batch of changes)."""
        ids = list(dict.fromkeys(incident_ids))
        rows = []
        for start in range(0, len(ids), 500):  # SQLite's limit on bound parameters
            chunk = ids[start:start + 500]
            rows += self._all(f"{_INCIDENTS} WHERE incidents.id IN ({','.join('?' * len(chunk))})", chunk)
        return {row["id"]: _incident(row) for row in rows}

    def list_incidents(self, limit: int = 200, state: str | None = None) -> list[dict]:
        """Newest first. state: 'raised', 'acknowledged', 'resolved' or 'open' (not resolved)."""
        where, params = _filters({"state": state})
        return [_incident(r) for r in self._all(f"{_INCIDENTS}{where} ORDER BY incidents.id DESC LIMIT ?",
                                                (*params, limit))]

    def open_incidents(self) -> list[dict]:
        """Every incident not resolved, however many and however old, oldest first."""
        return [_incident(r) for r in self._all(
            f"{_INCIDENTS} WHERE incidents.state != 'resolved' ORDER BY incidents.id")]

    def history(self, filters: dict, limit: int, offset: int = 0) -> tuple[list[dict], int]:
        """A page of incidents matching filters (see _filters), newest first, and how many match in all."""
        where, params = _filters(filters)
        rows = self._all(f"{_INCIDENTS}{where} ORDER BY incidents.raised_at DESC, incidents.id DESC"
                         " LIMIT ? OFFSET ?", (*params, limit, offset))
        total = self._one(f"SELECT count(*) AS n FROM incidents{where}", params)["n"]
        return [_incident(r) for r in rows], total

    def iter_history(self, filters: dict, batch: int = 500):
        """Every matching incident, oldest first, read batch by batch so the
        lock is never held for the whole export and memory stays at one batch."""
        where, params = _filters(filters)
        after = (float("-inf"), 0)
        joiner = " AND " if where else " WHERE "
        while True:
            rows = self._all(f"{_INCIDENTS}{where}{joiner}(incidents.raised_at, incidents.id) > (?, ?)"
                             " ORDER BY incidents.raised_at, incidents.id LIMIT ?", (*params, *after, batch))
            for row in rows:
                yield _incident(row)
            if len(rows) < batch:
                return
            after = (rows[-1]["raised_at"], rows[-1]["id"])

    def attach_to_open_incident(self, device: str, types: tuple[str, ...], cause: str | None,
                                location: dict | None) -> dict | None:
        """Count one more alarm on the device's oldest open incident of these types
        (and cause, if given), in one statement; returns {id, tier}, or None if there is none."""
        open_one = f"SELECT id FROM incidents WHERE device = ? AND state != 'resolved' AND type IN ({','.join('?' * len(types))})"
        params = [json.dumps(location) if location else None, device, *types]
        if cause is not None:
            open_one += " AND cause = ?"
            params.append(cause)
        return self._one(
            "UPDATE incidents SET alarm_count = alarm_count + 1, location = COALESCE(?, location)"
            f" WHERE id = ({open_one} ORDER BY id LIMIT 1) RETURNING id, tier", params)

    def incidents_due_for_escalation(self, cutoff: float) -> list[dict]:
        """Raised (unacknowledged) incidents last alerted before cutoff."""
        return [_incident(r) for r in self._all(
            f"{_INCIDENTS} WHERE incidents.state = 'raised' AND incidents.alerted_at <= ? ORDER BY incidents.id",
            (cutoff,))]

    def incident_messages(self, incident_id: int) -> list[dict]:
        """The alarm messages that made or joined this incident, in the order received."""
        rows = self._all(
            "SELECT m.* FROM incident_alarms ia JOIN messages m ON m.kind = 'alarm' AND m.msg_id = ia.alarm_id"
            " WHERE ia.incident_id = ? ORDER BY m.received_at", (incident_id,))
        for row in rows:
            row["body"] = json.loads(row["body"])
        return rows

    def incident_dead_letters(self, incident_id: int) -> list[dict]:
        """Notifications routing gave up on; the table exists once a router has run."""
        if "dead_letters" not in self.db.table_names():
            return []
        return self._all("SELECT time, channel, event, tier, attempts, last_error FROM dead_letters"
                         " WHERE incident_id = ? ORDER BY time", (str(incident_id),))

    def incident_for_alarm(self, alarm_id: str) -> int | None:
        row = self._one("SELECT incident_id FROM incident_alarms WHERE alarm_id = ?", (alarm_id,))
        return row["incident_id"] if row else None

    def link_alarm(self, alarm_id: str, incident_id: int, now: float) -> None:
        self._write("INSERT INTO incident_alarms (alarm_id, incident_id, received_at) VALUES (?,?,?)",
                    (alarm_id, incident_id, now))

    def count_incidents(self) -> int:
        return self._one("SELECT count(*) AS n FROM incidents")["n"]

    def count_open_incidents(self) -> int:
        return self._one("SELECT count(*) AS n FROM incidents WHERE state != 'resolved'")["n"]

    def set_delivered(self, alarm_ids: list[str], now: float) -> list[dict]:
        """delivered_at of these alarms' incidents where not yet set; returns those [{id, tier, device}]."""
        rows = []
        for start in range(0, len(alarm_ids), 500):  # SQLite's limit on bound parameters
            chunk = alarm_ids[start:start + 500]
            rows += self._all(
                "UPDATE incidents SET delivered_at = ? WHERE delivered_at IS NULL AND id IN"
                f" (SELECT incident_id FROM incident_alarms WHERE alarm_id IN ({','.join('?' * len(chunk))}))"
                " RETURNING id, tier, device", (now, *chunk))
        return rows

    # ---- notifications to external channels ---------------------------------

    def add_deliveries(self, rows) -> None:
        """Pending notifications (delivery_id, channel, incident_id, event, tier, payload, created_at), in the
        caller's transaction; a decision already written is kept as it is."""
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO deliveries (delivery_id, channel, incident_id, event, tier, payload, created_at)"
            " VALUES (?,?,?,?,?,?,?)", rows)

    def pending_deliveries(self) -> list[dict]:
        """Oldest first."""
        return self._all("SELECT * FROM deliveries ORDER BY id")

    def delivered(self, delivery_row: int) -> None:
        self._write("DELETE FROM deliveries WHERE id = ?", (delivery_row,))

    def dead_letter(self, delivery_row: int, now: float, error: str, attempts: int) -> None:
        """Move a pending notification to dead_letters, in the caller's transaction."""
        self._write("INSERT INTO dead_letters (time, channel, incident_id, event, tier, delivery_id, payload,"
                    " last_error, attempts) SELECT ?, channel, CAST(incident_id AS TEXT), event, tier, delivery_id,"
                    " payload, ?, ? FROM deliveries WHERE id = ?", (now, error, attempts, delivery_row))
        self._write("DELETE FROM deliveries WHERE id = ?", (delivery_row,))

    def list_dead_letters(self) -> list[dict]:
        return self._all("SELECT * FROM dead_letters ORDER BY id")

    def retry_dead_letters(self, ids: list[int] | None, now: float) -> int:
        """Put dead letters (these ids, or all of them) back among the pending
        deliveries, in the caller's transaction; returns how many went back."""
        where, params = ("", ()) if ids is None else (f" WHERE id IN ({','.join('?' * len(ids))})", tuple(ids))
        moved = self.db.conn.execute(
            "INSERT OR IGNORE INTO deliveries (delivery_id, channel, incident_id, event, tier, payload, created_at)"
            f" SELECT delivery_id, channel, CAST(incident_id AS INTEGER), event, tier, payload, ? FROM dead_letters"
            f"{where} ORDER BY id", (now, *params)).rowcount
        self.db.conn.execute(f"DELETE FROM dead_letters{where}", params)
        return moved

    # ---- commands to devices --------------------------------------------------

    def add_commands(self, now: float, commands) -> None:
        self.db.conn.executemany(
            "INSERT INTO outbox (command_id, created_at, site, device, cmd, ref, payload) VALUES (?,?,?,?,?,?,?)",
            [(c.command_id, now, c.site, c.device, c.cmd, c.ref, c.payload.decode()) for c in commands],
        )

    def mark_commands_sent(self, now: float, command_ids: list[str]) -> None:
        self.db.conn.executemany("UPDATE outbox SET sent_at = ? WHERE command_id = ? AND sent_at IS NULL",
                                 [(now, c) for c in command_ids])

    def unsent_commands(self) -> list[dict]:
        """Oldest first."""
        return self._all("SELECT * FROM outbox WHERE sent_at IS NULL ORDER BY id")

    def count_unsent_commands(self) -> int:
        return self._one("SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL")["n"]

    def list_commands(self, device: str | None = None, limit: int = 200) -> list[dict]:
        if device:
            return self._all("SELECT * FROM outbox WHERE device = ? ORDER BY id DESC LIMIT ?", (device, limit))
        return self._all("SELECT * FROM outbox ORDER BY id DESC LIMIT ?", (limit,))

    # ---- audit --------------------------------------------------------------

    def audit(self, at: float, actor: str, action: str, detail: str = "", incident_id: int | None = None) -> int:
        return self._write("INSERT INTO audit (at, incident_id, actor, action, detail) VALUES (?,?,?,?,?)",
                           (at, incident_id, actor, action, detail))

    def set_audit_detail(self, audit_id: int, detail: str) -> None:
        """Only for an entry still being written, such as a purge running in chunks."""
        self._write("UPDATE audit SET detail = ? WHERE id = ?", (detail, audit_id))

    def incident_audit(self, incident_id: int) -> list[dict]:
        return self._all("SELECT * FROM audit WHERE incident_id = ? ORDER BY id", (incident_id,))

    def list_audit(self, action: str | None = None, limit: int = 200) -> list[dict]:
        if action:
            return self._all("SELECT * FROM audit WHERE action = ? ORDER BY id DESC LIMIT ?", (action, limit))
        return self._all("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))

    # ---- sessions -----------------------------------------------------------

    def create_session(self, **fields) -> int:
        fields["location"] = json.dumps(fields["location"]) if fields.get("location") else None
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        return self._write(f"INSERT INTO sessions ({names}) VALUES ({marks})", tuple(fields.values()))

    def update_session(self, session_id: int, **fields) -> None:
        if "location" in fields:
            fields["location"] = json.dumps(fields["location"]) if fields["location"] else None
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._write(f"UPDATE sessions SET {sets} WHERE id = ?", (*fields.values(), session_id))

    def get_session(self, session_id: int) -> dict | None:
        return _session(self._one(f"{_SESSIONS} WHERE s.id = ?", (session_id,)))

    def open_session_for(self, device: str) -> dict | None:
        if not device:
            return None
        return _session(self._one(
            f"{_SESSIONS} WHERE s.device = ? AND s.{_OPEN_SESSION} ORDER BY s.id DESC LIMIT 1", (device,)))

    def list_sessions(self, active_only: bool = False) -> list[dict]:
        """Open ones by deadline; or the latest 500 of any state."""
        if active_only:
            rows = self._all(f"{_SESSIONS} WHERE s.{_OPEN_SESSION} ORDER BY s.due_at, s.id")
        else:
            rows = self._all(f"{_SESSIONS} ORDER BY s.id DESC LIMIT 500")
        return [_session(r) for r in rows]

    def ended_sessions(self, limit: int, offset: int = 0, after: tuple | None = None) -> list[dict]:
        """Ended sessions, the latest end first; with `after` (ended_at, id), the ones
        ending before it (for reading them all batch by batch)."""
        if after is None:
            return [_session(r) for r in self._all(
                f"{_SESSIONS} WHERE s.state = 'ended' ORDER BY s.ended_at DESC, s.id DESC LIMIT ? OFFSET ?",
                (limit, offset))]
        return [_session(r) for r in self._all(
            f"{_SESSIONS} WHERE s.state = 'ended' AND (s.ended_at, s.id) < (?, ?)"
            " ORDER BY s.ended_at DESC, s.id DESC LIMIT ?", (*after, limit))]

    def count_ended_sessions(self) -> int:
        return self._one("SELECT count(*) AS n FROM sessions WHERE state = 'ended'")["n"]

    def add_check_in(self, session_id: int, at: float, actor: str, note: str | None) -> None:
        self._write("INSERT INTO session_check_ins (session_id, at, actor, note) VALUES (?,?,?,?)",
                    (session_id, at, actor, note))

    def session_check_ins(self, session_id: int) -> list[dict]:
        return self._all("SELECT at, actor, note FROM session_check_ins WHERE session_id = ? ORDER BY at, id",
                         (session_id,))

    def link_session(self, incident_id: int, session_id: int) -> None:
        self._write("UPDATE incidents SET session_id = ? WHERE id = ? AND session_id IS NULL",
                    (session_id, incident_id))

    def worker_wearing(self, device: str) -> dict | None:
        return self._one("SELECT w.* FROM assignments a JOIN workers w ON w.id = a.worker_id"
                         " WHERE a.device = ? AND a.ended_at IS NULL", (device,))

    # ---- privacy ------------------------------------------------------------

    def purge_expired(self, cutoff: float, heartbeat_cutoff: float, limit: int) -> dict:
        """Delete or blank at most `limit` rows of each kind recorded before the
        cutoffs, in the caller's transaction; return the counts. A count equal
        to `limit` means there may be more.

        Heartbeats go after heartbeat_cutoff (never earlier than cutoff, the
        config sees to that), and only through their own statement, so each
        count says what went. Other messages (with their locations), rejects
        and sent commands (with the operator's name) go after cutoff;
        incidents and sessions stay as records that something happened,
        without where or who: the alarms a session raised named its worker
        and phone in their summary and `raised` audit entry, which are
        rewritten, and check-in notes go.
        """
        def run(sql: str, cut: float) -> int:
            return self.db.conn.execute(sql, (cut, limit)).rowcount

        return {
            # Named: without statistics SQLite would walk (kind, msg_id), every heartbeat ever kept.
            "heartbeats": run("DELETE FROM messages WHERE id IN (SELECT id FROM messages"
                              " INDEXED BY messages_heartbeat_age"
                              " WHERE kind = 'heartbeat' AND received_at < ? LIMIT ?)", heartbeat_cutoff),
            "messages": run("DELETE FROM messages WHERE id IN (SELECT id FROM messages"
                            " WHERE received_at < ? AND kind != 'heartbeat' LIMIT ?)", cutoff),
            "rejects": run("DELETE FROM rejects WHERE id IN (SELECT id FROM rejects"
                           " WHERE received_at < ? LIMIT ?)", cutoff),
            "commands": run("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
                            " WHERE sent_at IS NOT NULL AND created_at < ? LIMIT ?)", cutoff),
            "incidents": run("UPDATE incidents SET location = NULL, note = NULL WHERE id IN (SELECT id FROM incidents"
                             " WHERE state = 'resolved' AND resolved_at < ?"
                             " AND (location IS NOT NULL OR note IS NOT NULL) LIMIT ?)", cutoff),
            "sessions": run("UPDATE sessions SET worker = NULL, place = NULL, phone = NULL, location = NULL,"
                            " note = NULL, worker_id = NULL"
                            " WHERE id IN (SELECT id FROM sessions WHERE state = 'ended' AND ended_at < ?"
                            " AND (worker IS NOT NULL OR place IS NOT NULL OR phone IS NOT NULL"
                            " OR location IS NOT NULL OR note IS NOT NULL OR worker_id IS NOT NULL) LIMIT ?)", cutoff),
            "check-in notes": run("UPDATE session_check_ins SET note = NULL WHERE id IN (SELECT c.id"
                                  " FROM session_check_ins c JOIN sessions s ON s.id = c.session_id"
                                  " WHERE s.state = 'ended' AND s.ended_at < ? AND c.note IS NOT NULL LIMIT ?)",
                                  cutoff),
            # The names and phones a session copied into its alarms, and into their audit trail.
            "session alarms": run(f"UPDATE incidents SET summary = {_purged_summary('incidents')} WHERE id IN ("
                                       "SELECT i.id FROM incidents i JOIN sessions s ON s.id = i.session_id"
                                       " WHERE i.state = 'resolved' AND s.state = 'ended' AND max(i.resolved_at,"
                                       f" s.ended_at) < ? AND i.summary != {_purged_summary('i')} LIMIT ?)",
                                       cutoff),
            "session alarm audits": run("UPDATE audit SET detail = (SELECT summary FROM incidents i"
                                       " WHERE i.id = audit.incident_id) WHERE id IN (SELECT a.id FROM audit a"
                                       " JOIN incidents i ON i.id = a.incident_id JOIN sessions s ON s.id = i.session_id"
                                       " WHERE a.action = 'raised' AND s.state = 'ended' AND i.state = 'resolved'"
                                       " AND max(i.resolved_at, s.ended_at) < ? AND a.detail != i.summary LIMIT ?)",
                                       cutoff),
        }
