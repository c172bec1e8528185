"""The security desk's web page: live alarms, acknowledge and resolve.

One aiohttp application over a running `gateway.service.Gateway`. The page
gets a snapshot over HTTP and every change after that over a WebSocket fed by
the gateway's live feed, so an alarm shows up without polling.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from pathlib import Path

from aiohttp import WSMsgType, web

from contract import vocabulary
from dashboard import metrics as prometheus
from dashboard.auth import Sessions
from dashboard.gateway_api import DeskGateway
from gateway.accounts import verify_password

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
COOKIE = "lonewatch_session"
MAX_NOTE = 2000

GATEWAY = web.AppKey("gateway", DeskGateway)
OPERATORS = web.AppKey("operators", dict)
SESSIONS = web.AppKey("sessions", Sessions)
SOCKETS = web.AppKey("sockets", weakref.WeakSet)
METRICS = web.AppKey("metrics", prometheus.CollectorRegistry)
OPERATOR = web.RequestKey("operator", str)


def _json(data, status=200):
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


def _error(status: int, message: str):
    return _json({"error": message}, status=status)


@web.middleware
async def require_operator(request: web.Request, handler):
    public = request.path in ("/login", "/healthz", "/metrics") or request.path.startswith("/static/")
    operator = request.app[SESSIONS].operator(request.cookies.get(COOKIE))
    if operator is None and not public:
        if request.path.startswith("/api/") or request.path == "/ws":
            return _error(401, "log in first")
        raise web.HTTPFound("/login")
    request[OPERATOR] = operator
    return await handler(request)


async def login_page(request: web.Request):
    return web.FileResponse(STATIC / "login.html")


async def login(request: web.Request):
    form = await request.post()
    name = str(form.get("name", "")).strip()
    password = str(form.get("password", ""))
    stored = request.app[OPERATORS].get(name)
    if stored is None or not verify_password(password, stored):
        log.warning("dashboard: failed login for operator %r from %s", name[:64], request.remote)
        raise web.HTTPFound("/login?failed=1")
    response = web.HTTPFound("/")
    response.set_cookie(COOKIE, request.app[SESSIONS].issue(name), httponly=True, samesite="Strict")
    log.info("dashboard: operator %s logged in", name)
    raise response


async def logout(request: web.Request):
    response = web.HTTPFound("/login")
    response.del_cookie(COOKIE)
    raise response


async def index(request: web.Request):
    return web.FileResponse(STATIC / "index.html")


async def incidents(request: web.Request):
    return _json(request.app[GATEWAY].incidents())


def _incident_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text="incident id must be a number") from None


async def _fields(request: web.Request) -> dict:
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="body is not JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="body must be a JSON object")
        return data
    return dict(await request.post())


async def acknowledge(request: web.Request):
    incident_id = _incident_id(request)
    try:
        incident = await request.app[GATEWAY].acknowledge(incident_id, request[OPERATOR])
    except ValueError as exc:
        return _error(409, str(exc))
    return _json(incident)


async def resolve(request: web.Request):
    incident_id = _incident_id(request)
    fields = await _fields(request)
    reason = fields.get("reason")
    note = fields.get("note", "") or ""
    if reason not in vocabulary.RESOLUTIONS:
        return _error(400, f"reason must be one of {', '.join(vocabulary.RESOLUTIONS)}")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        return _error(400, f"note must be text of at most {MAX_NOTE} characters")
    try:
        incident = await request.app[GATEWAY].resolve(incident_id, request[OPERATOR], reason, note)
    except ValueError as exc:
        return _error(409, str(exc))
    return _json(incident)


async def live(request: web.Request):
    """Snapshot first, then every change; the page never polls."""
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    gateway = request.app[GATEWAY]
    feed = gateway.subscribe_live()
    request.app[SOCKETS].add(ws)
    try:
        await ws.send_json({"type": "snapshot", "incidents": gateway.incidents(), "operator": request[OPERATOR],
                            "vocabulary": vocabulary.for_the_page()}, dumps=lambda d: json.dumps(d, default=str))
        forward = asyncio.ensure_future(_forward(feed, ws))
        async for msg in ws:  # the page sends nothing; this notices it closing
            if msg.type == WSMsgType.ERROR:
                break
        forward.cancel()
    finally:
        gateway.unsubscribe_live(feed)
    return ws


async def _forward(feed: asyncio.Queue, ws: web.WebSocketResponse):
    try:
        while not ws.closed:
            item = await feed.get()
            await ws.send_str(json.dumps(item, default=str))
    except (ConnectionError, RuntimeError) as exc:
        # A page that stops receiving must not go on showing "live": closing
        # makes it reconnect and take a fresh snapshot.
        log.warning("dashboard: live feed to a page failed (%s); closing it so the page reconnects", exc)
        await ws.close()


async def healthz(request: web.Request):
    health = request.app[GATEWAY].health()
    return _json(health, status=200 if health.get("ok") else 503)


async def metrics(request: web.Request):
    return web.Response(body=prometheus.render(request.app[METRICS]), content_type="text/plain", charset="utf-8")


async def _close_sockets(app: web.Application):
    for ws in list(app[SOCKETS]):
        await ws.close(message=b"server shutting down")


def make_app(gateway: DeskGateway, operators: dict[str, str]) -> web.Application:
    """`operators` maps operator name to a PBKDF2 hash (gateway.accounts)."""
    app = web.Application(middlewares=[require_operator], client_max_size=64 * 1024)
    app[GATEWAY] = gateway
    app[OPERATORS] = dict(operators)
    app[SESSIONS] = Sessions()
    app[SOCKETS] = weakref.WeakSet()
    app[METRICS] = prometheus.registry_for(gateway)
    app.on_shutdown.append(_close_sockets)
    app.add_routes([
        web.get("/login", login_page),
        web.post("/login", login),
        web.post("/logout", logout),
        web.get("/", index),
        web.get("/api/incidents", incidents),
        web.post("/api/incidents/{id}/ack", acknowledge),
        web.post("/api/incidents/{id}/resolve", resolve),
        web.get("/ws", live),
        web.get("/healthz", healthz),
        web.get("/metrics", metrics),
        web.static("/static", STATIC),
    ])
    return app
