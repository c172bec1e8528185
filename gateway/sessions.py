"""Lone-work sessions: someone works alone and must check in before a due time.

    active --check_in--> active (due_at = now + interval_s)
    active --due_at passes--> overdue (an OVERDUE alarm is raised)
    overdue --check_in--> active (the incident stays for the desk to resolve)
    active/overdue --check-out--> ended

A session starts from the device (session_start event, duration_s) or from
the desk (worker, place, phone, expected end). Before it is due the device
gets a session_due reminder, once per due time.
"""

from __future__ import annotations

from gateway.config import SessionsSection
from gateway.incidents import Effects, raise_alarm
from gateway.store import Store

OVERDUE_SUMMARY = "OVERDUE: {who} on {device} did not check in by the due time"


def _who(session: dict) -> str:
    parts = [session.get("worker") or "the wearer"]
    if session.get("place"):
        parts.append(f"at {session['place']}")
    if session.get("phone"):
        parts.append(f"(phone {session['phone']})")
    return " ".join(parts)


def start(store: Store, effects: Effects, *, device: str, site: str, interval_s: float, now: float,
          source: str, actor: str, worker: str | None = None, place: str | None = None,
          phone: str | None = None, location: dict | None = None) -> int:
    previous = store.open_session_for(device)
    if previous is not None:
        end(store, effects, previous, now, by=actor, why="replaced by a new session")
    session_id = store.create_session(
        device=device, site=site, worker=worker, place=place, phone=phone, source=source,
        state="active", started_at=now, interval_s=interval_s, due_at=now + interval_s,
        location=location,
    )
    store.audit(now, actor, "session_started",
                f"session {session_id} on {device} for {interval_s:g} s ({source})")
    effects.sessions.append(session_id)
    return session_id


def check_in(store: Store, effects: Effects, device: str, now: float, location: dict | None = None) -> int | None:
    session = store.open_session_for(device)
    if session is None:
        return None
    changes = {"state": "active", "due_at": now + session["interval_s"], "last_check_in": now}
    if location:
        changes["location"] = location
    store.update_session(session["id"], **changes)
    store.audit(now, device, "session_check_in", f"session {session['id']} due again in {session['interval_s']:g} s")
    effects.sessions.append(session["id"])
    return session["id"]


def end(store: Store, effects: Effects, session: dict, now: float, by: str, why: str = "checked out",
        location: dict | None = None) -> None:
    changes = {"state": "ended", "ended_at": now, "ended_by": by}
    if location:
        changes["location"] = location
    store.update_session(session["id"], **changes)
    store.audit(now, by, "session_ended", f"session {session['id']} on {session['device']}: {why}")
    effects.sessions.append(session["id"])


def check_due(store: Store, effects: Effects, config: SessionsSection, now: float) -> None:
    """Remind sessions about to fall due and raise an alarm for those overdue."""
    for session in store.list_sessions(active_only=True):
        if session["state"] != "active":
            continue
        if now >= session["due_at"]:
            store.update_session(session["id"], state="overdue")
            incident_id = raise_alarm(
                store, effects, site=session["site"], device=session["device"], alarm_type="overdue",
                cause=None, now=now, event_time=session["due_at"], location=session["location"],
                summary=OVERDUE_SUMMARY.format(who=_who(session), device=session["device"]),
            )
            store.update_session(session["id"], incident_id=incident_id)
            effects.sessions.append(session["id"])
        elif now >= session["due_at"] - config.reminder_before_s and session["reminded_due_at"] != session["due_at"]:
            store.update_session(session["id"], reminded_due_at=session["due_at"])
            effects.commands.append((session["site"], session["device"], "session_due",
                                     {"due_in_s": max(0, int(session["due_at"] - now))}))
