# Downlink commands as the device reads them and acts on them. parse() is
# pure logic: runs under MicroPython and CPython. Imported only while a
# command is read and carried out (App.on_command) and forgotten after: its
# code need not occupy the heap in between.
import json

from protocol import MAX_PAYLOAD, VERSION
from ticks import const

# What a command may be. Anything else is refused with a reason, never an
# exception: the link task that reads commands must outlive any payload.
# Little code: it is loaded per command into a heap fragmented by then.
COMMANDS = ("delivered", "help_coming", "resolved", "ping", "config", "session_due", "session", "session_end")
_WITH_REF = const(("delivered", "help_coming", "resolved"))
_WITH_DUE = const(("session_due", "session"))
# A command object holding `config` holding `mandown` or `location` is 3
# deep; refusing deeper payloads before decoding keeps the decoder's stack
# (CPython recursion, MicroPython heap) small whatever arrives.
_MAX_DEPTH = const(4)
_MAX_ID = const(64)
_MAX_DUE_S = const(7 * 24 * 3600)  # the longest session


def _depth(data):
    """Deepest nesting of arrays/objects in JSON bytes, strings skipped."""
    depth = deepest = 0
    quoted = escaped = False
    for b in data:
        if escaped:
            escaped = False
        elif quoted:
            escaped = b == 0x5C  # backslash
            quoted = b != 0x22
        elif b == 0x22:
            quoted = True
        elif b in b"[{":
            depth += 1
            deepest = max(depth, deepest)
        elif b in b"]}":
            depth -= 1
    return deepest


def _unfit(value):
    """True if a decoded value holds what the device cannot send on in its
    alarms: a string that is not Unicode scalar values (MicroPython's JSON
    passes surrogates through) or a number that is not finite. Strings are
    looked at as bytes: taking a character out of a str interns it in
    MicroPython's name table for good, a slot for every new one a command
    brings."""
    if isinstance(value, str):
        try:
            data = value.encode()
        except UnicodeError:  # CPython does not encode a surrogate
            return True
        # MicroPython holds one in its 3-byte form: ED A0..BF xx.
        i = data.find(b"\xed")
        while i >= 0 and data[i + 1:i + 2] < b"\xa0":
            i = data.find(b"\xed", i + 1)
        return i >= 0
    if isinstance(value, float):
        return value - value != 0  # NaN or an infinity
    if isinstance(value, (dict, list)):
        for k in value:
            if _unfit(k) or isinstance(value, dict) and _unfit(value[k]):
                return True
    return False


def _id(value):
    return type(value) is str and 0 < len(value) <= _MAX_ID


def parse(payload):
    """Decode and check a downlink command: (body, None) when the device can
    act on it, else (None, reason) for the console."""
    if len(payload) > MAX_PAYLOAD:
        return None, "over %d bytes" % MAX_PAYLOAD
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
    if type(body) is not dict:
        return None, "not a JSON object"
    if _unfit(body):
        return None, "a surrogate or a number not finite"
    get = body.get
    name = get("cmd")
    due = get("due_in_s")
    for field, ok in (
            ("v", type(get("v")) is int and get("v") == VERSION),
            ("id", _id(get("id"))),
            ("cmd", name in COMMANDS),
            ("ref", name not in _WITH_REF or _id(get("ref"))),
            ("due_in_s", name not in _WITH_DUE or type(due) is int and 0 <= due <= _MAX_DUE_S),
            ("config", name != "config" or type(get("config")) is dict)):
        if not ok:
            return None, "bad " + field
    return body, None


def run(app, payload):
    """Carry out a command on the running wearable (an app.App), or refuse
    it with a log line. Returns the changes of a `config` command, which the
    app applies once this module is forgotten (config.py is loaded then)."""
    cmd, problem = parse(payload)
    if cmd is None:
        print("cmd: refused (%s): %r" % (problem, bytes(payload[:60])))
        return None
    from time import ticks_ms
    name = cmd["cmd"]
    ref = cmd.get("ref")
    print("cmd: %s %s" % (name, ref or ""))
    if name == "delivered" and app.box.delivered(ref):
        # Stored at the gateway: only now may the alarm leave the flash.
        print("outbox: alarm %s confirmed, removed" % ref)
    if name in _WITH_REF:
        app.carry_out(app.states.command(name, ref))
    elif name == "ping":
        app.send_heartbeat()
        app.player.play(name)
    elif name in _WITH_DUE or name == "session_end":
        app.carry_out(app.session.command(name, cmd.get("due_in_s"), ticks_ms()))
    elif name == "config":
        return cmd["config"]
    return None
