"""The lonewatch/v1 device-gateway contract, as executable validators.

This module is the one machine-readable definition of the protocol
(docs/protocol.md explains it for people). The gateway validates every
incoming message here; the firmware encoder tests and the example files in
docs/protocol/examples/ are checked against it too, so the three cannot drift.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from contract.vocabulary import ALARM_TYPES, MAN_DOWN_CAUSES

VERSION = 1
TOPIC_ROOT = "lonewatch/v1"
# A device has about 100 KB of heap; 2 KiB bounds what either side must buffer.
MAX_PAYLOAD_BYTES = 2048

# \Z, not $: $ also matches before a trailing newline, which would let
# "dev-001\n" pass as a device name.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}\Z")
ALARM_ID_RE = re.compile(r"^([a-z0-9][a-z0-9_-]{0,31}):([0-9]{1,10}):([0-9]{1,10})\Z")
# Objects and arrays nested deeper than this are refused before anything
# looks at them: no valid message nests beyond 2 (a location in an alarm,
# a setting in a config command).
MAX_DEPTH = 4

UPLINK_KINDS = ("alarm", "event", "heartbeat", "status")
DOWNLINK_KINDS = ("cmd",)
KINDS = UPLINK_KINDS + DOWNLINK_KINDS

# Delivery contract per topic kind: (qos, retain).
DELIVERY = {
    "alarm": (1, False),
    "event": (1, False),
    "heartbeat": (0, False),
    "status": (1, True),
    "cmd": (1, False),
}

EVENT_TYPES = (
    "pre_alarm_started",
    "pre_alarm_cancelled",
    "check_in",
    "session_start",
    "session_end",
    "session_extend",
    "not_worn",
    "worn",
)
# Location is shared when there is an alarm or a session changes, never all day.
LOCATION_EVENT_TYPES = ("check_in", "session_start", "session_end", "session_extend")
STATUS_STATES = ("online", "offline")
COMMANDS = ("delivered", "help_coming", "resolved", "ping", "config", "session_due", "session", "session_end")
COMMANDS_WITH_REF = ("delivered", "help_coming", "resolved")

# Reject reasons, counted by the gateway and named in its logs and metrics.
REASONS = (
    "bad_topic",
    "too_large",
    "bad_encoding",
    "bad_json",
    "too_deep",
    "unsupported_version",
    "schema",
    "device_mismatch",
)


class Invalid(Exception):
    """A message that breaks the contract. `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str):
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class Message:
    site: str
    device: str
    kind: str
    body: dict
    # Fields the gateway removed rather than rejecting the message for (privacy).
    dropped: list[str] = field(default_factory=list)

    @property
    def qos(self) -> int:
        return DELIVERY[self.kind][0]


def parse_mqtt_url(url: str) -> tuple[str, int]:
    """`mqtt://host:port` or `mqtts://host:port` (MQTT over TLS) -> (host, port);
    the port defaults to 1883 and 8883. A ValueError that says what is wrong otherwise."""
    if not isinstance(url, str):
        raise ValueError(f"broker URL must be a string like mqtt://HOST:PORT, got {url!r}")
    parts = urlsplit(url)
    if parts.username or parts.password:
        # A password in the URL ends up in logs and error messages.
        raise ValueError("broker URL must not hold credentials; give user and password separately")
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"broker URL must look like mqtt://HOST:PORT or mqtts://HOST:PORT, got {url!r}")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise ValueError("broker URL has a bad port") from None
    return parts.hostname, port


def topic(site: str, device: str, kind: str) -> str:
    return f"{TOPIC_ROOT}/{site}/{device}/{kind}"


def gateway_status_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/_gw/{gateway_id}/status"


def parse_topic(topic_name: str) -> tuple[str, str, str]:
    parts = topic_name.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise Invalid("bad_topic", f"expected {TOPIC_ROOT}/SITE/DEVICE/KIND, got {topic_name!r}")
    _, _, site, device, kind = parts
    if not NAME_RE.match(site):
        raise Invalid("bad_topic", f"site {site!r} must match {NAME_RE.pattern}")
    if not NAME_RE.match(device):
        raise Invalid("bad_topic", f"device {device!r} must match {NAME_RE.pattern}")
    if kind not in KINDS:
        raise Invalid("bad_topic", f"kind {kind!r} is not one of {', '.join(KINDS)}")
    return site, device, kind


# ---- field checks ---------------------------------------------------------
# Each check returns None when the value is acceptable, else what is wrong.

def _int(lo: int | None = None, hi: int | None = None):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int):
            return "must be an integer"
        if lo is not None and v < lo:
            return f"must be >= {lo}"
        if hi is not None and v > hi:
            return f"must be <= {hi}"
        return None
    return check


def _number(lo: float, hi: float):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return "must be a finite number"
        if v < lo:
            return f"must be >= {lo}"
        if v > hi:
            return f"must be <= {hi}"
        return None
    return check


def _version(v):
    # Not `v == 1`: true and 1.0 are equal to 1 in Python but are not the integer 1.
    return None if type(v) is int and v == VERSION else f"must be the integer {VERSION}"


def _str(max_len: int = 64):
    def check(v):
        if not isinstance(v, str) or not v:
            return "must be a non-empty string"
        if len(v) > max_len:
            return f"must be at most {max_len} characters"
        return None
    return check


def _one_of(options):
    def check(v):
        return None if v in options else f"must be one of {', '.join(map(str, options))}"
    return check


def _bool(v):
    return None if isinstance(v, bool) else "must be true or false"


def _name(v):
    return None if isinstance(v, str) and NAME_RE.match(v) else f"must match {NAME_RE.pattern}"


def _location(v):
    if not isinstance(v, dict) or not v:
        return "must be a non-empty object"
    checks = {"zone": _str(64), "ap": _str(17), "rssi": _int(-127, 0)}
    for key, value in v.items():
        if key not in checks:
            return f"has unknown field {key!r} (allowed: zone, ap, rssi)"
        problem = checks[key](value)
        if problem:
            return f"field {key!r} {problem}"
    return None


def _object(v):
    return None if isinstance(v, dict) else "must be an object"


# Every number has an upper bound: without one a valid-looking 2**63 reaches
# SQLite, whose integers are 64-bit, and fails there instead of here.
UPTIME = _int(0, 2**53)
# Wall time from NTP, unix seconds; anything before 2020 means "not synced",
# anything from 2100 on is a broken clock.
WALL_TIME = _number(1_577_836_800, 4_102_444_800)

# kind -> field -> (required, check). Unknown fields are ignored (forward
# compatible within v1) and never stored.
_COMMON = {
    "v": (True, _version),
    "device": (True, _name),
}
_OUTBOX = {
    "id": (True, _str(64)),
    "type": (True, None),  # set per kind below
    "uptime_ms": (True, UPTIME),
    "sent_uptime_ms": (True, UPTIME),
    "time": (False, WALL_TIME),
    "battery_pct": (False, _int(0, 100)),
    "location": (False, _location),
}
FIELDS: dict[str, dict] = {
    "alarm": {
        **_COMMON, **_OUTBOX,
        "type": (True, _one_of(ALARM_TYPES)),
        "cause": (False, _str(32)),
    },
    "event": {
        **_COMMON, **_OUTBOX,
        "type": (True, _one_of(EVENT_TYPES)),
        "cause": (False, _one_of(MAN_DOWN_CAUSES)),
        "countdown_s": (False, _int(1, 600)),
        "duration_s": (False, _int(60, 7 * 24 * 3600)),
    },
    "heartbeat": {
        **_COMMON,
        "uptime_ms": (True, UPTIME),
        "battery_pct": (True, _int(0, 100)),
        "battery_mv": (False, _int(0, 10000)),
        "rssi": (False, _int(-127, 0)),
        "fw": (True, _str(32)),
        "time": (False, WALL_TIME),
        "outbox": (False, _int(0, 1_000_000)),
        "worn": (False, _bool),
    },
    "status": {
        **_COMMON,
        "state": (True, _one_of(STATUS_STATES)),
        "fw": (False, _str(32)),
        "uptime_ms": (False, UPTIME),
    },
    "cmd": {
        "v": (True, _version),
        "id": (True, _str(64)),
        "cmd": (True, _one_of(COMMANDS)),
        "ref": (False, _str(64)),
        "by": (False, _str(64)),
        "time": (False, WALL_TIME),
        "due_in_s": (False, _int(0, 30 * 24 * 3600)),
        "config": (False, _object),
    },
}


def _check_fields(kind: str, body: dict) -> dict:
    spec = FIELDS[kind]
    clean = {}
    for name, (required, check) in spec.items():
        if name not in body:
            if required:
                raise Invalid("schema", f"{kind} is missing required field {name!r}")
            continue
        value = body[name]
        problem = check(value) if check else None
        if problem:
            raise Invalid("schema", f"{kind} field {name!r} {problem} (got {json.dumps(value)[:40]})")
        clean[name] = value
    return clean


def _check_rules(kind: str, body: dict, dropped: list[str]) -> None:
    """Rules that relate fields to each other."""
    if kind in ("alarm", "event"):
        if body["sent_uptime_ms"] < body["uptime_ms"]:
            raise Invalid("schema", f"{kind} sent_uptime_ms is earlier than uptime_ms")
        m = ALARM_ID_RE.match(body["id"])
        if not m or m.group(1) != body["device"]:
            raise Invalid("schema", f"{kind} id {body['id']!r} must be DEVICE:BOOT:SEQ for device {body['device']!r}")
    if kind == "alarm":
        cause = body.get("cause")
        if body["type"] == "man_down" and cause not in MAN_DOWN_CAUSES:
            raise Invalid("schema", f"man_down alarm needs cause, one of {', '.join(MAN_DOWN_CAUSES)}")
        if body["type"] == "panic" and cause is not None:
            raise Invalid("schema", "panic alarm takes no cause")
        if cause is not None and not NAME_RE.match(cause):
            raise Invalid("schema", f"alarm cause {cause!r} must match {NAME_RE.pattern}")
    if kind == "event":
        etype = body["type"]
        if etype.startswith("pre_alarm") and "cause" not in body:
            raise Invalid("schema", f"{etype} event needs cause")
        if etype == "pre_alarm_started" and "countdown_s" not in body:
            raise Invalid("schema", "pre_alarm_started event needs countdown_s")
        if "location" in body and etype not in LOCATION_EVENT_TYPES:
            del body["location"]
            dropped.append("location")
    if kind == "cmd" and body["cmd"] in COMMANDS_WITH_REF and "ref" not in body:
        raise Invalid("schema", f"cmd {body['cmd']} needs ref (the alarm id)")
    if kind == "cmd" and body["cmd"] in ("session_due", "session") and "due_in_s" not in body:
        raise Invalid("schema", f"cmd {body['cmd']} needs due_in_s")
    if kind == "cmd" and body["cmd"] == "config" and "config" not in body:
        raise Invalid("schema", "cmd config needs config")


def _decode(payload: bytes):
    """The payload as a JSON value, or Invalid. Strict about what the store
    and the desk will have to hold: UTF-8 only, Unicode scalar values only,
    bounded nesting."""
    try:
        text = payload.decode("utf-8")  # strict: also refuses surrogates as bytes (ED A0 80)
    except UnicodeDecodeError as exc:
        raise Invalid("bad_encoding", f"payload is not UTF-8 (byte {exc.start}: {exc.reason})") from None
    if text.startswith("\ufeff"):
        raise Invalid("bad_encoding", "payload starts with a byte order mark; UTF-8 is sent without one")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise Invalid("too_deep", f"objects and arrays nested deeper than {MAX_DEPTH}") from None
    except ValueError as exc:
        raise Invalid("bad_json", f"payload is not JSON ({exc})") from None
    # Both walks are skipped for ordinary messages: without enough brackets
    # nothing can nest too deep, and a lone surrogate can only come from a
    # \u escape, since the text itself was valid UTF-8.
    if text.count("{") + text.count("[") > MAX_DEPTH or "\\u" in text:
        _check_tree(value, 0)
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _check_tree(value, depth: int) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid("bad_encoding", "a string holds an unpaired surrogate (not a Unicode scalar value)") from None
        return
    if isinstance(value, (dict, list)):
        if depth >= MAX_DEPTH:
            raise Invalid("too_deep", f"objects and arrays nested deeper than {MAX_DEPTH}")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_tree(key, depth + 1)
                _check_tree(item, depth + 1)
        else:
            for item in value:
                _check_tree(item, depth + 1)


def parse_message(topic_name: str, payload: bytes | str) -> Message:
    """Validate one MQTT message; return it normalised or raise Invalid."""
    site, device, kind = parse_topic(topic_name)
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Invalid("too_large", f"{len(payload)} bytes, the limit is {MAX_PAYLOAD_BYTES}")
    raw = _decode(payload)
    if not isinstance(raw, dict):
        raise Invalid("bad_json", "payload must be a JSON object")
    if "v" in raw and _version(raw["v"]):
        raise Invalid("unsupported_version", f"v={json.dumps(raw['v'])[:20]}, this gateway speaks v{VERSION}")
    body = _check_fields(kind, raw)
    dropped: list[str] = []
    if "location" in raw and "location" not in FIELDS[kind]:
        dropped.append("location")
    if kind != "cmd" and body["device"] != device:
        raise Invalid("device_mismatch", f"payload device {body['device']!r} does not match topic device {device!r}")
    _check_rules(kind, body, dropped)
    return Message(site=site, device=device, kind=kind, body=body, dropped=dropped)


def encode(body: dict) -> bytes:
    """Compact JSON, as both sides put it on the wire."""
    return json.dumps(body, separators=(",", ":")).encode()
