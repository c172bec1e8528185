"""Routing: which external channels hear about an incident, and delivering to them.

The dashboard's live feed is always on and belongs to the gateway; this module
handles the external channels (webhook, e-mail) chosen by rules in the
[routing] table of the gateway's TOML config (docs/routing.md).

Who hears about an incident change is decided in the transaction that makes
the change (Router.store, beside the device commands of gateway.downlink):
one row per channel in the `deliveries` table. After the commit, and at every
start, Router.pick_up() runs one task per pending row, each with its own
per-attempt timeout and retry loop, so a channel that fails or hangs never
delays the ingest, the MQTT acks or another channel. A row leaves the table
only when its notification is delivered (and goes into the incident's audit
trail, action `notified`) or runs out of attempts (and goes to the
`dead_letters` table), both written on a worker thread so the event loop never
waits for the database lock the ingest holds while it commits. A gateway that
stops or dies with deliveries pending resumes them at its next start.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import json
import time
import uuid
from dataclasses import dataclass, field

from contract import vocabulary
from contract.protocol import NAME_RE
from contract.vocabulary import ALARM_TYPES, PRIORITIES
from gateway.channels import DeliveryError, Notification
from gateway.channels.mail import EmailChannel, parse_email_channel
from gateway.channels.webhook import WebhookChannel, parse_webhook_channel

log = logging.getLogger("lonewatch.routing")

EVENTS = ("raised", "escalated", "acknowledged", "resolved")

CHANNEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
CHANNEL_PARSERS = {"webhook": parse_webhook_channel, "email": parse_email_channel}
# The dashboard is not routed: it is always on.
RESERVED_CHANNEL_NAMES = ("dashboard",)
# Deliveries in flight per channel; a burst of incidents must not open
# hundreds of SMTP sessions or HTTP connections to one receiver at once.
CONCURRENCY = {"webhook": 8, "email": 2}
# How long close() lets deliveries that are mid-attempt finish.
CLOSE_GRACE_S = 2.0


@dataclass(frozen=True)
class Rule:
    """Send incidents matching every filter to `channels`; "*" matches anything."""

    sites: tuple[str, ...] | str
    types: tuple[str, ...] | str
    priorities: tuple[str, ...] | str
    events: tuple[str, ...]
    channels: tuple[str, ...]

    def matches(self, site: str, alarm_type: str, priority: str, event: str) -> bool:
        return (
            (self.sites == "*" or site in self.sites)
            and (self.types == "*" or alarm_type in self.types)
            and (self.priorities == "*" or priority in self.priorities)
            and event in self.events
        )


@dataclass(frozen=True)
class Escalation:
    """Ordered tiers paged when nobody acknowledges; tier n uses tiers[n-1]."""

    tiers: tuple[tuple[str, ...], ...] = ()
    priorities: tuple[str, ...] | str = "*"


@dataclass(frozen=True)
class RoutingConfig:
    channels: dict[str, WebhookChannel | EmailChannel] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    escalation: Escalation = Escalation()


# ---------------------------------------------------------------- config


def _check_keys(where: str, table: dict, allowed: tuple[str, ...]) -> None:
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table, got {table!r}")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def _selector(where: str, key: str, value, choices: tuple[str, ...] | None):
    """A rule filter: "*" or a non-empty list of names (checked against choices)."""
    if value == "*":
        return "*"
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} {key} must be \"*\" or a non-empty list of strings, got {value!r}")
    if choices is not None:
        bad = [v for v in value if v not in choices]
        if bad:
            raise ValueError(f"{where} {key} has unknown value(s) {', '.join(bad)}; choose from {', '.join(choices)}")
    return tuple(value)


def _channel_list(where: str, key: str, value, channels: dict) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} {key} must be a non-empty list of channel names, got {value!r}")
    for name in value:
        if name in RESERVED_CHANNEL_NAMES:
            raise ValueError(f"{where} {key}: {name!r} is always on and is not routed; remove it")
        if name not in channels:
            known = ", ".join(sorted(channels)) or "none defined"
            raise ValueError(f"{where} {key}: unknown channel {name!r} (channels: {known})")
    return tuple(dict.fromkeys(value))


def _parse_channels(table) -> dict:
    if not isinstance(table, dict):
        raise ValueError(f"[routing.channels] must be a table of channels, got {table!r}")
    channels = {}
    for name, spec in table.items():
        where = f"[routing.channels.{name}]"
        if not CHANNEL_NAME_RE.match(name):
            raise ValueError(f"{where} name must be lower-case letters, digits, '-' or '_' (max 64)")
        if name in RESERVED_CHANNEL_NAMES:
            raise ValueError(f"{where} {name!r} is the built-in live feed, always on; pick another name")
        if not isinstance(spec, dict):
            raise ValueError(f"{where} must be a table, got {spec!r}")
        kind = spec.get("type")
        if kind not in CHANNEL_PARSERS:
            raise ValueError(f"{where} type must be one of {', '.join(CHANNEL_PARSERS)}, got {kind!r}")
        channels[name] = CHANNEL_PARSERS[kind](where, name, spec)
    return channels


def _parse_rules(value, channels: dict) -> tuple[Rule, ...]:
    if not isinstance(value, list):
        raise ValueError(f"routing.rules must be an array of tables ([[routing.rules]]), got {value!r}")
    rules = []
    for i, table in enumerate(value):
        where = f"[[routing.rules]] #{i + 1}"
        _check_keys(where, table, ("sites", "types", "priorities", "events", "channels"))
        if "channels" not in table:
            raise ValueError(f"{where} needs channels = [...]")
        events = _selector(where, "events", table.get("events", "*"), EVENTS)
        sites = _selector(where, "sites", table.get("sites", "*"), None)
        bad_sites = [site for site in sites if site != "*" and not NAME_RE.match(site)]
        if sites != "*" and bad_sites:
            raise ValueError(f"{where} sites: {', '.join(map(repr, bad_sites))} can never match; "
                             "site names are lower-case letters, digits, '-' and '_' as in the topics")
        rules.append(
            Rule(
                sites=sites,
                types=_selector(where, "types", table.get("types", "*"), ALARM_TYPES),
                priorities=_selector(where, "priorities", table.get("priorities", "*"), PRIORITIES),
                events=EVENTS if events == "*" else events,
                channels=_channel_list(where, "channels", table["channels"], channels),
            )
        )
    return tuple(rules)


def _parse_escalation(table, channels: dict) -> Escalation:
    where = "[routing.escalation]"
    _check_keys(where, table, ("tiers", "priorities"))
    tiers = table.get("tiers", [])
    if not isinstance(tiers, list):
        raise ValueError(f"{where} tiers must be a list of channel lists, got {tiers!r}")
    return Escalation(
        tiers=tuple(_channel_list(where, f"tiers[{i}]", tier, channels) for i, tier in enumerate(tiers)),
        priorities=_selector(where, "priorities", table.get("priorities", "*"), PRIORITIES),
    )


def parse_routing_config(table: dict) -> RoutingConfig:
    """Validate the raw [routing] TOML table; an empty table means dashboard only."""
    _check_keys("[routing]", table, ("channels", "rules", "escalation"))
    channels = _parse_channels(table.get("channels", {}))
    return RoutingConfig(
        channels=channels,
        rules=_parse_rules(table.get("rules", []), channels),
        escalation=_parse_escalation(table.get("escalation", {}), channels),
    )


# ---------------------------------------------------------------- routing


def priority_of(incident: dict) -> str:
    """The incident's priority; derived from its type and cause if it carries none."""
    return incident.get("priority") or vocabulary.priority_of(incident["type"], incident.get("cause"))


def channels_for(config: RoutingConfig, incident: dict, event: str, tier: int = 0) -> tuple[str, ...]:
    """The external channels that hear about `event` for `incident`.

    Rules decide for every event. An escalation at tier n adds the escalation
    tier n (the last tier again beyond the end, so re-alerts keep reaching
    someone). Acknowledged and resolved also go to tiers 1..tier, so everyone
    who was paged learns that the alarm is handled; pass the highest tier
    reached.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown routing event {event!r}; one of {', '.join(EVENTS)}")
    priority = priority_of(incident)
    chosen: list[str] = []
    for rule in config.rules:
        if rule.matches(incident.get("site"), incident.get("type"), priority, event):
            chosen.extend(rule.channels)
    esc = config.escalation
    if tier > 0 and esc.tiers and (esc.priorities == "*" or priority in esc.priorities):
        last = min(tier, len(esc.tiers))
        if event == "escalated":
            chosen.extend(esc.tiers[last - 1])
        elif event in ("acknowledged", "resolved"):
            for paged in esc.tiers[:last]:
                chosen.extend(paged)
    return tuple(dict.fromkeys(chosen))


class Router:
    """Decides deliveries inside the caller's transaction, then runs them without blocking anyone."""

    def __init__(self, config: RoutingConfig, store):
        """`store` (gateway.store.Store) holds the pending deliveries, dead letters and audit."""
        self.config = config
        self._store = store
        self.failures_total = {name: 0 for name in config.channels}
        self.delivered_total = {name: 0 for name in config.channels}
        self.dead_letters_total = {name: 0 for name in config.channels}
        self._limits = {
            name: asyncio.Semaphore(CONCURRENCY[channel.kind]) for name, channel in config.channels.items()
        }
        self._running: dict[int, asyncio.Task] = {}  # by deliveries row id
        self._stopping = asyncio.Event()
        self._closed = False

    def store(self, store, effects) -> None:
        """Write the deliveries that effects.incidents call for, in the caller's transaction.

        Safe to call twice on the same effects (the ingest's careful path
        does): a decision is unique per incident, event, tier and channel.
        """
        for incident_id, event, tier in dict.fromkeys(effects.incidents):
            if event not in EVENTS:
                continue
            try:
                self.decide(store, store.get_incident(incident_id), event, tier)
            except sqlite3.Error:
                raise  # the database's: the caller retries the whole transaction
            except Exception:
                # A routing bug must not cost the incident change it follows (the desk still sees it).
                log.exception("routing %s for incident %s failed", event, incident_id)

    def decide(self, store, incident: dict, event: str, tier: int = 0) -> None:
        """Write one pending delivery per channel that hears about `event` for `incident`, in the
        caller's transaction; pick_up() runs them once it has committed."""
        names = channels_for(self.config, incident, event, tier)
        if not names:
            return
        notification = Notification(
            delivery_id=uuid.uuid4().hex,
            event=event,
            tier=tier,
            incident=dict(incident, priority=priority_of(incident)),
            gateway_time=time.time(),
        )
        payload = notification.to_json().decode()
        store.add_deliveries([(notification.delivery_id, name, incident["id"], event, tier, payload,
                               notification.gateway_time) for name in names])

    def pick_up(self) -> None:
        """Start a task for every pending delivery not already running; returns at once."""
        if self._closed:
            return  # left pending for the next start
        for row in self._store.pending_deliveries():
            if row["id"] in self._running:
                continue
            channel = self.config.channels.get(row["channel"])
            work = (self._deliver(channel, row) if channel is not None else
                    self._give_up(row, f"channel {row['channel']!r} is no longer in the routing config", 0))
            task = asyncio.get_running_loop().create_task(
                work, name=f"deliver {row['channel']} {row['event']} {row['incident_id']}")
            self._running[row["id"]] = task
            task.add_done_callback(lambda _task, key=row["id"]: self._running.pop(key, None))

    async def _deliver(self, channel, row: dict) -> None:
        notification = _notification(row["payload"])
        attempts = 0
        error = ""
        async with self._limits[channel.name]:
            while attempts < channel.max_attempts:
                attempts += 1
                try:
                    async with asyncio.timeout(channel.timeout_s):
                        await channel.send(notification)
                except TimeoutError:
                    error = f"timed out after {channel.timeout_s:g} s"
                    permanent = False
                except DeliveryError as exc:
                    error, permanent = str(exc), exc.permanent
                except Exception as exc:  # a bug must not lose the notification: retry, then dead-letter
                    log.exception("%s: unexpected error while sending", channel.name)
                    error, permanent = f"{type(exc).__name__}: {exc}", False
                else:
                    self.delivered_total[channel.name] += 1
                    log.info(
                        "delivered %s for incident %s to %s (attempt %d)",
                        notification.event, row["incident_id"], channel.name, attempts,
                    )
                    await asyncio.to_thread(self._settle_delivered, row, attempts)
                    return
                self.failures_total[channel.name] += 1
                log.warning(
                    "%s: %s for incident %s failed (attempt %d/%d): %s",
                    channel.name, notification.event, row["incident_id"], attempts, channel.max_attempts, error,
                )
                if permanent or attempts >= channel.max_attempts:
                    break
                if await self._stopped_during(channel.backoff(attempts)):
                    return  # still pending: the next start tries again
        await self._give_up(row, error, attempts)

    def _settle_delivered(self, row: dict, attempts: int) -> None:
        tier = f", tier {row['tier']}" if row["tier"] else ""
        try:
            with self._store.transaction():
                self._store.delivered(row["id"])
                self._store.audit(time.time(), row["channel"], "notified",
                                  f"{row['event']}{tier} (attempt {attempts})", row["incident_id"])
        except sqlite3.Error as exc:
            # Still pending, so the next start sends it again: receivers drop it by its delivery id.
            log.error("%s: delivered %s for incident %s but could not record it: %s",
                      row["channel"], row["event"], row["incident_id"], exc)

    async def _stopped_during(self, delay_s: float) -> bool:
        try:
            async with asyncio.timeout(delay_s):
                await self._stopping.wait()
            return True
        except TimeoutError:
            return False

    async def _give_up(self, row: dict, error: str, attempts: int) -> None:
        name = row["channel"]
        if name in self.dead_letters_total:
            self.dead_letters_total[name] += 1
        log.error(
            "%s: gave up on %s for incident %s after %d attempt(s): %s -> dead_letters",
            name, row["event"], row["incident_id"], attempts, error,
        )
        await asyncio.to_thread(self._store_dead_letter, row, error, attempts)

    def _store_dead_letter(self, row: dict, error: str, attempts: int) -> None:
        try:
            with self._store.transaction():
                self._store.dead_letter(row["id"], time.time(), error, attempts)
        except sqlite3.Error as exc:
            # Still pending, so the next start tries it again.
            log.error("%s: could not move %s for incident %s to dead_letters: %s",
                      row["channel"], row["event"], row["incident_id"], exc)

    async def close(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """Let attempts in flight finish for up to grace_s, then stop the rest.

        Deliveries waiting to retry stop at once. What is not delivered stays
        pending in the database, and the next start resumes it.
        """
        self._closed = True
        self._stopping.set()
        pending = set(self._running.values())
        if pending:
            _done, late = await asyncio.wait(pending, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for channel in self.config.channels.values():
            await channel.close()


def _notification(payload: str) -> Notification:
    """The notification as written when it was decided: the same body and delivery id on every attempt."""
    body = json.loads(payload)
    return Notification(delivery_id=body["delivery_id"], event=body["event"], tier=body["tier"],
                        incident=body["incident"], gateway_time=body["gateway_time"])
