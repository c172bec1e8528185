"""The dead-letter table: notifications that could not be delivered.

Lives in the gateway's own SQLite file beside the store, which writes the same
file through its own connection (hence WAL and a busy timeout). Dead letters
are rare, so each write opens its own short connection: that is safe from any
thread, and still works after the router has been closed.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing

import sqlite_utils

from gateway.channels import Notification

TABLE = "dead_letters"
COLUMNS = {
    "id": int,
    "time": float,
    "channel": str,
    "incident_id": str,
    "event": str,
    "tier": int,
    "delivery_id": str,
    "payload": str,
    "last_error": str,
    "attempts": int,
}
BUSY_TIMEOUT_S = 10.0


class DeadLetters:
    def __init__(self, db_path: str):
        self.db_path = db_path
        with closing(sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S)) as conn:
            db = sqlite_utils.Database(conn)
            db.enable_wal()
            db[TABLE].create(COLUMNS, pk="id", if_not_exists=True)

    def add(self, channel: str, notification: Notification, error: str, attempts: int) -> None:
        row = {
            "time": time.time(),
            "channel": channel,
            "incident_id": str(notification.incident.get("id")),
            "event": notification.event,
            "tier": notification.tier,
            "delivery_id": notification.delivery_id,
            "payload": notification.to_json().decode(),
            "last_error": error,
            "attempts": attempts,
        }
        with closing(sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S)) as conn:
            with conn:
                sqlite_utils.Database(conn)[TABLE].insert(row)
