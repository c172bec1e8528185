"""The device's encoder (firmware/protocol.py) produces exactly the valid
example messages, under CPython and under the real MicroPython VM."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from contract import protocol as contract

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "protocol" / "examples"
MICROPYTHON = Path(sys.executable).parent / "micropython"

# Rebuilds each valid uplink example through the device encoder; prints one
# JSON line per example. Runs under both interpreters.
ENCODE_SCRIPT = r"""
import json, sys
sys.path.insert(0, FIRMWARE)
import protocol as p

def build(kind, b):
    if kind == "alarm":
        return p.encode_for_send(p.encode(p.alarm(b["device"], b["id"], b["type"], b["uptime_ms"],
            cause=b.get("cause"), wall_time=b.get("time"), battery_pct=b.get("battery_pct"),
            location=b.get("location"))).decode(), b["sent_uptime_ms"])
    if kind == "event":
        return p.encode_for_send(p.encode(p.event(b["device"], b["id"], b["type"], b["uptime_ms"],
            cause=b.get("cause"), countdown_s=b.get("countdown_s"), duration_s=b.get("duration_s"),
            wall_time=b.get("time"), battery_pct=b.get("battery_pct"), location=b.get("location"))).decode(),
            b["sent_uptime_ms"])
    if kind == "heartbeat":
        return p.encode(p.heartbeat(b["device"], b["uptime_ms"], b["battery_pct"], b["fw"],
            battery_mv=b.get("battery_mv"), rssi=b.get("rssi"), wall_time=b.get("time"),
            outbox=b.get("outbox"), worn=b.get("worn")))
    if kind == "status":
        return p.encode(p.status(b["device"], b["state"], fw=b.get("fw"), uptime_ms=b.get("uptime_ms")))

for name, topic, body in json.loads(sys.stdin.read()):
    site, device, kind = topic.split("/")[2:]
    out = build(kind, body)
    print(json.dumps([name, p.topic(site, device, kind), json.loads(out), len(out)]))
"""


def uplink_examples():
    out = []
    for path in sorted(EXAMPLES.glob("*.json")):
        example = json.loads(path.read_text())
        kind = example["topic"].rsplit("/", 1)[-1]
        if example["valid"] and kind in ("alarm", "event", "heartbeat", "status") \
                and "location" not in contract.parse_message(example["topic"], json.dumps(example["payload"])).dropped:
            out.append((path.stem, example["topic"], example["payload"]))
    return out


def run_encoder(interpreter):
    script = "FIRMWARE = %r\n" % str(ROOT / "firmware") + ENCODE_SCRIPT
    result = subprocess.run([str(interpreter), "-c", script], input=json.dumps(uplink_examples()),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_encoder_reproduces_every_valid_uplink_example(interpreter):
    exe = sys.executable if interpreter == "cpython" else MICROPYTHON
    expected = {name: (topic, body) for name, topic, body in uplink_examples()}
    results = run_encoder(exe)
    assert len(results) == len(expected) >= 15
    for name, topic, body, size in results:
        assert (topic, body) == expected[name], name
        assert size <= contract.MAX_PAYLOAD_BYTES
        contract.parse_message(topic, json.dumps(body))


def test_unsynced_clock_sends_no_wall_time():
    sys.path.insert(0, str(ROOT / "firmware"))
    try:
        import protocol as device
    finally:
        sys.path.pop(0)
    body = device.alarm("d1", device.record_id("d1", 3, 9), "panic", 1000, wall_time=946684800)
    assert "time" not in body and body["id"] == "d1:3:9"
