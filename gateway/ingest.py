"""Ingest: message handling. MQTT in, SQLite committed, then PUBACK.

    gateway.mqttlink (paho network thread) --Received--> inbox (queue.SimpleQueue)
        --> writer thread: validate, store, make incidents for a small batch
            in ONE transaction (group commit), then PUBACK each message in
            the order received (MQTT 3.1.1 section 4.6)
        --> loop.call_soon_threadsafe(on_committed, effects)  (asyncio side:
            live feed, routing)
        --> writer thread: publish the commands the batch decided

The same transaction writes the commands to devices those messages caused
(gateway.downlink's outbox), and marks sent the commands whose PUBACK paho
reported since the last batch (they come through the same queue). The
connection itself (state, reconnects, which acks are still valid) is
gateway.mqttlink's.

A message is acknowledged only after its transaction committed, so a gateway
that dies in between leaves it unacknowledged: the broker redelivers it from
our persistent session (fixed client id, clean_session=False) and the alarm
id makes the redelivery a duplicate, not a second incident. If SQLite cannot
commit (locked, disk full) the writer retries the same batch and acks
nothing meanwhile; the broker's in-flight window then holds the rest.

A message is the unit of failure. Whatever goes wrong while one message is
parsed, validated, stored or turned into commands makes that message a
reject (on an alarm topic, a technical "unreadable alarm" incident), and the
rest of its batch is stored and acknowledged. Only a failure of the
database itself stops acknowledging, and that is told by what failed
(SQLite's error code), not by where: a message that makes SQLite refuse its
values is the message's fault, and must not hold back the alarms behind it.
"""

from __future__ import annotations

import collections
import logging
import queue
import sqlite3
import threading
import time

from contract import protocol
from gateway import downlink, sessions, supervision
from gateway.config import Config
from gateway.downlink import Command, Downlink
from gateway.incidents import Effects, raise_alarm
from gateway.mqttlink import MqttLink, Received
from gateway.store import Store

log = logging.getLogger("lonewatch.ingest")

# Only a backlog fills a batch (a gateway back from a restart, a mass event);
# then bigger batches clear it faster: fewer commits, and one look-up per
# incident per batch. The cost is the first message of a batch, held back
# while the rest is stored: 500 alarms take about 50 ms, the live feed's
# latency target. 200 -> 500: the alarms-only burst about 12 % faster.
MAX_BATCH = 500
REJECT_LOG_EVERY_S = 60.0
# SQLite's primary result codes that mean the database itself cannot take a
# write now. Any other failure while storing belongs to the message.
DATABASE_FAILURES = frozenset({
    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOTADB,
})
RETRY_DELAYS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
STOP = object()
GATEWAY_TOPICS = f"{protocol.TOPIC_ROOT}/_gw/"


class Counters:
    """Written by the writer thread only; read by metrics (ints are atomic under the GIL)."""

    def __init__(self):
        self.received = {kind: 0 for kind in protocol.UPLINK_KINDS}
        self.rejected = {reason: 0 for reason in (*protocol.REASONS, "internal_error")}
        self.duplicates = 0
        self.location_dropped = 0
        self.unregistered = 0
        self.acked = 0
        self.store_retries = 0
        self._recent = collections.deque()  # (time, accepted in that batch)

    def note_batch(self, now: float, n: int) -> None:
        self._recent.append((now, n))
        while self._recent and self._recent[0][0] < now - 10.0:
            self._recent.popleft()

    def rate(self, now: float) -> float:
        """Messages per second over the last 10 s."""
        return sum(n for t, n in list(self._recent) if t >= now - 10.0) / 10.0

    def snapshot(self) -> tuple:
        """What a batch counts, so a batch that rolls back can take its counts back."""
        return (dict(self.received), dict(self.rejected), self.duplicates, self.location_dropped, self.unregistered)

    def restore(self, saved: tuple) -> None:
        received, rejected, self.duplicates, self.location_dropped, self.unregistered = saved
        self.received.update(received)
        self.rejected.update(rejected)


def is_database_failure(exc: BaseException) -> bool:
    """True when the database (or the process) cannot store anything now,
    False when the failure is one message's."""
    if isinstance(exc, MemoryError):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and (code & 0xFF) in DATABASE_FAILURES


def _printable(text: str) -> str:
    """Text the store can hold whatever a message put into it (a lone surrogate cannot be UTF-8)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _alarm_topic_device(topic: str) -> tuple[str, str] | None:
    """(site, device) of something published on an alarm topic, even if invalid."""
    parts = topic.split("/")
    if len(parts) == 5 and parts[-1] == "alarm":
        return parts[2][:32] or "?", parts[3][:32] or "?"
    return None


def _times(kind: str, body: dict, received_at: float) -> tuple[float | None, float, float | None]:
    """(device_time, event_time, skew_s): the receive time is authoritative;
    an outbox record is dated back by how long it waited on the device."""
    device_time = body.get("time")
    event_time = received_at
    if kind in ("alarm", "event"):
        event_time = received_at - (body["sent_uptime_ms"] - body["uptime_ms"]) / 1000.0
    skew = None if device_time is None else round(device_time - event_time, 3)
    return device_time, event_time, skew


class Ingest:
    """The writer thread, with the MQTT link it is fed by and acknowledges
    through, and the downlink its batches publish to."""

    def __init__(self, config: Config, store: Store, on_committed, loop, route=None):
        """on_committed(effects) runs on loop after each commit that changed something;
        route(store, effects) writes, in the same transaction, the notifications effects call for."""
        self.config = config
        self.store = store
        self.counters = Counters()
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()  # C-implemented: cheap per message
        self.db_ok = True
        # Why the last batch could not be committed, and since when; None while it commits.
        self.db_error: str | None = None
        self.db_failing_since: float | None = None
        self.link = MqttLink(config, self.inbox)
        self.downlink = Downlink(self.link, config.gateway.id, on_sent=self.inbox.put)
        self._on_committed = on_committed
        self._route = route
        self._loop = loop
        self._stopping = threading.Event()
        self._last_reject_log: dict[tuple[str, str], float] = {}
        self._writer = threading.Thread(target=self._write_loop, name="lonewatch-writer", daemon=True)

    # ---- lifecycle (blocking: run them in a thread) ------------------------

    def start(self, timeout_s: float) -> None:
        """Start the writer, connect and subscribe. Raises ConnectionError."""
        self._writer.start()
        try:
            self.link.start(timeout_s)
        except ConnectionError:
            self._stop_writer()
            raise

    def stop(self) -> None:
        """Commit and ack what was received, then say goodbye and disconnect."""
        self._stop_writer()
        self.link.stop()

    def _stop_writer(self) -> None:
        if self._writer.is_alive():
            self.inbox.put(STOP)
            self._stopping.set()
            self._writer.join(5.0)

    # ---- writer thread -----------------------------------------------------

    def _write_loop(self) -> None:
        """Received messages and acknowledged Commands, a batch at a time."""
        stopping = False
        while not stopping:
            first = self.inbox.get()
            if first is STOP:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if item is STOP:
                    stopping = True
                    break
                batch.append(item)
            messages = [item for item in batch if type(item) is Received]
            sent = [item for item in batch if type(item) is Command]
            effects = self._commit(messages, sent)
            if effects is None:
                break  # stopping while the database refuses: unacked, so the broker keeps them
            self.counters.acked += self.link.ack(messages)
            # The commands are published from here, not from the event loop:
            # one hand-over less. After the desk's update is on its way, since
            # paho's publish takes locks its network thread holds while it
            # handles PUBACKs, and on a busy machine that thread may be waiting
            # for a core.
            commands, effects.outbox = effects.outbox, []
            if not effects.is_empty():
                self._loop.call_soon_threadsafe(self._on_committed, effects)
            if commands:
                self._publish(commands)

    def _publish(self, commands: list[Command]) -> None:
        try:
            self.downlink.publish(commands)
        except Exception:
            # Committed, so in the outbox: the next start publishes them. The
            # writer itself must go on storing what arrives.
            log.exception("cannot hand %d command(s) to paho; they stay in the outbox until the next start",
                          len(commands))

    def _commit(self, batch: list[Received], sent: list[Command]) -> Effects | None:
        """Commit the batch; None if told to stop while the database refuses.

        Fast path: the whole batch in one transaction. Should anything but
        the database fail, the batch is rolled back and done again
        carefully, each message in a savepoint of its own, so that the
        message that failed is kept as a reject and the others are stored
        as usual. A database failure is retried, the same batch, until it
        commits: nothing is acknowledged meanwhile.
        """
        attempt = 0
        careful = False
        while True:
            effects = Effects()
            counted = self.counters.snapshot()
            try:
                with self.store.transaction():
                    for item in batch:
                        self._record(item, effects, careful)
                    if sent:
                        self._mark_sent(sent, effects, careful)
                    self._decide(effects)
            except Exception as exc:
                self.counters.restore(counted)
                if not careful and not is_database_failure(exc):
                    careful = True  # one message's failure: find which, keep the others
                    continue
                if not is_database_failure(exc):
                    # Careful mode charges every failure to its message, so
                    # this is the commit itself failing: keep it visible.
                    log.exception("cannot commit %d message(s)", len(batch))
                self._database_failed(exc, len(batch))
                delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
                attempt += 1
                if self._stopping.wait(delay):
                    return None
                continue
            if not self.db_ok:
                log.warning("the database takes writes again (it refused them for %.1f s: %s)",
                            time.time() - self.db_failing_since, self.db_error)
            self.db_ok, self.db_error, self.db_failing_since = True, None, None
            if batch:
                self.counters.note_batch(time.time(), len(batch))
            return effects

    def _decide(self, effects: Effects) -> None:
        """In the caller's transaction: the notifications and commands to devices effects call for."""
        if self._route is not None:
            self._route(self.store, effects)
        self.downlink.store(self.store, effects)

    def _database_failed(self, exc: Exception, n: int) -> None:
        self.counters.store_retries += 1
        self.db_error = _printable(f"{type(exc).__name__}: {exc}")
        if self.db_ok:
            self.db_ok, self.db_failing_since = False, time.time()
            log.error("cannot commit %d message(s): %s. Not acknowledging anything until the database "
                      "takes writes again; the broker keeps the messages meanwhile. Retrying.", n, self.db_error)

    def _mark_sent(self, sent: list[Command], effects: Effects, careful: bool) -> None:
        if not careful:
            downlink.mark_sent(self.store, effects, sent, time.time())
            return
        own = Effects()
        try:
            with self.store.savepoint():
                downlink.mark_sent(self.store, own, sent, time.time())
        except Exception as exc:
            if is_database_failure(exc):
                raise
            # Left unsent in the outbox: the next start publishes them again,
            # under the same ids, which the devices ignore as repeats.
            log.exception("internal error marking %d command(s) sent", len(sent))
        else:
            effects.extend(own)

    def _record(self, item: Received, effects: Effects, careful: bool) -> None:
        """Store one message and everything it implies, in the caller's transaction."""
        if item.topic.startswith(GATEWAY_TOPICS):
            return  # gateways' own status (ours included) matches lonewatch/v1/+/+/status
        if not careful:
            self._handle(item, effects)
            return
        own = Effects()  # kept only if this message's changes are
        counted = self.counters.snapshot()
        try:
            with self.store.savepoint():  # a failure here loses only this message's changes
                self._handle(item, own)
                self._decide(own)
        except Exception as exc:
            if is_database_failure(exc):
                raise  # the database itself is unwell: retry the batch
            self.counters.restore(counted)
            log.exception("internal error handling a message on %s", _printable(item.topic[:120]))
            self._reject(item, "internal_error", f"{type(exc).__name__}: {exc}", effects)
        else:
            effects.extend(own)

    def _handle(self, item: Received, effects: Effects) -> None:
        try:
            message = protocol.parse_message(item.topic, item.payload)
        except protocol.Invalid as exc:
            self._reject(item, exc.reason, exc.detail, effects)
            return
        if message.kind not in protocol.UPLINK_KINDS:
            self._reject(item, "bad_topic", f"{message.kind} is not an uplink topic", effects)
            return
        self._accept(message, item.received_at, effects)

    def _reject(self, item: Received, reason: str, detail: str, effects: Effects) -> None:
        self.counters.rejected[reason] += 1
        detail = _printable(detail)
        parts = item.topic.split("/")
        device = parts[3][:32] if len(parts) == 5 else None
        self.store.add_reject(item.received_at, item.topic, device, reason, detail, len(item.payload))
        # Once a minute per device and reason: a flood stays one line, yet a
        # second, different fault of the same device is still seen.
        key = (device or item.topic[:64], reason)
        if len(self._last_reject_log) > 10_000:  # bound it against floods of made-up device names
            self._last_reject_log = {k: t for k, t in self._last_reject_log.items()
                                     if item.received_at - t < REJECT_LOG_EVERY_S}
        if item.received_at - self._last_reject_log.get(key, float("-inf")) >= REJECT_LOG_EVERY_S:
            self._last_reject_log[key] = item.received_at
            log.warning("rejected message on %s (%s): %s [logged once a minute per device and reason]",
                        item.topic[:120], reason, detail)
        on_alarm_topic = _alarm_topic_device(item.topic)
        if on_alarm_topic:
            site, dev = on_alarm_topic
            raise_alarm(self.store, effects, site=site, device=dev, alarm_type="technical",
                        cause="unreadable_alarm", now=item.received_at,
                        registered=bool((self.store.get_device(dev) or {}).get("registered")),
                        summary=f"unreadable alarm from device {dev} ({reason}: {detail[:120]})")

    def _accept(self, message: protocol.Message, now: float, effects: Effects) -> None:
        body, kind, device, site = message.body, message.kind, message.device, message.site
        self.counters.received[kind] += 1
        if message.dropped:
            self.counters.location_dropped += 1
        device_fields = {key: body[key] for key in ("battery_pct", "fw", "rssi") if key in body}
        before = self.store.touch_device(device, site, now, **device_fields)
        registered = before["registered"]
        device_time, event_time, skew = _times(kind, body, now)
        fresh = self.store.add_message(now, site, device, kind, body, msg_id=body.get("id"),
                                       device_time=device_time, event_time=event_time, skew_s=skew)
        if kind == "alarm":
            if not fresh:
                self.counters.duplicates += 1
            raise_alarm(
                self.store, effects, site=site, device=device, alarm_type=body["type"],
                cause=body.get("cause"), now=now, alarm_id=body["id"], registered=registered,
                event_time=event_time, device_time=device_time, skew_s=skew,
                location=body.get("location"), battery_pct=body.get("battery_pct"), actor=device,
            )
            if registered:
                supervision.device_heard(self.store, effects, device, now, before)
            return
        if not fresh:
            self.counters.duplicates += 1
            return
        if not registered:
            # Listed for enrollment (devices table), not acted upon.
            self.counters.unregistered += 1
            self.store.count_unregistered_message(device)
            return
        if kind == "status":
            supervision.status_received(self.store, effects, site, device, body["state"], now, before)
            return
        supervision.device_heard(self.store, effects, device, now, before)
        if "battery_pct" in body:
            supervision.battery_reported(self.store, effects, self.config.supervision, site, device,
                                         body["battery_pct"], now, before)
        if kind == "event":
            self._event(message, now, effects)

    def _event(self, message: protocol.Message, now: float, effects: Effects) -> None:
        body, device = message.body, message.device
        etype = body["type"]
        location = body.get("location")
        config = self.config.sessions
        # A session event waits in the device's outbox while it is offline: it counts from when it happened.
        at = min(now, _times("event", body, now)[1])
        if etype == "session_start":
            sessions.started_on_device(self.store, effects, config, device=device, site=message.site,
                                       duration_s=body.get("duration_s", config.default_duration_s),
                                       now=at, location=location)
            return
        session = self.store.open_session_for(device)
        if etype in ("check_in", "session_extend", "session_end") and session is None:
            # Recorded with the message; a check-in outside a session is the
            # wearer's "I'm fine", and the desk sees nothing to change.
            self.store.audit(now, device, f"{etype}_without_session", "no open session")
        elif etype == "check_in":
            sessions.check_in(self.store, effects, config, session, at, by=device, location=location)
        elif etype == "session_extend":
            sessions.extend(self.store, effects, session, at, by=device,
                            ends_at=max(session["ends_at"], at) + config.extend_s)
        elif etype == "session_end":
            sessions.end(self.store, effects, session, at, by=device, how="checked_out", location=location)
        elif etype.startswith("pre_alarm"):
            # Recorded, not an incident: the wearer either cancels or the
            # device sends the alarm itself when the countdown runs out.
            self.store.audit(now, device, etype, f"cause {body['cause']}")
