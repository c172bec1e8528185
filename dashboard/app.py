"""The security desk's web pages: the live board, devices and workers,
history with each incident's timeline, and the login in front of them.

One aiohttp application over a running `gateway.service.Gateway`. The board
gets a snapshot over a WebSocket and every change after that from the
gateway's live feed, so an alarm shows up without polling.

Passwords are checked on a thread of their own: the event loop also runs the
escalation and overdue timers, and a flood of logins must not delay them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import re
import time
import weakref
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from contract import vocabulary
from dashboard import metrics as prometheus
from dashboard import sessions as lone_work
from dashboard.auth import Sessions, Throttle
from dashboard.csvstream import stream_csv
from dashboard.gateway_api import DeskGateway
from dashboard.handlers import (GATEWAY, SESSION, STATIC, csv_cell, error_answer, json_answer, local_time,
                                query_number, read_fields)
from gateway.accounts import verify_password, waste_a_check

log = logging.getLogger(__name__)

COOKIE = "lonewatch_session"
MAX_NOTE = 2000
PER_PAGE = 50
MAX_PER_PAGE = 500
LINK_TICK_S = 5.0  # the page calls its link lost after three of these missed
RECENT = 20  # resolved incidents sent with the board's snapshot
# Logins waiting for the password thread; more are turned away at once.
MAX_PENDING_LOGINS = 8
PAGES = {"/": "index.html", "/devices": "devices.html", "/history": "history.html"}
PUBLIC = ("/login", "/healthz", "/metrics")

OPERATORS = web.AppKey("operators", dict)
SESSIONS = web.AppKey("sessions", Sessions)
THROTTLE = web.AppKey("throttle", Throttle)
HASHER = web.AppKey("hasher", concurrent.futures.ThreadPoolExecutor)
PENDING = web.AppKey("pending", list)
SOCKETS = web.AppKey("sockets", weakref.WeakSet)
METRICS = web.AppKey("metrics", prometheus.CollectorRegistry)
# Pages that whoever composes the desk adds to it and to its menu (the demo's
# simulator page), each {"href", "label"}; the gateway adds none.
NAV = web.AppKey("nav", list)


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        # Browsers that send no Origin still say where a request came from.
        return request.headers.get("Sec-Fetch-Site") == "same-origin"
    return urlsplit(origin).netloc == request.host


@web.middleware
async def guard(request: web.Request, handler):
    """Log-in required except for PUBLIC and /static/; a state change (and the
    live socket) only from a page of this desk."""
    if request.path == "/ws":
        # Browsers always send Origin on a WebSocket; another site's page must not read the feed.
        foreign = "Origin" in request.headers and not _same_origin(request)
    else:
        foreign = request.method not in ("GET", "HEAD", "OPTIONS") and not _same_origin(request)
    if foreign:
        log.warning("dashboard: refused %s %s from origin %r (address %s)", request.method, request.path,
                    request.headers.get("Origin"), request.remote)
        return error_answer(403, "refused: this request did not come from a page of this desk (Origin check)")
    public = request.path in PUBLIC or request.path.startswith("/static/")
    session = request.app[SESSIONS].get(request.cookies.get(COOKIE))
    if session is None and not public:
        if request.path.startswith("/api/") or request.path == "/ws":
            return error_answer(401, "log in first")
        raise web.HTTPFound("/login")
    if session is not None:
        account = _account(request, session.name)
        if account is None or account["disabled_at"] is not None:
            request.app[SESSIONS].revoke_user(session.name)
            if request.path.startswith("/api/") or request.path == "/ws":
                return error_answer(401, "log in first")
            raise web.HTTPFound("/login")
        request[SESSION] = session
    return await handler(request)


def _admin(request: web.Request) -> None:
    if request[SESSION].role != "admin":
        raise web.HTTPForbidden(text=json.dumps({"error": "only an admin may do this"}), content_type="application/json")


# ---- login ------------------------------------------------------------------

async def login_page(request: web.Request):
    return web.FileResponse(STATIC / "login.html")


def _check(account: dict | None, password: str) -> bool:
    """On the password thread. Unknown names cost a check too, so they answer no faster."""
    if account is None:
        waste_a_check(password)
        return False
    return verify_password(password, account["password_hash"])


def _account(request: web.Request, name: str) -> dict | None:
    """A database user first; then an operator of the TOML config (role operator)."""
    user = request.app[GATEWAY].account(name)
    if user is not None:
        return user
    stored = request.app[OPERATORS].get(name)
    return None if stored is None else {"name": name, "role": "operator", "password_hash": stored,
                                        "disabled_at": None}


async def login(request: web.Request):
    form = await request.post()
    name = str(form.get("name", "")).strip()[:64]
    password = str(form.get("password", ""))[:1024]
    address = request.remote or "?"
    gateway, throttle = request.app[GATEWAY], request.app[THROTTLE]
    keys = (("address", address), ("name", name.lower()))
    wait = throttle.wait_s(keys, time.time())
    if wait > 0:
        raise web.HTTPFound(f"/login?wait={int(wait) + 1}")
    pending = request.app[PENDING]
    if len(pending) >= MAX_PENDING_LOGINS:
        raise web.HTTPFound("/login?busy=1")
    account = _account(request, name)
    pending.append(name)
    try:
        ok = await asyncio.get_running_loop().run_in_executor(request.app[HASHER], _check, account, password)
    finally:
        pending.remove(name)
    if not ok or account["disabled_at"] is not None:
        why = "account disabled" if ok else "wrong name or password"
        log.warning("dashboard: failed login for operator %r from %s (%s)", name, address, why)
        gateway.record_login(name, "login_failed", f"from {address}: {why}")
        if throttle.failed(keys, time.time()):
            # Once per lock, not per refused attempt: a flood must not become a flood of writes.
            log.warning("dashboard: logins for %r or from %s now throttled", name, address)
            gateway.record_login(name, "login_throttled", f"from {address}: too many failures")
        raise web.HTTPFound("/login?failed=1")
    throttle.succeeded(keys)
    session = request.app[SESSIONS].issue(account["name"], account["role"])
    gateway.record_login(account["name"], "login", f"from {address} as {account['role']}")
    log.info("dashboard: %s %s logged in from %s", account["role"], account["name"], address)
    response = web.HTTPFound("/")
    response.set_cookie(COOKIE, session.token, httponly=True, samesite="Strict", secure=request.secure, path="/")
    raise response


async def logout(request: web.Request):
    session = request.app[SESSIONS].revoke(request[SESSION].token)
    if session is not None:
        request.app[GATEWAY].record_login(session.name, "logout", f"from {request.remote}")
        for ws in list(session.sockets):
            await ws.close(code=4001, message=b"logged out")
    response = web.HTTPFound("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


async def who(request: web.Request):
    session = request[SESSION]
    return json_answer({"name": session.name, "role": session.role})


async def menu(request: web.Request):
    return json_answer(request.app[NAV])


async def words(request: web.Request):
    """The labels the board gets with its snapshot, for the pages that have no live socket."""
    return json_answer(vocabulary.for_the_page())


# ---- pages ------------------------------------------------------------------

async def page(request: web.Request):
    return web.FileResponse(STATIC / PAGES[request.path])


async def incident_page(request: web.Request):
    return web.FileResponse(STATIC / "incident.html")


# ---- incidents --------------------------------------------------------------

def _when(text: str, what: str, end: bool) -> float:
    """A date or date-time in the desk's local time (or with an offset); a
    bare date as an end means the end of that day."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} must be a date (2025-03-01) or date and time (2025-03-01T18:30), got {text!r}")
    if end and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        parsed += timedelta(days=1)
    return parsed.astimezone().timestamp()


def _filters(request: web.Request) -> dict:
    q = request.query
    filters: dict = {}
    state = q.get("state")
    if state:
        if state not in (*vocabulary.INCIDENT_STATES, "open"):
            raise ValueError(f"state must be one of open, {', '.join(vocabulary.INCIDENT_STATES)}, got {state!r}")
        filters["state"] = state
    kind = q.get("type")
    if kind:
        if kind not in vocabulary.ALARM_TYPES:
            raise ValueError(f"type must be one of {', '.join(vocabulary.ALARM_TYPES)}, got {kind!r}")
        filters["type"] = kind
    for key in ("site", "device"):
        if q.get(key):
            filters[key] = q[key][:64]
    if q.get("worker"):
        if not q["worker"].isdigit():
            raise ValueError(f"worker must be a worker's id (a number), got {q['worker']!r}")
        filters["worker"] = int(q["worker"])
    if q.get("from"):
        filters["raised_from"] = _when(q["from"], "from", end=False)
    if q.get("to"):
        filters["raised_to"] = _when(q["to"], "to", end=True)
    return filters


async def incidents(request: web.Request):
    """?state=open: every open incident, most urgent then longest waiting. Otherwise a
    page of history, newest first, with the number matching in X-Total-Count."""
    try:
        filters = _filters(request)
        if filters == {"state": "open"}:
            return json_answer(request.app[GATEWAY].open_incidents())
        per_page = query_number(request, "per_page", PER_PAGE, 1, MAX_PER_PAGE)
        page_no = query_number(request, "page", 1, 1, 10**6)
    except ValueError as exc:
        return error_answer(400, str(exc))
    items, total = request.app[GATEWAY].history(filters, per_page, (page_no - 1) * per_page)
    return json_answer(items, headers={"X-Total-Count": str(total)})


CSV_COLUMNS = ("id", "raised", "type", "cause", "priority", "state", "site", "device", "worker", "phone",
               "location", "alarms", "acknowledged", "acknowledged_by", "resolved", "resolved_by",
               "resolution", "note")


def _csv_row(i: dict) -> list[str]:
    worker = i.get("worker") or {}
    location = ", ".join(f"{k} {v}" for k, v in (i.get("location") or {}).items())
    return [csv_cell(v) for v in (
        i["id"], local_time(i["raised_at"]), i["type"], i["cause"], i["priority"], i["state"], i["site"], i["device"],
        worker.get("name", "UNASSIGNED"), worker.get("phone", ""), location, i["alarm_count"],
        local_time(i["acknowledged_at"]), i["acknowledged_by"], local_time(i["resolved_at"]), i["resolved_by"],
        i["resolution"], i["note"])]


async def incidents_csv(request: web.Request):
    """Every matching incident, oldest first, written as it is read (never all in memory)."""
    try:
        filters = _filters(request)
    except ValueError as exc:
        return error_answer(400, str(exc))
    return await stream_csv(request, "incidents", CSV_COLUMNS,
                            (_csv_row(incident) for incident in request.app[GATEWAY].iter_history(filters)))


def _incident_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"error": "incident id must be a number"}),
                                 content_type="application/json") from None


async def incident_detail(request: web.Request):
    detail = request.app[GATEWAY].incident_detail(_incident_id(request))
    if detail is None:
        return error_answer(404, f"no incident with id {request.match_info['id']}")
    return json_answer(detail)


def _conflict(request: web.Request, incident_id: int, exc: ValueError, doing: str):
    """Another operator got there first: say who did what, and send the incident as it is now."""
    current = request.app[GATEWAY].incident(incident_id)
    if current is None:
        return error_answer(409, str(exc))
    if current["state"] == "resolved":
        what = (f"{current['resolved_by']} resolved it at {local_time(current['resolved_at'])} "
                f"({vocabulary.RESOLUTIONS.get(current['resolution'], current['resolution'])})")
    elif current["state"] == "acknowledged":
        what = f"{current['acknowledged_by']} acknowledged it at {local_time(current['acknowledged_at'])}"
    else:
        return error_answer(409, str(exc), incident=current)
    return error_answer(409, f"Incident {incident_id} was not {doing}: {what}.", incident=current)


async def acknowledge(request: web.Request):
    incident_id = _incident_id(request)
    try:
        incident = await request.app[GATEWAY].acknowledge(incident_id, request[SESSION].name)
    except ValueError as exc:
        return _conflict(request, incident_id, exc, "acknowledged by you")
    return json_answer(incident)


async def resolve(request: web.Request):
    incident_id = _incident_id(request)
    fields = await read_fields(request)
    reason = fields.get("reason")
    note = fields.get("note", "") or ""
    if reason not in vocabulary.RESOLUTIONS:
        return error_answer(400, f"reason must be one of {', '.join(vocabulary.RESOLUTIONS)}")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        return error_answer(400, f"note must be text of at most {MAX_NOTE} characters")
    try:
        incident = await request.app[GATEWAY].resolve(incident_id, request[SESSION].name, reason, note)
    except ValueError as exc:
        return _conflict(request, incident_id, exc, "resolved by you")
    return json_answer(incident)


# ---- devices and workers ----------------------------------------------------

async def devices(request: web.Request):
    return json_answer(request.app[GATEWAY].devices())


async def workers(request: web.Request):
    return json_answer(request.app[GATEWAY].workers())


async def add_worker(request: web.Request):
    _admin(request)
    fields = await read_fields(request)
    try:
        worker = await request.app[GATEWAY].add_worker(fields.get("name"), fields.get("phone"), fields.get("note"),
                                                       fields.get("device") or None, request[SESSION].name)
    except ValueError as exc:
        return error_answer(400, str(exc))
    return json_answer(worker, status=201)


async def update_worker(request: web.Request):
    _admin(request)
    fields = await read_fields(request)
    try:
        worker_id = int(request.match_info["id"])
        changes = {k: fields[k] for k in ("name", "phone", "note") if k in fields}
        worker = await request.app[GATEWAY].update_worker(worker_id, request[SESSION].name, **changes)
    except ValueError as exc:
        return error_answer(400, str(exc))
    return json_answer(worker)


async def assign_device(request: web.Request):
    """{"worker": id} or {"worker": null}; enrolls a device that was not registered."""
    _admin(request)
    fields = await read_fields(request)
    worker = fields.get("worker")
    if worker is not None and not (isinstance(worker, int) or (isinstance(worker, str) and worker.isdigit())):
        return error_answer(400, f"worker must be a worker's id or null, got {worker!r}")
    try:
        device = await request.app[GATEWAY].assign_device(request.match_info["device"],
                                                          None if worker is None else int(worker),
                                                          request[SESSION].name)
    except ValueError as exc:
        return error_answer(400, str(exc))
    return json_answer(device)


# ---- live -------------------------------------------------------------------

def _snapshot(request: web.Request) -> dict:
    gateway, session = request.app[GATEWAY], request[SESSION]
    return {"type": "snapshot", "incidents": gateway.open_incidents(),
            "recent": gateway.incidents(limit=RECENT, state="resolved"),
            "operator": session.name, "role": session.role, "vocabulary": vocabulary.for_the_page()}


async def live(request: web.Request):
    """Snapshot first, then every change; the page never polls."""
    ws = web.WebSocketResponse(heartbeat=10)
    await ws.prepare(request)
    gateway, session = request.app[GATEWAY], request[SESSION]
    feed = gateway.subscribe_live()
    request.app[SOCKETS].add(ws)
    session.live_pages += 1
    session.sockets.add(ws)
    try:
        await ws.send_json(_snapshot(request), dumps=lambda d: json.dumps(d, default=str))
        forward = asyncio.ensure_future(_forward(feed, ws))
        async for msg in ws:  # the page sends nothing; this notices it closing
            if msg.type == WSMsgType.ERROR:
                break
        forward.cancel()
    finally:
        gateway.unsubscribe_live(feed)
        session.live_pages -= 1
        session.sockets.discard(ws)
        session.last_seen = time.time()
    return ws


async def _forward(feed: asyncio.Queue, ws: web.WebSocketResponse):
    try:
        while not ws.closed:
            try:
                item = await asyncio.wait_for(feed.get(), LINK_TICK_S)
            except TimeoutError:
                # A quiet night sends this, so the page can tell quiet from cut off.
                item = {"type": "tick"}
            await ws.send_str(json.dumps(item, default=str))
    except (ConnectionError, RuntimeError) as exc:
        # A page that stops receiving must not go on showing "live": closing
        # makes it reconnect and take a fresh snapshot.
        log.warning("dashboard: live feed to a page failed (%s); closing it so the page reconnects", exc)
        await ws.close()


# ---- operations -------------------------------------------------------------

async def healthz(request: web.Request):
    health = request.app[GATEWAY].health()
    return json_answer(health, status=200 if health.get("ok") else 503)


async def metrics(request: web.Request):
    return web.Response(body=prometheus.render(request.app[METRICS]), content_type="text/plain", charset="utf-8")


async def _close_pages(app: web.Application):
    # At shutdown, not cleanup: an open WebSocket would hold the server's stop
    # until its timeout.
    for ws in list(app[SOCKETS]):
        await ws.close(message=b"server shutting down")


async def _password_thread(app: web.Application):
    """The one thread that checks passwords (slow on purpose), for the app's lifetime."""
    app[HASHER] = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lonewatch-passwords")
    yield
    app[HASHER].shutdown(wait=False, cancel_futures=True)


def make_app(gateway: DeskGateway, operators: dict[str, str], *, sessions: Sessions | None = None) -> web.Application:
    """`operators` maps the TOML config's operator names to password hashes
    (gateway.accounts); users in the database come first."""
    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    app[GATEWAY] = gateway
    app[OPERATORS] = dict(operators)
    app[SESSIONS] = sessions or Sessions()
    app[THROTTLE] = Throttle()
    app[PENDING] = []
    app[SOCKETS] = weakref.WeakSet()
    app[METRICS] = prometheus.registry_for(gateway)
    app[NAV] = []
    app.cleanup_ctx.append(_password_thread)
    app.on_shutdown.append(_close_pages)
    app.add_routes([
        web.get("/login", login_page),
        web.post("/login", login),
        web.post("/logout", logout),
        *(web.get(path, page) for path in PAGES),
        web.get("/incident/{id}", incident_page),
        web.get("/api/me", who),
        web.get("/api/nav", menu),
        web.get("/api/vocabulary", words),
        web.get("/api/incidents", incidents),
        web.get("/api/incidents.csv", incidents_csv),
        web.get("/api/incidents/{id}", incident_detail),
        web.post("/api/incidents/{id}/ack", acknowledge),
        web.post("/api/incidents/{id}/resolve", resolve),
        web.get("/api/devices", devices),
        web.post("/api/devices/{device}/assign", assign_device),
        web.get("/api/workers", workers),
        web.post("/api/workers", add_worker),
        web.post("/api/workers/{id}", update_worker),
        *lone_work.ROUTES,
        web.get("/ws", live),
        web.get("/healthz", healthz),
        web.get("/metrics", metrics),
        web.static("/static", STATIC),
    ])
    return app

