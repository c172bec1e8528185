"""The desk's lone-work sessions: who is working alone where and until when,
register / extend / check in / check out, and the history of ended sessions
with its CSV. Routes of the desk's application (dashboard.app.make_app), behind
its login and Origin checks."""

from __future__ import annotations

import json

from aiohttp import web

from contract.vocabulary import SESSION_ENDINGS
from dashboard.csvstream import stream_csv
from dashboard.handlers import (GATEWAY, SESSION, STATIC, csv_cell, error_answer, json_answer, local_time,
                                query_number, read_fields)
from gateway.sessions import Conflict

PAGE = "sessions.html"
PER_PAGE = 50
MAX_PER_PAGE = 500
CSV_COLUMNS = ("id", "worker", "phone", "place", "device", "note", "source", "started", "expected_end",
               "check_in_every_s", "check_ins", "last_check_in", "check_in_times", "overdue_since", "ended",
               "how_ended", "ended_by")


def _gateway(request: web.Request):
    return request.app[GATEWAY]


def _operator(request: web.Request) -> str:
    return request[SESSION].name


async def _act(request: web.Request, action, status: int = 200):
    """Run a gateway action; 400 for bad input, 409 for a session or device not in a state for it."""
    try:
        session = await action()
    except Conflict as exc:
        return error_answer(409, str(exc))
    except ValueError as exc:
        return error_answer(400, str(exc))
    return json_answer(session, status=status)


async def page(request: web.Request):
    return web.FileResponse(STATIC / PAGE)


async def list_sessions(request: web.Request):
    """state=active: every open session (overdue first); state=ended: the history, paged; none: the latest."""
    state = request.query.get("state")
    if state == "ended":
        try:
            per_page = query_number(request, "per_page", PER_PAGE, 1, MAX_PER_PAGE)
            page_no = query_number(request, "page", 1, 1, 10**6)
        except ValueError as exc:
            return error_answer(400, str(exc))
        items, total = _gateway(request).session_history(per_page, (page_no - 1) * per_page)
        return json_answer(items, headers={"X-Total-Count": str(total)})
    try:
        return json_answer(_gateway(request).sessions(state))
    except ValueError as exc:
        return error_answer(400, str(exc))


async def settings(request: web.Request):
    """What the page needs of the gateway's [sessions] config: how long before
    its deadline a session is reminded, which the page shows amber."""
    return json_answer({"reminder_before_s": _gateway(request).config.sessions.reminder_before_s})


async def get_session(request: web.Request):
    found = _gateway(request).session(_session_id(request))
    if found is None:
        return error_answer(404, f"no session with id {request.match_info['id']}")
    return json_answer(found)


def _session_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"error": "session id must be a number"}),
                                 content_type="application/json") from None


def _number_or_none(fields: dict, key: str):
    """Form fields arrive as text; JSON numbers as numbers."""
    value = fields.get(key)
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{key} must be a number, got {value!r}") from None
    return value


async def register(request: web.Request):
    fields = await read_fields(request)
    known = {"worker_id", "name", "phone", "place", "duration_s", "until", "device", "note", "check_in_s"}
    unknown = sorted(set(fields) - known)
    if unknown:
        return error_answer(400, f"unknown field(s) {', '.join(unknown)}; a session takes {', '.join(sorted(known))}")

    async def action():
        worker_id = fields.get("worker_id")
        return await _gateway(request).start_session(
            place=fields.get("place"), by=_operator(request),
            worker_id=None if worker_id in (None, "") else worker_id,
            name=fields.get("name") or None, phone=fields.get("phone") or None,
            duration_s=_number_or_none(fields, "duration_s"), until=fields.get("until") or None,
            device=fields.get("device") or None, note=fields.get("note") or None,
            check_in_s=_number_or_none(fields, "check_in_s"))
    return await _act(request, action, status=201)


async def extend(request: web.Request):
    fields = await read_fields(request)
    return await _act(request, lambda: _gateway(request).extend_session(
        _session_id(request), _operator(request), duration_s=_number_or_none(fields, "duration_s"),
        until=fields.get("until") or None))


async def check_in(request: web.Request):
    fields = await read_fields(request)
    return await _act(request, lambda: _gateway(request).check_in_session(
        _session_id(request), _operator(request), note=fields.get("note") or None))


async def end(request: web.Request):
    return await _act(request, lambda: _gateway(request).end_session(_session_id(request), _operator(request)))


def _row(s: dict) -> list[str]:
    local = local_time
    times = " ".join(local(c["at"]) for c in s.get("check_in_list", []))
    return [csv_cell(v) for v in (
        s["id"], s["worker"], s["phone"], s["place"], s["device"], s["note"], s["source"], local(s["started_at"]),
        local(s["ends_at"]), s["check_in_s"], s["check_ins"], local(s["last_check_in"]), times,
        local(s["overdue_at"]), local(s["ended_at"]), SESSION_ENDINGS.get(s["ended_how"], s["ended_how"]),
        s["ended_by"])]


async def history_csv(request: web.Request):
    """Every ended session, the latest first, written as it is read."""
    return await stream_csv(request, "sessions", CSV_COLUMNS,
                            (_row(session) for session in _gateway(request).iter_session_history()))


ROUTES = [
    web.get("/sessions", page),
    web.get("/api/sessions", list_sessions),
    web.get("/api/sessions.csv", history_csv),
    web.get("/api/sessions/settings", settings),  # before {id}, which would take it
    web.get("/api/sessions/{id}", get_session),
    web.post("/api/sessions", register),
    web.post("/api/sessions/{id}/extend", extend),
    web.post("/api/sessions/{id}/check-in", check_in),
    web.post("/api/sessions/{id}/end", end),
]
