"""The dead-letter table: notifications that could not be delivered.

Lives in the gateway's own SQLite file, written through a separate connection
(the store writes the same file, hence WAL and a busy timeout). Writes come
from worker threads so the event loop never waits on the disk.
"""

from __future__ import annotations

import sqlite3
import threading
import time

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
        conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        self._db = sqlite_utils.Database(conn)
        self._db.enable_wal()
        self._db[TABLE].create(COLUMNS, pk="id", if_not_exists=True)
        self._lock = threading.Lock()

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
        with self._lock:
            with self._db.conn:
                self._db[TABLE].insert(row)

    def close(self) -> None:
        with self._lock:
            self._db.conn.close()
