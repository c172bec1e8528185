# Downlink commands as the device reads them. Pure logic: runs under
# MicroPython and CPython. Imported only while a command is read (App.on_command)
# and forgotten after: its code need not occupy the heap in between.
import json

from protocol import MAX_PAYLOAD, VERSION
from ticks import const

# What a command may be. Anything else is refused with a reason, never an
# exception: the link task that reads commands must outlive any payload.
COMMANDS = ("delivered", "help_coming", "resolved", "ping", "config", "session_due")
COMMANDS_WITH_REF = ("delivered", "help_coming", "resolved")
# A command object holding `config` holding `mandown` or `location` is 3
# deep; refusing deeper payloads before decoding keeps the decoder's stack
# (CPython recursion, MicroPython heap) small whatever arrives.
_MAX_DEPTH = const(4)
_MAX_ID = const(64)
_MAX_DUE_S = const(7 * 24 * 3600)  # the longest session


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
        if value - value != 0:  # NaN or an infinity
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
    return isinstance(value, str) and 1 <= len(value) <= _MAX_ID


def parse(payload):
    """Decode and check a downlink command: (body, None) when the device can
    act on it, else (None, reason) for the console."""
    if len(payload) > MAX_PAYLOAD:
        return None, "%d bytes, the limit is %d" % (len(payload), MAX_PAYLOAD)
    data = bytes(payload)
    try:
        text = data.decode()
    except UnicodeError:
        return None, "not UTF-8"
    if _depth(data) > _MAX_DEPTH:
        return None, "nested deeper than %d" % _MAX_DEPTH
    try:
        body = json.loads(text)
    except ValueError:
        return None, "not JSON"
    if not isinstance(body, dict):
        return None, "not a JSON object"
    problem = _bad_value(body) or _bad_field(body)
    if problem:
        return None, problem
    return body, None


def _bad_field(body):
    if not _is_int(body.get("v"), VERSION, VERSION):
        return "v is not the integer %d" % VERSION
    if not _is_id(body.get("id")):
        return "id is not a string of 1-%d characters" % _MAX_ID
    name = body.get("cmd")
    if name not in COMMANDS:
        return "unknown command"
    if name in COMMANDS_WITH_REF and not _is_id(body.get("ref")):
        return "%s needs ref, an alarm id of 1-%d characters" % (name, _MAX_ID)
    if name == "session_due" and not _is_int(body.get("due_in_s"), 0, _MAX_DUE_S):
        return "session_due needs due_in_s, an integer 0-%d" % _MAX_DUE_S
    if name == "config" and not isinstance(body.get("config"), dict):
        return "config needs config, an object"
    return None
