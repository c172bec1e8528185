"""The gateway service: ingest, incidents, timers, routing, downlink and the live feed.

The asyncio side owns everything that happens after a commit (live feed,
routing, commands to devices) and the timers (escalation, sessions, lost
contact, retention). The MQTT network thread and the SQLite writer thread
live in gateway.ingest; neither ever waits for the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sqlite3
import time
from datetime import datetime
from typing import NamedTuple

from contract import protocol
from contract.vocabulary import PRIORITIES
from gateway import incidents, people, sessions, supervision
from gateway.config import Config
from gateway.downlink import Downlink
from gateway.incidents import Effects
from gateway.ingest import Ingest
from gateway.routing import EVENTS as ROUTED_EVENTS
from gateway.routing import Router
from gateway.store import Store

log = logging.getLogger("lonewatch.gateway")

# A desk that stops reading its feed loses old live updates, never incidents
# (they are in the database; the dashboard reloads from there).
LIVE_QUEUE_SIZE = 10_000


class Metric(NamedTuple):
    """One counter or gauge; the desk's /metrics renders it for Prometheus."""

    name: str  # without the lonewatch_ prefix, and for a counter without _total
    kind: str  # "counter" or "gauge"
    help: str
    samples: list[tuple[dict[str, str], float]]

STOP_TIMEOUT_S = 4.0
# /healthz reports the timers stalled when they have not run for this many periods.
TIMERS_STALLED_PERIODS = 10
# Rows per purge transaction: a few milliseconds of holding the database.
PURGE_CHUNK_ROWS = 5000
# Between two chunks. Not 0: the ingest's writer thread is waiting for the
# store's lock, and without a pause the purge takes it straight back (a lock
# is not a queue), so the writer could wait out many chunks in a row.
PURGE_PAUSE_S = 0.005


def _unix_time(value, what: str) -> float:
    """A unix time in seconds, or an ISO-8601 string with a timezone."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed.timestamp()
    raise ValueError(f"{what} must be unix seconds or an ISO-8601 time with a timezone, got {value!r}")


class Gateway:
    def __init__(self, config: Config):
        self.config = config
        self.store = Store(config.gateway.db)
        self.router: Router | None = None
        self.ingest: Ingest | None = None
        self.downlink: Downlink | None = None
        self.started_at: float | None = None
        self._live: set[asyncio.Queue] = set()
        self._tasks: list[asyncio.Task] = []
        self._timers_ok = True
        self._last_tick: float | None = None

    # ---- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Connect, subscribe and start the timers; ConnectionError if the broker is unreachable."""
        loop = asyncio.get_running_loop()
        with self.store.transaction():
            for device in self.config.devices.registered:
                self.store.register_device(device)
        self.router = Router(self.config.routing, self.config.gateway.db)
        self.ingest = Ingest(self.config, self.store, self._apply, loop)
        self.downlink = self.ingest.downlink
        # Committed by an earlier run but never acknowledged by the broker:
        # queued now, so they go out first once connected.
        self.downlink.publish_unsent(self.store)
        try:
            await asyncio.to_thread(self.ingest.start, self.config.mqtt.connect_timeout_s)
        except ConnectionError:
            await self.router.close()
            raise
        self.started_at = time.time()
        self._tasks = [
            asyncio.create_task(self._tick_forever(), name="lonewatch timers"),
            asyncio.create_task(self._purge_forever(), name="lonewatch retention"),
        ]
        log.info("gateway %s started (db %s, broker %s)", self.config.gateway.id,
                 self.config.gateway.db, self.config.mqtt.url)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.ingest is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(self.ingest.stop), STOP_TIMEOUT_S)
            except (TimeoutError, OSError) as exc:
                # Anything received but not committed is unacknowledged: the broker keeps it.
                log.warning("MQTT side did not stop cleanly (%r); leaving it to the broker", exc)
        if self.router is not None:
            await self.router.close(grace_s=0.5)
        self.store.close()

    # ---- live feed ----------------------------------------------------------

    def subscribe_live(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(LIVE_QUEUE_SIZE)
        self._live.add(q)
        return q

    def unsubscribe_live(self, q: asyncio.Queue) -> None:
        self._live.discard(q)

    def _publish_live(self, update: dict) -> None:
        for q in self._live:
            if q.full():
                q.get_nowait()  # drop the oldest: the database still has it
            q.put_nowait(update)

    # ---- after a commit (runs on the event loop) ----------------------------

    def _apply(self, effects: Effects) -> None:
        # One query for all the incidents of an ingest batch (often many alarms of a few incidents).
        current = self.store.get_incidents(i for i, _, _ in effects.incidents) if effects.incidents else {}
        # An outbox replay attaches several alarms to one incident in one batch: each
        # would be the same update (the same snapshot, taken after the commit), so it goes once.
        for incident_id, event, tier in dict.fromkeys(effects.incidents):
            incident = current[incident_id]
            self._publish_live({"type": "incident", "event": event, "incident": incident})
            if event in ROUTED_EVENTS:
                try:
                    self.router.dispatch(incident, event, tier)
                except Exception:
                    log.exception("routing %s for incident %s failed", event, incident_id)
        for device in dict.fromkeys(effects.devices):
            self._publish_live({"type": "device", "device": self.store.get_device(device)})
        for session_id in dict.fromkeys(effects.sessions):
            self._publish_live({"type": "session", "session": self.store.get_session(session_id)})
        self.downlink.publish(effects.outbox)

    def _change(self, work) -> Effects:
        """Run work(effects) in one transaction with the commands it decides, then apply its effects."""
        effects = Effects()
        with self.store.transaction():
            work(effects)
            self.downlink.store(self.store, effects)
        self._apply(effects)
        return effects

    # ---- what the desk reads ------------------------------------------------

    def incidents(self, limit: int = 200, state: str | None = None) -> list[dict]:
        return self.store.list_incidents(limit=limit, state=state)

    def incident(self, incident_id: int) -> dict | None:
        return self.store.get_incident(incident_id)

    def open_incidents(self) -> list[dict]:
        """Every open incident: the most urgent priority first, then the longest waiting."""
        rank = {p: n for n, p in enumerate(PRIORITIES)}
        return sorted(self.store.open_incidents(), key=lambda i: (rank.get(i["priority"], -1), i["raised_at"], i["id"]))

    def history(self, filters: dict, limit: int, offset: int = 0) -> tuple[list[dict], int]:
        return self.store.history(filters, limit, offset)

    def iter_history(self, filters: dict):
        return self.store.iter_history(filters)

    def incident_detail(self, incident_id: int) -> dict | None:
        """The incident, its audit trail, the alarm messages in it and notifications given up on."""
        incident = self.store.get_incident(incident_id)
        if incident is None:
            return None
        return {"incident": incident, "audit": self.store.incident_audit(incident_id),
                "messages": self.store.incident_messages(incident_id),
                "failed_notifications": self.store.incident_dead_letters(incident_id)}

    def devices(self) -> list[dict]:
        return self.store.list_devices_for_desk()

    def workers(self) -> list[dict]:
        return self.store.list_workers()

    def account(self, name: str) -> dict | None:
        """A desk user of the database (name, role, password_hash, disabled_at), or None."""
        return self.store.get_user(name)

    def record_login(self, name: str, action: str, detail: str) -> None:
        """login, login_failed, login_throttled or logout, in the audit trail."""
        with self.store.transaction():
            self.store.audit(time.time(), name[:64] or "-", action, detail)

    async def add_worker(self, name, phone, note, device, by: str) -> dict:
        found = []
        self._change(lambda fx: (found.append(people.add_worker(self.store, name, phone, note, device, time.time(), by)),
                                 device and fx.devices.append(device)))
        return found[0]

    async def update_worker(self, worker_id: int, by: str, **fields) -> dict:
        with self.store.transaction():
            return people.update_worker(self.store, worker_id, time.time(), by, **fields)

    async def assign_device(self, device, worker_id: int | None, by: str) -> dict:
        self._change(lambda fx: (people.assign(self.store, worker_id, device, time.time(), by),
                                 fx.devices.append(device)))
        return next(d for d in self.store.list_devices_for_desk() if d["device"] == device)

    # ---- desk actions -------------------------------------------------------

    async def acknowledge(self, incident_id: int, operator: str) -> dict:
        self._change(lambda fx: incidents.acknowledge(self.store, fx, int(incident_id), operator, time.time()))
        return self.store.get_incident(int(incident_id))

    async def resolve(self, incident_id: int, operator: str, reason: str, note: str = "") -> dict:
        self._change(lambda fx: incidents.resolve(self.store, fx, int(incident_id), operator, reason,
                                                  note, time.time()))
        return self.store.get_incident(int(incident_id))

    async def start_session(self, device: str, worker: str, place: str, phone: str, expected_end) -> dict:
        """Start lone work from the desk; expected_end is unix seconds or ISO-8601 with timezone."""
        now = time.time()
        due = _unix_time(expected_end, "expected_end")
        if due <= now:
            raise ValueError(f"expected_end must be in the future, got {expected_end!r}")
        known = self.store.get_device(device)
        if known is None or not known["site"]:
            raise ValueError(f"unknown device {device!r}: it has never connected, so its site is unknown")
        for name, value in (("worker", worker), ("place", place), ("phone", phone)):
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                raise ValueError(f"{name} must be a non-empty string of at most 200 characters, got {value!r}")
        ids = []
        self._change(lambda fx: ids.append(sessions.start(
            self.store, fx, device=device, site=known["site"], interval_s=due - now, now=now,
            source="desk", actor="desk", worker=worker, place=place, phone=phone)))
        return self.store.get_session(ids[0])

    async def end_session(self, session_id: int, operator: str = "desk") -> dict:
        session = self.store.get_session(int(session_id))
        if session is None:
            raise ValueError(f"no session with id {session_id}")
        if session["state"] not in ("active", "overdue"):
            raise ValueError(f"session {session_id} is already {session['state']}")
        self._change(lambda fx: sessions.end(self.store, fx, session, time.time(), by=operator))
        return self.store.get_session(int(session_id))

    async def register_device(self, device: str, site: str | None = None) -> dict:
        if not isinstance(device, str) or not protocol.NAME_RE.match(device):
            raise ValueError(f"device id must match {protocol.NAME_RE.pattern}, got {device!r}")
        self._change(lambda fx: (self.store.register_device(device, site),
                                 self.store.audit(time.time(), "desk", "device_registered", device),
                                 fx.devices.append(device)))
        return self.store.get_device(device)

    # ---- timers -------------------------------------------------------------

    async def _tick_forever(self) -> None:
        period = min(1.0, self.config.sessions.check_interval_s)
        while True:
            await asyncio.sleep(period)
            try:
                self.tick(time.time())
                self._timers_ok = True
                self._last_tick = time.time()
            except Exception:
                self._timers_ok = False
                log.exception("timer check failed; retrying in %.1f s", period)

    def tick(self, now: float) -> None:
        """Escalate unacknowledged incidents, run sessions, find lost devices."""
        def work(fx):
            incidents.escalate_unacknowledged(self.store, fx, self.config.alarms.ack_timeout_s, now)
            sessions.check_due(self.store, fx, self.config.sessions, now)
            connected_since = self.ingest.connected_since if self.ingest else None
            if connected_since is not None:
                supervision.check_lost(self.store, fx, self.config.supervision, now, connected_since)
        self._change(work)

    async def _purge_forever(self) -> None:
        while True:
            try:
                await self.purge_expired(time.time())
            except Exception:
                log.exception("retention purge failed; trying again later")
            await asyncio.sleep(self.config.privacy.purge_interval_s)

    async def purge_expired(self, now: float, chunk_rows: int | None = None) -> dict:
        """Remove personal data older than the retention period, and heartbeats
        older than theirs; audit what was removed.

        In chunks (chunk_rows, default PURGE_CHUNK_ROWS), each its own short
        transaction: after a day's downtime (or a shorter retention set) there
        are millions of rows to go, and one long transaction would hold back
        the ingest, and the alarms it is storing, for seconds or minutes. The
        one audit entry is written with the first chunk and its counts updated
        with each, so it always matches what is gone.
        """
        privacy = self.config.privacy
        chunk_rows = chunk_rows or PURGE_CHUNK_ROWS
        cutoff = now - privacy.retention_days * 86400
        heartbeat_cutoff = now - privacy.heartbeat_retention_days * 86400
        total: collections.Counter = collections.Counter()
        audit_id = None
        while True:
            with self.store.transaction():
                counts = self.store.purge_expired(cutoff, heartbeat_cutoff, chunk_rows)
                total.update(counts)
                if any(counts.values()):
                    detail = self._purge_detail(total)
                    if audit_id is None:
                        audit_id = self.store.audit(now, "gateway", "retention_purge", detail)
                    else:
                        self.store.set_audit_detail(audit_id, detail)
            if max(counts.values()) < chunk_rows:
                break
            await asyncio.sleep(PURGE_PAUSE_S)
        if audit_id is not None:
            log.info("retention purge %s", detail)
        return dict(total)

    def _purge_detail(self, total: dict) -> str:
        privacy = self.config.privacy
        personal = ", ".join(f"{n} {what}" for what, n in total.items() if what != "heartbeats")
        return (f"older than {privacy.retention_days:g} days: {personal}; "
                f"heartbeats older than {privacy.heartbeat_retention_days:g} days: {total['heartbeats']}")

    # ---- operations ---------------------------------------------------------

    def health(self) -> dict:
        """What works, and in `problems` what does not, in words for the person on duty."""
        now = time.time()
        ingest = self.ingest
        broker = bool(ingest and ingest.connected)
        db = bool(ingest and ingest.db_ok)
        period = min(1.0, self.config.sessions.check_interval_s)
        stalled = self._last_tick is not None and now - self._last_tick > TIMERS_STALLED_PERIODS * period
        timers = self._timers_ok and not stalled
        problems = []
        if not broker:
            problems.append(f"not connected to the MQTT broker at {self.config.mqtt.url}: no alarm reaches the "
                            "gateway until it reconnects (it keeps trying)")
        if ingest and not db:
            since = time.strftime("%H:%M:%S", time.localtime(ingest.db_failing_since or now))
            problems.append(f"the database {self.config.gateway.db} refuses writes since {since} "
                            f"({ingest.db_error}): nothing is acknowledged, the broker keeps the messages; "
                            "free disk space or end whatever locks the file")
        if not timers:
            problems.append("the timers (escalation, overdue sessions, lost devices) "
                            + ("have not run for %.0f s" % (now - self._last_tick) if stalled else "are failing")
                            + ": see the log")
        try:
            open_incidents = self.store.count_open_incidents()
        except sqlite3.Error as exc:
            open_incidents = None
            problems.append(f"the database cannot be read: {exc}")
        return {
            "ok": not problems,
            "problems": problems,
            "gateway": self.config.gateway.id,
            "broker_connected": broker,
            "db_writable": db,
            "db_error": ingest.db_error if ingest else None,
            "timers_running": timers,
            "ingest_backlog": ingest.inbox.qsize() if ingest else 0,
            "open_incidents": open_incidents,
            "uptime_s": round(now - self.started_at, 1) if self.started_at else 0.0,
        }

    def metrics(self) -> list[Metric]:
        """Counters and gauges for the desk's /metrics; read at each scrape."""
        now = time.time()
        c = self.ingest.counters if self.ingest else None
        devices = self.store.list_devices()
        found = [
            Metric("messages_received", "counter", "Valid messages received, by topic kind.",
                   [({"kind": k}, n) for k, n in (c.received.items() if c else [])]),
            Metric("messages_rejected", "counter", "Messages rejected, by reason.",
                   [({"reason": r}, n) for r, n in (c.rejected.items() if c else [])]),
            Metric("duplicates", "counter", "Alarms and events received again (same protocol id).",
                   [({}, c.duplicates if c else 0)]),
            Metric("location_dropped", "counter", "Messages whose location was dropped for privacy.",
                   [({}, c.location_dropped if c else 0)]),
            Metric("unregistered_messages", "counter", "Non-alarm messages from unregistered devices.",
                   [({}, c.unregistered if c else 0)]),
            Metric("store_retries", "counter", "Batches SQLite could not commit at first.",
                   [({}, c.store_retries if c else 0)]),
            Metric("heartbeats_shed", "counter", "Heartbeats not queued because the ingest backlog was full.",
                   [({}, c.heartbeats_shed if c else 0)]),
            Metric("ingest_rate", "gauge", "Messages committed per second over the last 10 s.",
                   [({}, round(c.rate(now), 2) if c else 0)]),
            Metric("ingest_backlog", "gauge", "Messages (and command PUBACKs) received but not yet committed.",
                   [({}, self.ingest.inbox.qsize() if self.ingest else 0)]),
            Metric("incidents_open", "gauge", "Incidents not yet resolved.", [({}, self.store.count_open_incidents())]),
            Metric("devices_online", "gauge", "Registered devices currently online.",
                   [({}, sum(1 for d in devices if d["state"] == "online"))]),
            Metric("broker_connected", "gauge", "1 when connected and subscribed to the broker.",
                   [({}, int(bool(self.ingest and self.ingest.connected)))]),
            Metric("commands_unsent", "gauge", "Commands to devices the broker has not acknowledged yet.",
                   [({}, self.store.count_unsent_commands())]),
            # Read on the event loop (by the desk's /metrics): a growing count is a task leak.
            Metric("event_loop_tasks", "gauge", "Tasks on the gateway's event loop.", [({}, len(asyncio.all_tasks()))]),
        ]
        if self.router is not None:
            found += [
                Metric("channel_failures", "counter", "Failed delivery attempts per routing channel.",
                       [({"channel": n}, v) for n, v in self.router.failures_total.items()]),
                Metric("dead_letters", "counter", "Notifications given up on, per channel.",
                       [({"channel": n}, v) for n, v in self.router.dead_letters_total.items()]),
            ]
        if self.downlink is not None:
            found.append(Metric("commands_sent", "counter", "Commands published to devices (resends included), by command.",
                                [({"cmd": k}, n) for k, n in self.downlink.sent_total.items()]))
        return found
