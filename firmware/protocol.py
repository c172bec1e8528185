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
LOCATION_EVENTS = ("check_in", "session_start", "session_end", "session_extend")
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
