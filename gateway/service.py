"""The gateway service: ingest, incidents, timers, routing, downlink and the live feed.

The asyncio side owns the timers (escalation, sessions, lost contact,
retention), the desk's actions, and what follows every commit: the live feed
and routing, and the commands a desk action or a timer decided. The MQTT
network thread (gateway.mqttlink) and the SQLite writer thread (gateway.ingest)
never wait for the event loop; the writer publishes the commands its own
batches decide.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import sqlite3
import time
from datetime import datetime
from typing import NamedTuple

from contract import protocol
from contract.vocabulary import PRIORITIES, SESSION_OPEN_STATES
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
# The devices page counts each wearer's pre-alarms over the last day: a device
# whose wearer keeps cancelling them may be worn where sitting reads as lying.
PREALARMS_SHOWN_S = 24 * 3600


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
        self.router = Router(self.config.routing, self.store)
        # What an earlier run left pending (it stopped or died mid-delivery).
        self.router.pick_up()
        self.ingest = Ingest(self.config, self.store, self._apply, loop, route=self.router.store)
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
        """Live feed and deliveries; the ingest's writer has published the commands of its batches."""
        # One query for all the incidents of an ingest batch (often many alarms of a few incidents).
        current = self.store.get_incidents(i for i, _, _ in effects.incidents) if effects.incidents else {}
        # An outbox replay attaches several alarms to one incident in one batch: each
        # would be the same update (the same snapshot, taken after the commit), so it goes once.
        for incident_id, event, _tier in dict.fromkeys(effects.incidents):
            self._publish_live({"type": "incident", "event": event, "incident": current[incident_id]})
        if any(event in ROUTED_EVENTS for _, event, _ in effects.incidents):
            self.router.pick_up()  # what the transaction decided (Router.store)
        for device in dict.fromkeys(effects.devices):
            self._publish_live({"type": "device", "device": self.store.get_device(device)})
        for session_id in dict.fromkeys(effects.sessions):
            self._publish_live({"type": "session", "session": self.store.get_session(session_id)})

    def _change(self, work) -> Effects:
        """Run work(effects) in one transaction with the commands it decides, then apply its effects."""
        effects = Effects()
        with self.store.transaction():
            work(effects)
            self.router.store(self.store, effects)
            self.downlink.store(self.store, effects)
        self._apply(effects)
        self.downlink.publish(effects.outbox)
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
        return self.store.list_devices_for_desk(time.time() - PREALARMS_SHOWN_S)

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
        return next(d for d in self.devices() if d["device"] == device)

    # ---- desk actions -------------------------------------------------------

    async def acknowledge(self, incident_id: int, operator: str) -> dict:
        self._change(lambda fx: incidents.acknowledge(self.store, fx, int(incident_id), operator, time.time()))
        return self.store.get_incident(int(incident_id))

    async def resolve(self, incident_id: int, operator: str, reason: str, note: str = "") -> dict:
        self._change(lambda fx: incidents.resolve(self.store, fx, int(incident_id), operator, reason,
                                                  note, time.time()))
        return self.store.get_incident(int(incident_id))

    # ---- lone-work sessions (the desk) ---------------------------------------

    def sessions(self, state: str | None = None) -> list[dict]:
        """state "active": every open session, overdue ones first, then by deadline;
        None: the latest of any state."""
        if state == "active":
            return sorted(self.store.list_sessions(active_only=True),
                          key=lambda s: (s["state"] != "overdue", s["due_at"], s["id"]))
        if state is not None:
            raise ValueError(f"state must be 'active' or left out, got {state!r}")
        return self.store.list_sessions()

    def session(self, session_id: int) -> dict | None:
        """The session with its check-ins."""
        found = self.store.get_session(int(session_id))
        if found is not None:
            found["check_in_list"] = self.store.session_check_ins(found["id"])
        return found

    def session_history(self, limit: int, offset: int = 0) -> tuple[list[dict], int]:
        return self.store.ended_sessions(limit, offset), self.store.count_ended_sessions()

    def iter_session_history(self, batch: int = 500):
        """Every ended session with its check-ins, the latest end first, batch by batch."""
        after = None
        while True:
            rows = self.store.ended_sessions(batch, after=after)
            for row in rows:
                row["check_in_list"] = self.store.session_check_ins(row["id"])
                yield row
            if len(rows) < batch:
                return
            after = (rows[-1]["ended_at"], rows[-1]["id"])

    def _ends_at(self, now: float, duration_s, until, base: float | None = None) -> float:
        """The end asked for: base (default now) + duration_s, or until; within [sessions] max_duration_s of now."""
        if (duration_s is None) == (until is None):
            raise ValueError("give either duration_s (seconds) or until (the expected end), not both or neither")
        if duration_s is not None:
            if (isinstance(duration_s, bool) or not isinstance(duration_s, (int, float))
                    or not math.isfinite(duration_s) or duration_s <= 0):
                raise ValueError(f"duration_s must be a number of seconds more than 0, got {duration_s!r}")
            ends_at = (now if base is None else base) + duration_s
        else:
            ends_at = _unix_time(until, "until")
            if not math.isfinite(ends_at) or ends_at <= now:
                raise ValueError(f"until must be in the future, got {until!r}")
        longest = self.config.sessions.max_duration_s
        if ends_at - now > longest:
            raise ValueError(f"a session may last at most {longest / 3600:g} h from now "
                             f"([sessions] max_duration_s = {longest:g}); asked for {(ends_at - now) / 3600:.2f} h")
        return ends_at

    async def start_session(self, *, place, by: str = "desk", worker_id=None, name=None, phone=None,
                            duration_s=None, until=None, device=None, note=None, check_in_s=None) -> dict:
        """Register lone work from the desk: a worker of the registry (worker_id;
        their own device unless another is given) or a name and phone typed in.
        ValueError for bad input, sessions.Conflict if the device is already in a session."""
        now = time.time()
        ends_at = self._ends_at(now, duration_s, until)
        if worker_id is not None:
            if name is not None or phone is not None:
                raise ValueError("give either worker_id or name and phone, not both")
            worker = people.find_worker(self.store, worker_id if isinstance(worker_id, int) else str(worker_id))
            name, phone = worker["name"], worker["phone"]
            worker_id = worker["id"]
            device = device if device is not None else worker["device"]
        else:
            if name is None and phone is None:
                raise ValueError("give worker_id (a worker of the registry) or name and phone")
            name, phone, _ = people.check_worker(name, phone)
        if not isinstance(place, str) or not place.strip() or len(place.strip()) > people.MAX_NAME:
            raise ValueError(f"place must be 1 to {people.MAX_NAME} characters, got {place!r}")
        if note is not None and (not isinstance(note, str) or len(note) > people.MAX_NOTE):
            raise ValueError(f"note must be text of at most {people.MAX_NOTE} characters")
        if check_in_s is not None and (isinstance(check_in_s, bool) or not isinstance(check_in_s, (int, float))
                                       or not 60 <= check_in_s <= ends_at - now):
            raise ValueError(f"check_in_s must be at least 60 s and no longer than the session, got {check_in_s!r}")
        site = self.config.gateway.id
        if device:
            known = self.store.get_device(people.check_device(device))
            if known is None or not (known["registered"] or known["site"]):
                raise ValueError(f"unknown device {device!r}: neither enrolled nor ever heard from")
            site = known["site"] or site
            if self.store.open_session_for(device) is not None:
                raise sessions.Conflict(f"device {device} is already in a lone-work session; "
                                        "extend or end that one first")
        found = []
        self._change(lambda fx: found.append(sessions.start(
            self.store, fx, device=device or "", site=site, now=now, ends_at=ends_at, check_in_s=check_in_s,
            source="desk", actor=by, worker_id=worker_id, worker=name, phone=phone, place=place.strip(),
            note=(note or "").strip() or None)))
        return found[0]

    def _open_session(self, session_id) -> dict:
        try:
            session = self.store.get_session(int(session_id))
        except (TypeError, ValueError):
            raise ValueError(f"session id must be a number, got {session_id!r}") from None
        if session is None:
            raise ValueError(f"no session with id {session_id}")
        if session["state"] not in SESSION_OPEN_STATES:
            raise sessions.Conflict(f"session {session_id} has ended ({session['ended_how'] or 'ended'} at "
                                    f"{time.strftime('%H:%M:%S', time.localtime(session['ended_at']))})")
        return session

    async def extend_session(self, session_id, by: str = "desk", *, duration_s=None, until=None) -> dict:
        """duration_s: added to the end (or to now, once it has passed); until: the new end."""
        session = self._open_session(session_id)
        now = time.time()
        if until is None and duration_s is None:
            duration_s = self.config.sessions.extend_s
        ends_at = self._ends_at(now, duration_s, until, base=max(now, session["ends_at"]))
        found = []
        self._change(lambda fx: found.append(sessions.extend(self.store, fx, session, now, by, ends_at=ends_at)))
        return found[0]

    async def check_in_session(self, session_id, by: str = "desk", note: str | None = None) -> dict:
        """The desk checks in on the worker's behalf (a phone call, a round): noted, with who did it."""
        session = self._open_session(session_id)
        if note is not None and (not isinstance(note, str) or len(note) > people.MAX_NOTE):
            raise ValueError(f"note must be text of at most {people.MAX_NOTE} characters")
        found = []
        self._change(lambda fx: found.append(sessions.check_in(
            self.store, fx, self.config.sessions, session, time.time(), by=by, note=(note or "").strip() or None)))
        return found[0]

    async def end_session(self, session_id, operator: str = "desk") -> dict:
        session = self._open_session(session_id)
        found = []
        self._change(lambda fx: found.append(sessions.end(self.store, fx, session, time.time(), by=operator,
                                                          how="ended_by_desk")))
        return found[0]

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
                # Dead letters an operator put back (`lonewatch deliveries retry`).
                self.router.pick_up()
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
            connected_since = self.ingest.link.ready_since if self.ingest else None
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
        broker = bool(ingest and ingest.link.ready)
        db = bool(ingest and ingest.db_ok)
        period = min(1.0, self.config.sessions.check_interval_s)
        stalled = self._last_tick is not None and now - self._last_tick > TIMERS_STALLED_PERIODS * period
        timers = self._timers_ok and not stalled
        problems = []
        if not broker:
            why = f" ({ingest.link.state.value}: {ingest.link.error})" if ingest and ingest.link.error else ""
            problems.append(f"not connected to the MQTT broker at {self.config.mqtt.url}{why}: no alarm reaches "
                            "the gateway until it reconnects (it keeps trying)")
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
            "broker_state": ingest.link.state.value if ingest else "disconnected",
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
                   [({}, self.ingest.link.heartbeats_shed if self.ingest else 0)]),
            Metric("ingest_rate", "gauge", "Messages committed per second over the last 10 s.",
                   [({}, round(c.rate(now), 2) if c else 0)]),
            Metric("ingest_backlog", "gauge", "Messages (and command PUBACKs) received but not yet committed.",
                   [({}, self.ingest.inbox.qsize() if self.ingest else 0)]),
            Metric("incidents_open", "gauge", "Incidents not yet resolved.", [({}, self.store.count_open_incidents())]),
            Metric("devices_online", "gauge", "Registered devices currently online.",
                   [({}, sum(1 for d in devices if d["state"] == "online"))]),
            Metric("broker_connected", "gauge", "1 when connected and subscribed to the broker.",
                   [({}, int(bool(self.ingest and self.ingest.link.ready)))]),
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
