"""Whatever the wearable encodes within its own limits, the gateway accepts,
and reads back as it was meant: the device's encoder (firmware/protocol.py,
as the outbox sends a record) against the contract's validator, over
generated alarms, events and heartbeats."""

from __future__ import annotations

import json
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIRMWARE
from contract import protocol as contract
from contract.vocabulary import ALARM_TYPES, MAN_DOWN_CAUSES

sys.path.insert(0, str(FIRMWARE))
import protocol as device  # noqa: E402  (the firmware's own module)

DEVICES = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,31}", fullmatch=True)
UPTIME = st.integers(0, 2**40)
WALL = st.one_of(st.none(), st.floats(1_577_836_800, 4_000_000_000))
BATTERY = st.one_of(st.none(), st.integers(0, 100))
LOCATION = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "zone": st.text(min_size=1, max_size=64), "ap": st.text(min_size=1, max_size=17), "rssi": st.integers(-127, 0)}))


def sent(body: dict, boot: int, waited_ms: int) -> bytes:
    """What leaves the outbox: the stored JSON, with the send time stamped on."""
    encoded = json.dumps(body)
    return device.encode_for_send(encoded, device.sent_uptime(body["id"], body["uptime_ms"],
                                                              body["uptime_ms"] + waited_ms, boot))


@given(DEVICES, st.integers(1, 10**6), st.integers(1, 10**6), st.sampled_from(ALARM_TYPES),
       st.sampled_from(MAN_DOWN_CAUSES), UPTIME, st.integers(0, 10**7), WALL, BATTERY, LOCATION)
@settings(max_examples=400, deadline=None)
def test_an_alarm_the_device_sends_is_accepted_as_it_was_meant(name, boot, seq, atype, cause, uptime, waited,
                                                               wall, battery, location):
    rid = device.record_id(name, boot, seq)
    cause = cause if atype == "man_down" else ("sensor_failed" if atype == "technical" else None)
    body = device.alarm(name, rid, atype, uptime, cause=cause, wall_time=wall, battery_pct=battery,
                        location=location)
    message = contract.parse_message(contract.topic("hq", name, "alarm"), sent(body, boot, waited))
    assert (message.body["id"], message.body["type"], message.body.get("cause")) == (rid, atype, cause)
    assert message.body["sent_uptime_ms"] - message.body["uptime_ms"] == waited
    assert message.body.get("location") == (location or None)
    assert message.body.get("battery_pct") == battery


@given(DEVICES, st.integers(1, 10**6), st.sampled_from(contract.EVENT_TYPES), UPTIME, st.integers(1, 600),
       st.integers(60, 7 * 24 * 3600), WALL, LOCATION)
@settings(max_examples=400, deadline=None)
def test_an_event_the_device_sends_is_accepted(name, seq, etype, uptime, countdown, duration, wall, location):
    rid = device.record_id(name, 1, seq)
    pre_alarm = etype.startswith("pre_alarm")
    body = device.event(name, rid, etype, uptime, cause="fall" if pre_alarm else None,
                        countdown_s=countdown if etype == "pre_alarm_started" else None,
                        duration_s=duration if etype == "session_start" else None, wall_time=wall, location=location)
    message = contract.parse_message(contract.topic("hq", name, "event"), sent(body, 1, 0))
    assert message.body["type"] == etype and message.dropped == []
    # The device shares a location only where the contract takes one, so the gateway never drops one.
    assert ("location" in message.body) == bool(location and etype in device.LOCATION_EVENTS)


def test_the_device_shares_a_location_only_where_the_contract_takes_one():
    assert set(device.LOCATION_EVENTS) <= set(contract.LOCATION_EVENT_TYPES)


@given(DEVICES, UPTIME, st.integers(0, 100), st.text(min_size=1, max_size=32), st.one_of(st.none(), st.integers(0, 10000)),
       st.one_of(st.none(), st.integers(-127, 0)), WALL, st.one_of(st.none(), st.integers(0, 500)),
       st.one_of(st.none(), st.booleans()))
@settings(max_examples=400, deadline=None)
def test_a_heartbeat_the_device_sends_is_accepted(name, uptime, battery, fw, mv, rssi, wall, outbox, worn):
    body = device.heartbeat(name, uptime, battery, fw, battery_mv=mv, rssi=rssi, wall_time=wall, outbox=outbox,
                            worn=worn)
    message = contract.parse_message(contract.topic("hq", name, "heartbeat"), device.encode(body))
    assert message.body["fw"] == fw and message.body["battery_pct"] == battery
