"""Shared pieces of the firmware-in-the-loop tests: the security desk played
by the test (a paho-mqtt client that validates everything the device
publishes with the gateway's contract), device factories, and readers for
the recorded feedback outputs."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as paho
import pytest

from contract.protocol import Invalid, parse_message, topic
from simulator import sisfall
from simulator.traces import fall_then_motionless, from_before_impact
from simulator.board import VirtualDevice, device_config

DEVICE = "dev-001"
SITE = "hq"


class Desk:
    """Plays the gateway: records every uplink message (validated), and can
    answer alarms with `delivered` the way the gateway does after storing."""

    def __init__(self, broker, auto_deliver=False, persistent=False):
        self.messages = []  # contract.protocol.Message, in arrival order
        self.arrived = {}  # id(message) -> time.monotonic() it arrived
        self.invalid = []
        self.auto_deliver = auto_deliver
        self._cv = threading.Condition()
        self._n = 0
        # persistent: a broker session that keeps what arrives while the desk
        # is reconnecting, as the gateway's does.
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="desk-test",
                                  clean_session=not persistent)
        self.client.reconnect_delay_set(0.5, 2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("lonewatch/v1/+/+/+", qos=1)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        deadline = time.monotonic() + 5
        while not self.client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # let the subscription settle

    def _on_message(self, client, userdata, msg):
        if msg.topic.endswith("/cmd"):
            return
        try:
            m = parse_message(msg.topic, msg.payload)
        except Invalid as e:
            with self._cv:
                self.invalid.append((msg.topic, msg.payload, str(e)))
                self._cv.notify_all()
            return
        with self._cv:
            self.messages.append(m)
            self.arrived[id(m)] = time.monotonic()
            self._cv.notify_all()
        if self.auto_deliver and m.kind == "alarm":
            self.command("delivered", ref=m.body["id"])

    def command(self, cmd, device=DEVICE, **fields):
        self._n += 1
        body = {"v": 1, "id": "gw-test:%d" % self._n, "cmd": cmd}
        body.update(fields)
        self.client.publish(topic(SITE, device, "cmd"), json.dumps(body), qos=1)

    def of(self, kind, **match):
        with self._cv:
            return [m for m in self.messages if m.kind == kind
                    and all(m.body.get(k) == v for k, v in match.items())]

    def wait_for(self, kind, timeout=10.0, count=1, **match):
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                found = [m for m in self.messages if m.kind == kind
                         and all(m.body.get(k) == v for k, v in match.items())]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s %r (x%d) within %.0f s; got %s; invalid %s" % (
                        kind, match, count, timeout,
                        [(m.kind, m.body.get("type"), m.body.get("id")) for m in self.messages],
                        self.invalid))
                self._cv.wait(left)

    def close(self):
        self.client.disconnect()  # first, so the network loop ends at once
        self.client.loop_stop()


@pytest.fixture
def desk_for():
    desks = []

    def make(broker, **kwargs):
        desks.append(Desk(broker, **kwargs))
        return desks[-1]

    yield make
    for d in desks:
        d.close()


@pytest.fixture
def device_for(tmp_path):
    """make(broker, **config_overrides) -> a started VirtualDevice behind a
    cuttable link. Options: device_heap_kb, start, sensor, config (raw)."""
    devices = []

    def make(broker, device_heap_kb=None, start=True, sensor="lis3dh", config=None, **overrides):
        n = len(devices)
        if sensor != "none":
            overrides.setdefault("sensor", sensor)  # the config names the chip fitted
        cfg = config if config is not None else device_config(broker.port, **overrides)
        dev = VirtualDevice(tmp_path / ("device-%d" % n), cfg, broker.port, sensor=sensor,
                            device_heap_kb=device_heap_kb)
        devices.append(dev)
        if start:
            dev.start()
        return dev

    yield make
    for dev in devices:
        dev.stop()


def sisfall_fall(sisfall_dir):
    """A real recorded fall (SisFall F01, subject SA01), from 3 s before the
    impact; the device then holds the last sample: lying motionless."""
    return from_before_impact(sisfall.read_csv(str(sisfall_dir / "SA01" / "F01_SA01_R01.csv.gz")), 3)


def synthetic_fall(seed=1):
    """simulator/traces.py's walking -> fall -> motionless, from 3 s before the impact."""
    return from_before_impact(fall_then_motionless(seed=seed, after_s=5), 3)


@pytest.fixture
def fall_trace():
    """The recorded SisFall fall when ../shared is there, else the synthetic one."""
    from conftest import SISFALL
    if (SISFALL / "manifest.csv").exists():
        return sisfall_fall(SISFALL)
    print("SisFall not found at %s: using the synthetic fall from simulator/traces.py" % SISFALL)
    return synthetic_fall()


def pulses(device, name, since_ms):
    """How many times output `name` switched on since `since_ms`."""
    return len(device.output_on(name, since_ms))


def buzzer_tones(device, since_ms):
    """Buzzer frequencies sounded (duty > 0) since `since_ms`, in order."""
    from simulator.board import PINS
    tones = []
    for t, kind, gpio, values in device.outputs(since_ms):
        if kind == "pwm" and gpio == str(PINS["buzzer"]) and int(values[1]) > 0:
            tones.append(int(values[0]))
    return tones


def wait_quiet(device, since_ms, quiet_ms=1200, timeout=10.0):
    """Wait until a pattern that started after since_ms has played out: the
    feedback outputs changed and then stayed unchanged for quiet_ms."""
    from simulator.board import PINS
    feedback = {str(PINS[n]) for n in ("buzzer", "vibration", "led")}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        changes = [t for t, kind, gpio, _ in device.outputs(since_ms)
                   if gpio in feedback and kind in ("pin", "pwm")]
        if changes and now_ms() - changes[-1] >= quiet_ms:
            return
        time.sleep(0.1)
    raise AssertionError("no feedback pattern played out after %d" % since_ms)


def now_ms():
    return time.time() * 1000
