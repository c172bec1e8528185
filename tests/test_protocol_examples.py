"""The example messages in docs/protocol/examples are the contract in action:
each one is judged by the gateway's validators exactly as the file says."""

import json

import pytest

from conftest import EXAMPLES as EXAMPLES_DIR
from conftest import example_payload
from contract import protocol

EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json"))


def test_every_message_kind_has_a_valid_example():
    kinds = {protocol.parse_topic(json.loads(p.read_text())["topic"])[2]
             for p in EXAMPLES if json.loads(p.read_text())["valid"]}
    assert kinds == set(protocol.KINDS)


def test_every_reject_reason_has_an_example():
    reasons = set()
    for path in EXAMPLES:
        example = json.loads(path.read_text())
        if not example["valid"]:
            with pytest.raises(protocol.Invalid) as err:
                protocol.parse_message(example["topic"], example_payload(example))
            reasons.add(err.value.reason)
    assert reasons == set(protocol.REASONS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_judged_as_documented(path):
    example = json.loads(path.read_text())
    assert set(example) in ({"topic", "payload", "valid", "why"}, {"topic", "payload_hex", "valid", "why"})
    assert example["why"]
    if example["valid"]:
        message = protocol.parse_message(example["topic"], example_payload(example))
        assert message.body["v"] == protocol.VERSION
    else:
        with pytest.raises(protocol.Invalid) as err:
            protocol.parse_message(example["topic"], example_payload(example))
        # The file names the reason first, so docs and code agree on why.
        assert example["why"].startswith(err.value.reason + ":"), (example["why"], str(err.value))


def test_location_on_a_heartbeat_is_dropped_not_stored():
    example = json.loads((EXAMPLES[0].parent / "heartbeat-location-dropped.json").read_text())
    message = protocol.parse_message(example["topic"], example_payload(example))
    assert "location" not in message.body
    assert message.dropped == ["location"]


def test_location_on_a_pre_alarm_event_is_dropped():
    body = {"v": 1, "device": "d1", "id": "d1:1:1", "type": "pre_alarm_started", "cause": "fall",
            "countdown_s": 20, "uptime_ms": 1, "sent_uptime_ms": 1, "location": {"zone": "lab"}}
    message = protocol.parse_message("lonewatch/v1/hq/d1/event", json.dumps(body))
    assert "location" not in message.body and message.dropped == ["location"]


def test_unknown_fields_are_ignored_and_not_kept():
    body = {"v": 1, "device": "d1", "uptime_ms": 5, "battery_pct": 50, "fw": "1", "colour": "red"}
    message = protocol.parse_message("lonewatch/v1/hq/d1/heartbeat", json.dumps(body))
    assert "colour" not in message.body
