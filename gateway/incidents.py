"""Incidents: how alarms become one task for the desk, and its lifecycle.

    raised --acknowledge--> acknowledged --resolve--> resolved
    raised --resolve--> resolved            (e.g. an obvious test)
    raised --(no ack within ack_timeout_s)--> raised, tier + 1 (escalated)

Every function here runs inside a Store transaction and only writes to the
database; what must happen after the commit (live feed, routing, commands to
the device) is collected in an Effects object, so nothing leaves the gateway
about a change that could still roll back. Commands are written to the
outbox in the same transaction (gateway.downlink), so none is lost either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contract.vocabulary import INCIDENT_TRANSITIONS, PERSON_TYPES, RESOLUTIONS, label_of, priority_of
from gateway.store import Store


@dataclass
class Effects:
    """What to do once the transaction that produced it has committed."""

    incidents: list = field(default_factory=list)  # (incident_id, event, tier)
    devices: list = field(default_factory=list)  # device ids whose state changed
    sessions: list = field(default_factory=list)  # session ids that changed
    commands: list = field(default_factory=list)  # (site, device, cmd, fields) decided
    outbox: list = field(default_factory=list)  # downlink.Command stored, to publish after the commit

    def extend(self, other: "Effects") -> None:
        self.incidents += other.incidents
        self.devices += other.devices
        self.sessions += other.sessions
        self.commands += other.commands
        self.outbox += other.outbox

    def is_empty(self) -> bool:
        return not (self.incidents or self.devices or self.sessions or self.commands or self.outbox)


def summary_of(device: str, site: str, alarm_type: str, cause: str | None, registered: bool) -> str:
    text = f"{label_of(alarm_type, cause)} from {device} at {site}"
    if not registered:
        text = f"UNREGISTERED DEVICE {device}: " + text
    return text


def tells_wearer(incident: dict) -> bool:
    """Commands go to the wearer for their own alarms and for person incidents."""
    return bool(incident["alarm_id"]) or incident["type"] in PERSON_TYPES


def _ref(incident: dict) -> str:
    return incident["alarm_id"] or f"incident-{incident['id']}"


def raise_alarm(store: Store, effects: Effects, *, site: str, device: str, alarm_type: str,
                cause: str | None, now: float, alarm_id: str | None = None, registered: bool = True,
                event_time: float | None = None, device_time: float | None = None,
                skew_s: float | None = None, location: dict | None = None,
                battery_pct: int | None = None, actor: str = "gateway", summary: str | None = None) -> int:
    """Make the alarm an incident, attach it to the open one, or recognise a duplicate.

    Returns the incident id. An alarm id seen before changes nothing but is
    answered with "delivered" again: the device resends because it did not
    hear that its alarm arrived.
    """
    if alarm_id is not None:
        known = store.incident_for_alarm(alarm_id)
        if known is not None:
            effects.commands.append((site, device, "delivered", {"ref": alarm_id}))
            return known
    same = PERSON_TYPES if alarm_type in PERSON_TYPES else ("technical",)
    attached = store.attach_to_open_incident(device, same, None if alarm_type in PERSON_TYPES else cause, location)
    if attached is not None:
        incident_id = attached["id"]
        store.audit(now, actor, "attached", f"{alarm_type}" + (f" ({cause})" if cause else "")
                    + (f" alarm {alarm_id}" if alarm_id else ""), incident_id)
        effects.incidents.append((incident_id, "attached", attached["tier"]))
    else:
        text = summary or summary_of(device, site, alarm_type, cause, registered)
        incident_id = store.create_incident(
            site=site, device=device, type=alarm_type, cause=cause,
            priority=priority_of(alarm_type, cause), summary=text, state="raised",
            alarm_id=alarm_id, registered=registered, raised_at=now, received_at=now,
            event_time=event_time if event_time is not None else now, device_time=device_time,
            skew_s=skew_s, location=location, battery_pct=battery_pct, alerted_at=now,
        )
        store.audit(now, actor, "raised", text, incident_id)
        effects.incidents.append((incident_id, "raised", 0))
    if alarm_id is not None:
        store.link_alarm(alarm_id, incident_id, now)
        effects.commands.append((site, device, "delivered", {"ref": alarm_id}))
    return incident_id


def _transition(store: Store, incident_id: int, action: str) -> tuple[dict, str]:
    incident = store.get_incident(incident_id)
    if incident is None:
        raise ValueError(f"no incident with id {incident_id}")
    target = INCIDENT_TRANSITIONS.get((incident["state"], action))
    if target is None:
        raise ValueError(f"cannot {action} incident {incident_id}: it is {incident['state']}")
    return incident, target


def acknowledge(store: Store, effects: Effects, incident_id: int, operator: str, now: float) -> None:
    if not isinstance(operator, str) or not operator.strip():
        raise ValueError("acknowledge needs the operator's name")
    incident, state = _transition(store, incident_id, "acknowledge")
    store.update_incident(incident_id, state=state, acknowledged_at=now, acknowledged_by=operator)
    store.audit(now, operator, "acknowledged", "", incident_id)
    effects.incidents.append((incident_id, "acknowledged", incident["tier"]))
    if tells_wearer(incident):
        effects.commands.append((incident["site"], incident["device"], "help_coming",
                                 {"ref": _ref(incident), "by": operator[:64]}))


def resolve(store: Store, effects: Effects, incident_id: int, operator: str, reason: str,
            note: str, now: float) -> None:
    if reason not in RESOLUTIONS:
        raise ValueError(f"resolution reason must be one of {', '.join(RESOLUTIONS)}, got {reason!r}")
    if not isinstance(operator, str) or not operator.strip():
        raise ValueError("resolve needs the operator's name")
    incident, state = _transition(store, incident_id, "resolve")
    store.update_incident(incident_id, state=state, resolved_at=now, resolved_by=operator,
                          resolution=reason, note=note or None)
    store.audit(now, operator, "resolved", reason + (f": {note}" if note else ""), incident_id)
    effects.incidents.append((incident_id, "resolved", incident["tier"]))
    if tells_wearer(incident):
        effects.commands.append((incident["site"], incident["device"], "resolved", {"ref": _ref(incident)}))


def escalate_unacknowledged(store: Store, effects: Effects, ack_timeout_s: float, now: float) -> None:
    """Re-alert every incident nobody acknowledged within ack_timeout_s, one tier up."""
    for incident in store.incidents_due_for_escalation(now - ack_timeout_s):
        tier = incident["tier"] + 1
        store.update_incident(incident["id"], tier=tier, alerted_at=now)
        store.audit(now, "gateway", "escalated",
                    f"not acknowledged within {ack_timeout_s:g} s; tier {tier}", incident["id"])
        effects.incidents.append((incident["id"], "escalated", tier))


def mark_delivered(store: Store, effects: Effects, alarm_ids: list[str], now: float) -> None:
    """The broker has the devices' "delivered" for these alarms: note it once per incident."""
    for changed in store.set_delivered(alarm_ids, now):
        store.audit(now, "gateway", "delivered", f"told {changed['device']} that its alarm is stored", changed["id"])
        effects.incidents.append((changed["id"], "delivered", changed["tier"]))
