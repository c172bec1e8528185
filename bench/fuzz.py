"""`lonewatch bench fuzz`: hostile and broken messages against the running
gateway, interleaved with valid alarms.

mosquitto with the shipped delivery settings, the real `lonewatch gateway`
process, and a seeded generator of topics and payloads: random bytes,
invalid UTF-8, deep nesting, 256 KiB payloads, every field with every wrong
type, boundary numbers, markup and control characters, mutated valid
examples, retained flags, QoS 0 and 1. Every 20th message is a valid alarm
with a fresh id.

It checks what the documentation promises: the gateway does not crash and
stays healthy, its memory stays bounded, every QoS 1 message it receives is
judged as contract.protocol judges it (counted per reason in /metrics, no
internal errors), and every valid alarm is stored exactly once and answered
`delivered`. Payloads over the broker's max_packet_size (64 KiB) never reach
the gateway: mosquitto drops the connection that sends one, as
docs/mosquitto.md says, and the generator reconnects.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.gateway import start_broker, start_gateway, stop
from contract import protocol
from simulator.ports import wait_for_port

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "protocol" / "examples"
VALID_EVERY = 20
SITE = "fuzz"
DEVICES = [f"dev-{n:03d}" for n in range(20)]
WRONG_VALUES = [None, True, False, 0, -1, 1, 2**31, 2**53 + 1, 2**63, -2**63 - 1, 2**64, 1.5, -0.0, 1e308, "",
                "x" * 300, "<img src=x onerror=alert(1)>", "\u0000\u0007\u001b[31m", "\u202e", [], {}, [[[[[]]]]],
                {"zone": {"zone": {}}}, "NaN"]
KINDS = protocol.UPLINK_KINDS + ("cmd", "x")


def add_arguments(parser) -> None:
    parser.add_argument("--messages", type=int, default=100_000, help="generated messages (default 100,000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generator (default 1)")


class Generator:
    """Seeded topics and payloads; valid ones say so."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.examples = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]
        self.valid_examples = [e for e in self.examples if e["valid"] and isinstance(e["payload"], dict)]
        self.alarm_seq = 0

    def valid_alarm(self) -> tuple[str, bytes, str]:
        self.alarm_seq += 1
        device = self.rng.choice(DEVICES)
        alarm_id = f"{device}:9:{self.alarm_seq}"
        body = {"v": 1, "device": device, "id": alarm_id, "type": self.rng.choice(["panic", "technical"]),
                "uptime_ms": 1000, "sent_uptime_ms": 1000 + self.rng.randrange(100)}
        if body["type"] == "technical":
            body["cause"] = "sensor_failed"
        return protocol.topic(SITE, device, "alarm"), protocol.encode(body), alarm_id

    def topic(self) -> str:
        roll = self.rng.random()
        device = self.rng.choice(DEVICES)
        if roll < 0.75:
            return protocol.topic(SITE, device, self.rng.choice(KINDS))
        choices = [protocol.topic("<b>", device, "alarm"), protocol.topic(SITE, "Dev-\u00e9", "heartbeat"),
                   protocol.topic(SITE, "d" * 40, "event"), f"lonewatch/v1/{SITE}/{device}/alarm/extra",
                   f"lonewatch/v2/{SITE}/{device}/alarm", f"lonewatch/v1//{device}/status", "lonewatch",
                   protocol.gateway_status_topic("gw-x")]
        return self.rng.choice(choices)

    def payload(self) -> bytes:
        rng = self.rng
        kind = rng.randrange(8)
        if kind == 0:
            return rng.randbytes(rng.randrange(0, 3000))
        if kind == 1:  # invalid UTF-8 inside otherwise plausible JSON
            return b'{"v":1,"device":"dev-001","fw":"' + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88"]) + b'"}'
        if kind == 2:  # deep nesting, closed or not
            depth = rng.choice([5, 50, 1000, 3000])
            opener = rng.choice([b"[", b'{"a":'])
            return opener * depth + (b"]" * depth if opener == b"[" and rng.random() < 0.5 else b"")
        if kind == 3:  # a valid message with one field of the wrong type or at a boundary
            body = dict(rng.choice(self.valid_examples)["payload"])
            name = rng.choice(list(body) + ["uptime_ms", "time", "battery_pct", "outbox", "v", "location"])
            body[name] = rng.choice(WRONG_VALUES + [rng.choice([-1, 0, 100, 101, 2**53, 2**53 + 1, 4_102_444_801])])
            return json.dumps(body).encode("utf-8", "surrogatepass")
        if kind == 4:  # markup and control characters in every string
            body = dict(rng.choice(self.valid_examples)["payload"])
            for key, value in body.items():
                if isinstance(value, str) and key != "device":
                    body[key] = value + rng.choice(["<script>x</script>", "\u0000", "\r\n", "\ud800", "'; DROP"])
            return json.dumps(body).encode("utf-8", "surrogatepass")
        if kind == 5:  # a valid example, mutated byte by byte
            data = bytearray(json.dumps(rng.choice(self.valid_examples)["payload"]).encode())
            for _ in range(rng.randrange(1, 6)):
                at = rng.randrange(len(data))
                data[at] = rng.randrange(256)
            return bytes(data)
        if kind == 6:
            return json.dumps(rng.choice(WRONG_VALUES)).encode("utf-8", "surrogatepass")
        return json.dumps(rng.choice(self.valid_examples)["payload"]).encode()


def expected_verdict(topic: str, payload: bytes) -> str | None:
    """What the gateway must count for a QoS 1 message on `topic`: 'received:KIND', a reject
    reason, or None when the gateway's subscriptions do not match it (or it is a gateway's own)."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[:2] != ["lonewatch", "v1"] or parts[4] not in protocol.UPLINK_KINDS:
        return None
    if topic.startswith(protocol.TOPIC_ROOT + "/_gw/"):
        return None
    try:
        message = protocol.parse_message(topic, payload)
    except protocol.Invalid as exc:
        return exc.reason
    return f"received:{message.kind}"


def _metrics(port: int) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "lonewatch_messages_rejected_total":
                found[sample.labels["reason"]] = sample.value
            elif sample.name == "lonewatch_messages_received_total":
                found["received:" + sample.labels["kind"]] = sample.value
            elif sample.name == "lonewatch_ingest_backlog":
                found["backlog"] = sample.value
    return found


def _healthy(port: int) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Listener:
    """Every `delivered` the gateway sends to the fuzz site's devices."""

    def __init__(self, port: int):
        self.delivered: Counter = Counter()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fuzz-listener")
        self.client.on_connect = lambda c, *a: c.subscribe(f"{protocol.TOPIC_ROOT}/{SITE}/+/cmd", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        # The generator publishes junk on command topics too: only what parses as a command counts.
        try:
            body = protocol.parse_message(message.topic, message.payload).body
        except protocol.Invalid:
            return
        if body["cmd"] == "delivered":
            self.delivered[body["ref"]] += 1


def _publisher(port: int, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(min_delay=0.05, max_delay=0.5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def run(args) -> int:
    generator = Generator(args.seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lonewatch-fuzz-") as tmpdir:
        tmp = Path(tmpdir)
        broker, mqtt_port = start_broker("mosquitto", tmp)
        procs = [broker]
        try:
            db = tmp / "fuzz.db"
            gateway, http_port, log_path = start_gateway(tmp, mqtt_port, db, "gw-fuzz",
                                                         f'[devices]\nregistered = {json.dumps(DEVICES)}\n')
            procs.append(gateway)
            wait_for_port(http_port, 30)
            while not _healthy(http_port):
                time.sleep(0.1)
            listener = Listener(mqtt_port)
            counted, lossy = _publisher(mqtt_port, "fuzz-qos1"), _publisher(mqtt_port, "fuzz-huge")
            expected: Counter = Counter()  # QoS 1: each one must reach the gateway
            maybe: Counter = Counter()  # QoS 0: reaches it unless the broker or the gateway sheds it
            valid_ids: list[str] = []
            rss: list[int] = []
            sent = Counter()
            last_sample = 0.0
            for n in range(args.messages):
                if n % VALID_EVERY == 0:
                    topic, payload, alarm_id = generator.valid_alarm()
                    valid_ids.append(alarm_id)
                    info = counted.publish(topic, payload, qos=1)
                    expected["received:alarm"] += 1
                    sent["valid alarm"] += 1
                elif generator.rng.random() < 0.004:
                    # What the broker refuses and answers by dropping the sender's
                    # connection: a packet over max_packet_size, a topic with a
                    # control character. On a connection of its own, at QoS 0,
                    # so nothing is sent again after the reconnect.
                    if generator.rng.random() < 0.5:
                        lossy.publish(generator.topic(), os.urandom(256 * 1024), qos=0)
                        sent["256 KiB"] += 1
                    else:
                        lossy.publish(f"lonewatch/v1/{SITE}/\u0007bell/alarm", generator.payload(), qos=0)
                        sent["control character in topic"] += 1
                    continue
                else:
                    topic, payload = generator.topic(), generator.payload()
                    qos = 1 if generator.rng.random() < 0.9 else 0
                    retain = generator.rng.random() < 0.05
                    info = counted.publish(topic, payload, qos=qos, retain=retain)
                    sent[f"qos {qos}" + (" retained" if retain else "")] += 1
                    verdict = expected_verdict(topic, payload)
                    if verdict:
                        (expected if qos == 1 else maybe)[verdict] += 1
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: queued, sent later
                    raise RuntimeError(f"publish refused by paho: {mqtt.error_string(info.rc)}")
                if n % 500 == 0:  # keep paho's queue, and so the generator's memory, short
                    info.wait_for_publish(30)
                now = time.monotonic()
                if now - last_sample > 0.5:
                    rss.append(_rss_kib(gateway.pid))
                    last_sample = now
            # Drained: the gateway's counts match what the contract says, for every QoS 1 message.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                seen = _metrics(http_port)
                if all(seen.get(key, 0) >= value for key, value in expected.items()) and not seen.get("backlog"):
                    break
                rss.append(_rss_kib(gateway.pid))
                time.sleep(0.5)
            while time.monotonic() < deadline and set(valid_ids) - set(listener.delivered):
                time.sleep(0.2)
            seen = _metrics(http_port)
            healthy = _healthy(http_port)
            alive = gateway.poll() is None
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                stored = Counter(row[0] for row in conn.execute(
                    "SELECT msg_id FROM messages WHERE kind = 'alarm' AND site = ?", (SITE,)))
            for client in (counted, lossy, listener.client):
                client.loop_stop()
                client.disconnect()
        finally:
            for proc in reversed(procs):
                stop(proc)
        traceback_lines = sum("Traceback" in line for line in log_path.read_text().splitlines())

    counted_reasons = {k: int(seen.get(k, 0)) for k in set(expected) | set(maybe) | {k for k in seen if k != "backlog"}}
    # Each verdict counted at least as often as the QoS 1 messages that earn it,
    # and at most that plus the QoS 0 ones.
    mismatched = {k: (expected[k], expected[k] + maybe[k], n) for k, n in counted_reasons.items()
                  if not expected[k] <= n <= expected[k] + maybe[k]}
    missing = [i for i in valid_ids if stored[i] != 1]
    undelivered = [i for i in valid_ids if not listener.delivered[i]]
    warm = rss[len(rss) // 10:] or rss
    result = {
        "messages": args.messages,
        "seed": args.seed,
        "sent": dict(sent),
        "valid_alarms": len(valid_ids),
        "valid_alarms_stored_once": len(valid_ids) - len(missing),
        "valid_alarms_delivered": len(valid_ids) - len(undelivered),
        "verdicts_expected": dict(expected),
        "verdicts_expected_qos0": dict(maybe),
        "verdicts_mismatched": mismatched,
        "internal_errors": int(seen.get("internal_error", 0)),
        "gateway_alive": alive,
        "gateway_healthy": healthy,
        "tracebacks_logged": traceback_lines,
        "rss_kib_first": warm[0] if warm else None,
        "rss_kib_max": max(rss) if rss else None,
        "rss_kib_last": rss[-1] if rss else None,
        "seconds": round(time.monotonic() - started, 1),
    }
    result["ok"] = bool(alive and healthy and not missing and not undelivered and not mismatched
                        and not result["internal_errors"] and not traceback_lines)
    print(f"{'verdict':<28} {'QoS 1 sent':>10} {'+ QoS 0':>10} {'counted':>10}")
    for key in sorted(counted_reasons):
        print(f"{key:<28} {expected[key]:>10,} {maybe[key]:>10,} {counted_reasons[key]:>10,}")
    print(f"{'valid alarms stored once':<28} {len(valid_ids):>10,} {'':>10} {result['valid_alarms_stored_once']:>10,}")
    print(f"{'valid alarms delivered':<28} {len(valid_ids):>10,} {'':>10} {result['valid_alarms_delivered']:>10,}")
    print(f"gateway alive {alive}, healthy {healthy}, tracebacks {traceback_lines}; RSS KiB after warm-up "
          f"{result['rss_kib_first']} -> max {result['rss_kib_max']} (last {result['rss_kib_last']})")
    print(json.dumps(result))
    return 0 if result["ok"] else 1
