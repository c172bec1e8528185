"""What the desk's handlers share: the app's keys, JSON answers and errors,
reading a request's fields and numbers, and cells a spreadsheet will not run
as formulas. dashboard.app and dashboard.sessions both build on it."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from aiohttp import web

from dashboard.auth import Session
from dashboard.gateway_api import DeskGateway

STATIC = Path(__file__).parent / "static"
GATEWAY = web.AppKey("gateway", DeskGateway)
SESSION = web.RequestKey("session", Session)


def json_answer(data, status=200, headers=None):
    return web.json_response(data, status=status, headers=headers, dumps=lambda d: json.dumps(d, default=str))


def error_answer(status: int, message: str, **extra):
    return json_answer({"error": message, **extra}, status=status)


def query_number(request: web.Request, key: str, default: int, lo: int, hi: int) -> int:
    text = request.query.get(key, str(default))
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise ValueError(f"{key} must be a whole number from {lo} to {hi}, got {text!r}")
    return int(text)


async def read_fields(request: web.Request) -> dict:
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text=json.dumps({"error": "body is not JSON"}),
                                     content_type="application/json") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}),
                                     content_type="application/json")
        return data
    return dict(await request.post())


def local_time(t) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds") if t else ""


def csv_cell(value) -> str:
    """A spreadsheet must not run what an operator or a device wrote as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "@", "\t", "\r") or (text[:1] in "+-" and not re.fullmatch(r"[+-][0-9 ().-]*", text)):
        return "'" + text
    return text
