# lonewatch/v1 encoding on the device. Pure logic: runs under MicroPython
# and CPython. The contract itself lives in docs/protocol.md and is enforced
# by the gateway's validators; tests check this encoder against both.
import json

VERSION = 1
ROOT = "lonewatch/v1"
MAX_PAYLOAD = 2048

QOS = {"alarm": 1, "event": 1, "heartbeat": 0, "status": 1, "cmd": 1}
RETAIN = {"status": True}

MAN_DOWN_CAUSES = ("fall", "no_motion", "tilt")
LOCATION_EVENTS = ("check_in", "session_start", "session_end")
# Before this (2020-01-01) the clock has not been set by NTP.
SYNCED_AFTER = 1577836800


def topic(site, device, kind):
    return ROOT + "/" + site + "/" + device + "/" + kind


def record_id(device, boot, seq):
    # Unique across reboots because the boot counter is persisted.
    return "%s:%d:%d" % (device, boot, seq)


def _stamp(body, uptime_ms, wall_time, battery_pct):
    body["uptime_ms"] = uptime_ms
    if wall_time is not None and wall_time >= SYNCED_AFTER:
        body["time"] = wall_time
    if battery_pct is not None:
        body["battery_pct"] = battery_pct
    return body


def alarm(device, rid, atype, uptime_ms, cause=None, wall_time=None,
          battery_pct=None, location=None):
    body = {"v": VERSION, "device": device, "id": rid, "type": atype}
    if cause is not None:
        body["cause"] = cause
    if location:
        body["location"] = location
    return _stamp(body, uptime_ms, wall_time, battery_pct)


def event(device, rid, etype, uptime_ms, cause=None, countdown_s=None,
          duration_s=None, wall_time=None, battery_pct=None, location=None):
    body = {"v": VERSION, "device": device, "id": rid, "type": etype}
    if cause is not None:
        body["cause"] = cause
    if countdown_s is not None:
        body["countdown_s"] = countdown_s
    if duration_s is not None:
        body["duration_s"] = duration_s
    if location and etype in LOCATION_EVENTS:
        body["location"] = location
    return _stamp(body, uptime_ms, wall_time, battery_pct)


def heartbeat(device, uptime_ms, battery_pct, fw, battery_mv=None, rssi=None,
              wall_time=None, outbox=None, worn=None):
    body = {"v": VERSION, "device": device, "fw": fw}
    if battery_mv is not None:
        body["battery_mv"] = battery_mv
    if rssi is not None:
        body["rssi"] = rssi
    if outbox is not None:
        body["outbox"] = outbox
    if worn is not None:
        body["worn"] = worn
    return _stamp(body, uptime_ms, wall_time, battery_pct)


def status(device, state, fw=None, uptime_ms=None):
    body = {"v": VERSION, "device": device, "state": state}
    if fw is not None:
        body["fw"] = fw
    if uptime_ms is not None:
        body["uptime_ms"] = uptime_ms
    return body


def encode(body):
    return json.dumps(body).encode()


def encode_for_send(encoded, sent_uptime_ms):
    """The bytes to publish for a record the outbox holds as `encoded` (a
    JSON object from json.dumps). Records wait in the outbox; the send time
    is stamped as they leave so the gateway can date the event by the
    difference. It is appended as the last member, so the record is never
    decoded again on the device."""
    return (encoded[:-1] + ', "sent_uptime_ms": %d}' % sent_uptime_ms).encode()


def sent_uptime(rid, uptime_ms, now_ms, boot):
    """The sent_uptime_ms for record `rid` raised at `uptime_ms`, leaving the
    outbox now. A record from an earlier boot was timed on a clock that
    restarted at 0: how long it waited is unknown, so it is sent as if it had
    not waited (the gateway then dates it on receipt, and its wall `time`,
    when it has one, stays exact) rather than with a difference that means
    nothing or breaks the contract."""
    if rid.split(":")[1] != str(boot):
        return uptime_ms
    return now_ms


# What a command may be. Anything else is refused with a reason, never an
# exception: the link task that reads commands must outlive any payload.
COMMANDS = ("delivered", "help_coming", "resolved", "ping", "config", "session_due")
COMMANDS_WITH_REF = ("delivered", "help_coming", "resolved")
# A command object holding `config` holding `mandown` or `location` is 3
# deep; refusing deeper payloads before decoding keeps the decoder's stack
# (CPython recursion, MicroPython heap) small whatever arrives.
MAX_DEPTH = 4
MAX_ID = 64
MAX_DUE_S = 7 * 24 * 3600  # the longest session
_INF = float("inf")


def _depth(data):
    """Deepest nesting of arrays/objects in JSON bytes, strings skipped."""
    depth = deepest = 0
    in_string = escaped = False
    for b in data:
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:  # backslash
                escaped = True
            elif b == 0x22:  # quote
                in_string = False
        elif b == 0x22:
            in_string = True
        elif b == 0x5B or b == 0x7B:  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
        elif b == 0x5D or b == 0x7D:  # ] }
            depth -= 1
    return deepest


def _bad_value(value):
    """Why a decoded value cannot be used on the device, or None. Strings
    must be Unicode scalar values (MicroPython's JSON passes surrogates
    through, and the device would send them on in alarms); numbers must be
    finite."""
    if isinstance(value, str):
        for c in value:
            if 0xD800 <= ord(c) <= 0xDFFF:
                return "a string holds a surrogate (not valid Unicode)"
    elif isinstance(value, float):
        if value != value or value in (_INF, -_INF):
            return "a number is not finite"
    elif isinstance(value, dict):
        for k in value:
            problem = _bad_value(k) or _bad_value(value[k])
            if problem:
                return problem
    elif isinstance(value, list):
        for v in value:
            problem = _bad_value(v)
            if problem:
                return problem
    return None


def _is_int(value, low, high):
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_id(value):
    return isinstance(value, str) and 1 <= len(value) <= MAX_ID


def parse_cmd(payload):
    """Decode and check a downlink command: (body, None) when the device can
    act on it, else (None, reason) for the console."""
    if len(payload) > MAX_PAYLOAD:
        return None, "%d bytes, the limit is %d" % (len(payload), MAX_PAYLOAD)
    data = bytes(payload)
    try:
        text = data.decode()
    except UnicodeError:
        return None, "not UTF-8"
    if _depth(data) > MAX_DEPTH:
        return None, "nested deeper than %d" % MAX_DEPTH
    try:
        body = json.loads(text)
    except ValueError:
        return None, "not JSON"
    if not isinstance(body, dict):
        return None, "not a JSON object"
    problem = _bad_value(body)
    if problem:
        return None, problem
    if not _is_int(body.get("v"), VERSION, VERSION):
        return None, "v is not the integer %d" % VERSION
    if not _is_id(body.get("id")):
        return None, "id is not a string of 1-%d characters" % MAX_ID
    name = body.get("cmd")
    if name not in COMMANDS:
        return None, "unknown command"
    if name in COMMANDS_WITH_REF and not _is_id(body.get("ref")):
        return None, "%s needs ref, an alarm id of 1-%d characters" % (name, MAX_ID)
    if name == "session_due" and not _is_int(body.get("due_in_s"), 0, MAX_DUE_S):
        return None, "session_due needs due_in_s, an integer 0-%d" % MAX_DUE_S
    if name == "config" and not isinstance(body.get("config"), dict):
        return None, "config needs config, an object"
    return body, None
