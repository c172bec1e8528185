"""What the base station holds about one worker, for the worker: everything,
exported as JSON, and erasure on request (audited, without the name).

A worker's data is the registry row, the devices they wore and when, their
lone-work sessions and check-ins, the incidents raised while they wore a
device or for their session (summaries and notes can name them; locations
say where they were), the audit entries and undelivered notifications of
those incidents, notifications still to be sent about them, and the alarm
and event messages their devices sent while they wore them (locations
again). The retention purge removes all of it by
age; `forget` removes it for one person now.
"""

from __future__ import annotations

import json
import time

FORGOTTEN = "[forgotten]"


def _rows(store, sql: str, params=()) -> list[dict]:
    return [dict(row) for row in store.db.query(sql, params)]


def _worker(store, worker_id: int) -> dict:
    rows = _rows(store, "SELECT * FROM workers WHERE id = ?", (worker_id,))
    if not rows:
        raise ValueError(f"no worker with id {worker_id}")
    return rows[0]


def _holdings(store, worker: dict) -> dict:
    """The rows that hold this worker's data, by table."""
    wid = worker["id"]
    assignments = _rows(store, "SELECT * FROM assignments WHERE worker_id = ? ORDER BY assigned_at", (wid,))
    sessions = _rows(store, "SELECT * FROM sessions WHERE worker_id = ? OR (worker = ? AND phone = ?) ORDER BY id",
                     (wid, worker["name"], worker["phone"]))
    session_ids = [s["id"] for s in sessions]
    marks = ",".join("?" * len(session_ids)) or "NULL"
    incidents = {}
    for a in assignments:
        for row in _rows(store, "SELECT * FROM incidents WHERE device = ? AND raised_at >= ? AND raised_at < ?",
                         (a["device"], a["assigned_at"], a["ended_at"] or float("inf"))):
            incidents[row["id"]] = row
    for row in _rows(store, f"SELECT * FROM incidents WHERE session_id IN ({marks})", session_ids):
        incidents[row["id"]] = row
    incident_ids = sorted(incidents)
    imarks = ",".join("?" * len(incident_ids)) or "NULL"
    messages = []
    for a in assignments:
        messages += _rows(store, "SELECT * FROM messages WHERE device = ? AND kind IN ('alarm', 'event') "
                          "AND received_at >= ? AND received_at < ?",
                          (a["device"], a["assigned_at"], a["ended_at"] or float("inf")))
    return {
        "assignments": assignments,
        "sessions": sessions,
        "check_ins": _rows(store, f"SELECT * FROM session_check_ins WHERE session_id IN ({marks})", session_ids),
        "incidents": [incidents[i] for i in incident_ids],
        "audit": _rows(store, f"SELECT * FROM audit WHERE incident_id IN ({imarks}) OR instr(detail, ?) "
                       "OR instr(detail, ?) ORDER BY id", (*incident_ids, worker["name"], worker["phone"])),
        "dead_letters": _rows(store, f"SELECT * FROM dead_letters WHERE incident_id IN ({imarks}) "
                              "OR instr(payload, ?) OR instr(payload, ?)",
                              (*[str(i) for i in incident_ids], worker["name"], worker["phone"])),
        "deliveries": _rows(store, f"SELECT * FROM deliveries WHERE incident_id IN ({imarks}) "
                            "OR instr(payload, ?) OR instr(payload, ?)", (*incident_ids, worker["name"], worker["phone"])),
        "messages": messages,
    }


def export(store, worker_id: int) -> dict:
    """Everything held about the worker, as JSON-ready data."""
    worker = _worker(store, worker_id)
    return {"exported_at": time.time(), "worker": worker, **_holdings(store, worker)}


def forget(store, worker_id: int, now: float, by: str) -> dict:
    """Erase the worker's personal data, in the caller's transaction; the counts of what changed.

    The registry row stays, renamed, so that the devices' history and the
    incidents stay whole for the desk; what names, reaches or locates the
    person goes: name, phone and note; summaries, notes, audit texts and
    undelivered notifications lose the name, the phone and the places;
    incidents, sessions and messages lose their locations; sessions their
    place and notes.
    """
    worker = _worker(store, worker_id)
    if not worker["phone"]:
        raise ValueError(f"worker #{worker_id} is forgotten already")
    held = _holdings(store, worker)
    # What names, reaches or places the person, wherever a text copied it:
    # their name, phone and note for responders, the places of their
    # sessions, the zones their devices reported. Only in rows that are
    # theirs, so a place another worker shares keeps its name in that
    # worker's records. Longest first: a note holding the name goes whole.
    found = {worker["name"], worker["phone"], worker["note"]} | {s["place"] for s in held["sessions"]}
    for row in held["incidents"] + held["sessions"]:
        found.add((json.loads(row["location"]) if row["location"] else {}).get("zone"))
    for row in held["messages"]:
        found.add((json.loads(row["body"]).get("location") or {}).get("zone"))
    words = sorted((w for w in found if isinstance(w, str) and len(w) >= 3), key=len, reverse=True)

    def scrub(text):
        if not isinstance(text, str):
            return text
        for word in words:
            text = text.replace(word, FORGOTTEN)
        return text

    for row in held["incidents"]:
        store.db.execute("UPDATE incidents SET summary = ?, note = ?, location = NULL WHERE id = ?",
                         (scrub(row["summary"]), scrub(row["note"]), row["id"]))
    for row in held["audit"]:
        store.db.execute("UPDATE audit SET detail = ? WHERE id = ?", (scrub(row["detail"]), row["id"]))
    for row in held["dead_letters"]:
        store.db.execute("UPDATE dead_letters SET payload = ? WHERE id = ?", (scrub(row["payload"]), row["id"]))
    for row in held["deliveries"]:  # still to be sent: they go without the name
        store.db.execute("UPDATE deliveries SET payload = ? WHERE id = ?", (scrub(row["payload"]), row["id"]))
    for row in held["sessions"]:
        store.db.execute("UPDATE sessions SET worker = ?, phone = NULL, place = ?, note = NULL, location = NULL "
                         "WHERE id = ?", (FORGOTTEN, FORGOTTEN, row["id"]))
    for row in held["check_ins"]:
        store.db.execute("UPDATE session_check_ins SET note = NULL WHERE id = ?", (row["id"],))
    for row in held["messages"]:
        body = json.loads(row["body"])
        if body.pop("location", None) is not None:
            store.db.execute("UPDATE messages SET body = ? WHERE id = ?",
                             (json.dumps(body, separators=(",", ":")), row["id"]))
    store.db.execute("UPDATE workers SET name = ?, phone = '', note = '' WHERE id = ?",
                     (f"{FORGOTTEN} #{worker_id}", worker_id))
    counts = {table: len(rows) for table, rows in held.items()}
    store.audit(now, by, "privacy_forget",
                f"worker #{worker_id} forgotten: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    return counts
