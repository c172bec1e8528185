"""Lone-work sessions: someone works alone and is missed if they do not check
in or out in time.

    active --check-in / extend--> active
    active --the next deadline passes--> overdue (an OVERDUE alarm is raised)
    overdue --check-in / extend--> active (the incident stays for the desk to resolve)
    active/overdue --check-out or ended by the desk--> ended

A session has an expected end (ends_at) and, optionally, a check-in timer
(check_in_s, the "amber timer"): the next check-in is due check_in_s after
the start or the last check-in. Its deadline (due_at) is the earlier of the
two. Before the deadline the device gets a `session_due` reminder, once per
deadline; past it, an alarm, and the device gets `session_due` with
`due_in_s` 0, which is how it learns that its wearer is overdue.

A session starts from the device (session_start event; the worker is whoever
wears the device then) or from the desk (a worker of the registry, or a name
and phone typed in; a device is optional).

Names and phones are copied into the alarm a session raises (the desk and
the mail must say who to call), so the retention purge rewrites those
incidents' summaries too (Store.purge_expired). Audit entries about sessions
name only ids.
"""

from __future__ import annotations

import time

from contract.vocabulary import SESSION_ENDINGS
from gateway.config import SessionsSection
from gateway.incidents import Effects, raise_alarm
from gateway.store import Store

OVERDUE_SUMMARY = "OVERDUE: {who} {what}; due {due}; last check-in {last}; last location {where}"
LOST_SUMMARY = "LOST CONTACT DURING LONE WORK: {who}: {device} {how}"
LONE_WORK_LOST = "lone_work_lost"
# How the end of a session is told in its history.
ENDED_HOW = tuple(SESSION_ENDINGS)


class Conflict(ValueError):
    """The request is sound but the session or device is not in a state for it (HTTP 409)."""


def _clock(t: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) if t else "none"


def who(session: dict) -> str:
    """Name, phone and place, for the people who must act on an alarm."""
    text = session.get("worker") or "the wearer (nobody assigned)"
    if session.get("phone"):
        text += f" (phone {session['phone']})"
    if session.get("place"):
        text += f" at {session['place']}"
    return text


def deadline(session: dict) -> float:
    """The next moment something must happen: the end, or the next check-in if that comes first."""
    due = session["ends_at"]
    if session.get("check_in_s"):
        due = min(due, (session["last_check_in"] or session["started_at"]) + session["check_in_s"])
    return due


def _battery(store: Store, device: str) -> int | None:
    """The device's last reported charge: an alarm the gateway raises has no reading of its own."""
    known = store.get_device(device) if device else None
    return known["battery_pct"] if known else None


def _where(session: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in (session.get("location") or {}).items()) or "none"


def _changed(store: Store, effects: Effects, session_id: int) -> dict:
    effects.sessions.append(session_id)
    return store.get_session(session_id)


def _tell_device(effects: Effects, session: dict, now: float) -> None:
    """A session the desk registered, changed or checked in on: the wearer
    feels it, and a prompt to check in that the desk has answered stops."""
    if session["device"]:
        effects.commands.append((session["site"], session["device"], "session",
                                 {"due_in_s": max(1, int(session["due_at"] - now))}))


def start(store: Store, effects: Effects, *, device: str, site: str, now: float, ends_at: float,
          check_in_s: float | None, source: str, actor: str, worker_id: int | None = None,
          worker: str | None = None, phone: str | None = None, place: str | None = None,
          note: str | None = None, location: dict | None = None) -> dict:
    fields = dict(device=device, site=site, worker_id=worker_id, worker=worker, place=place, phone=phone,
                  note=note, source=source, state="active", started_at=now, interval_s=ends_at - now,
                  ends_at=ends_at, check_in_s=check_in_s or None, last_check_in=None, location=location)
    fields["due_at"] = deadline(fields)
    session_id = store.create_session(**fields)
    store.audit(now, actor, "session_started",
                f"session {session_id}" + (f" on {device}" if device else "")
                + f" until {_clock(ends_at)}" + (f", check-in every {check_in_s:g} s" if check_in_s else "")
                + f" ({source})")
    session = _changed(store, effects, session_id)
    if source == "desk":
        _tell_device(effects, session, now)
    return session


def started_on_device(store: Store, effects: Effects, config: SessionsSection, *, device: str, site: str,
                      duration_s: float, now: float, location: dict | None) -> dict:
    """The wearer's start gesture. With a session already open (the desk's, say)
    it restarts its clock instead, keeping who and where."""
    session = store.open_session_for(device)
    if session is not None:
        changes = {"ends_at": now + duration_s, "state": "active"}
        if location:
            changes["location"] = location
        store.update_session(session["id"], **changes, due_at=deadline({**session, **changes}))
        store.audit(now, device, "session_restarted", f"session {session['id']} until {_clock(now + duration_s)}")
        return _changed(store, effects, session["id"])
    worker = store.worker_wearing(device)
    return start(store, effects, device=device, site=site, now=now, ends_at=now + duration_s,
                 check_in_s=config.device_check_in_s, source="device", actor=device,
                 worker_id=worker and worker["id"], worker=worker and worker["name"],
                 phone=worker and worker["phone"], location=location)


def extend(store: Store, effects: Effects, session: dict, now: float, by: str, *, ends_at: float) -> dict:
    changes = {"ends_at": ends_at, "state": "active"}
    store.update_session(session["id"], **changes, due_at=deadline({**session, **changes}))
    store.audit(now, by, "session_extended", f"session {session['id']} until {_clock(ends_at)}")
    updated = _changed(store, effects, session["id"])
    if by != session["device"]:
        _tell_device(effects, updated, now)
    return updated


def check_in(store: Store, effects: Effects, config: SessionsSection, session: dict, now: float, by: str,
             note: str | None = None, location: dict | None = None) -> dict:
    """The worker is fine. Past the end they are fine but still there: the end moves on a little."""
    changes = {"state": "active", "last_check_in": now, "check_ins": session["check_ins"] + 1}
    if now >= session["ends_at"]:
        changes["ends_at"] = now + config.late_check_in_extends_s
    if location:
        changes["location"] = location
    store.update_session(session["id"], **changes, due_at=deadline({**session, **changes}))
    # The check-in's own row (who, when, the note) is its record: no audit entry
    # besides it, which the busiest lone-work message would pay for twice.
    store.add_check_in(session["id"], now, by, note)
    updated = _changed(store, effects, session["id"])
    if by != session["device"]:
        _tell_device(effects, updated, now)
    return updated


def end(store: Store, effects: Effects, session: dict, now: float, by: str, how: str,
        location: dict | None = None) -> dict:
    assert how in ENDED_HOW, how
    changes = {"state": "ended", "ended_at": now, "ended_by": by, "ended_how": how}
    if location:
        changes["location"] = location
    store.update_session(session["id"], **changes)
    store.audit(now, by, "session_ended", f"session {session['id']}: {how.replace('_', ' ')}")
    if session["device"] and by != session["device"]:
        # Or the wearable would go on prompting for a session that is over.
        effects.commands.append((session["site"], session["device"], "session_end", {}))
    return _changed(store, effects, session["id"])


def check_due(store: Store, effects: Effects, config: SessionsSection, now: float) -> None:
    """Remind sessions about to fall due and raise an alarm for those overdue."""
    for session in store.list_sessions(active_only=True):
        if session["state"] != "active":
            continue
        due = session["due_at"]
        if now >= due:
            _overdue(store, effects, session, now)
        elif (now >= due - config.reminder_before_s and session["reminded_due_at"] != due
              and session["device"]):
            store.update_session(session["id"], reminded_due_at=due)
            effects.commands.append((session["site"], session["device"], "session_due",
                                     {"due_in_s": max(1, int(due - now))}))


def _overdue(store: Store, effects: Effects, session: dict, now: float) -> None:
    due = session["due_at"]
    if due >= session["ends_at"]:
        what = "did not check out by the expected end"
    else:
        what = f"missed the check-in due every {session['check_in_s'] / 60:g} min"
    summary = OVERDUE_SUMMARY.format(who=who(session), what=what, due=_clock(due),
                                     last=_clock(session["last_check_in"]), where=_where(session))
    # A session without a device still needs an incident of its own: its id stands in for the device.
    device = session["device"] or f"session-{session['id']}"
    incident_id = raise_alarm(store, effects, site=session["site"], device=device, alarm_type="overdue",
                              cause=None, now=now, event_time=due, location=session["location"],
                              battery_pct=_battery(store, session["device"]), summary=summary)
    store.link_session(incident_id, session["id"])
    store.update_session(session["id"], state="overdue", incident_id=incident_id,
                         overdue_at=session["overdue_at"] or due)
    effects.sessions.append(session["id"])
    if session["device"]:
        effects.commands.append((session["site"], session["device"], "session_due", {"due_in_s": 0}))


def contact_lost(store: Store, effects: Effects, site: str, device: str, now: float, how: str) -> bool:
    """A device gone silent or offline while its wearer works alone: as urgent as
    a panic, since nobody else would notice. False if it is in no session."""
    session = store.open_session_for(device)
    if session is None:
        return False
    incident_id = raise_alarm(store, effects, site=site, device=device, alarm_type="technical",
                              cause=LONE_WORK_LOST, now=now, location=session["location"],
                              battery_pct=_battery(store, device),
                              summary=LOST_SUMMARY.format(who=who(session), device=device, how=how))
    store.link_session(incident_id, session["id"])
    return True
