"""Light virtual devices: speak lonewatch/v1 like a wearable, without running
its firmware. For the demo and for load; the firmware itself runs under the
real MicroPython VM in simulator.board.

Each device keeps its own behaviour as a small state machine
(idle -> pre_alarm -> alarm -> idle) driven by a seeded random source, so a
demo run can be repeated.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time

import paho.mqtt.client as mqtt

from contract import protocol, vocabulary

log = logging.getLogger(__name__)

FW_VERSION = "sim-0.1"
ZONES = ("lab-1", "lab-2", "workshop", "cold-room", "server-room", "basement")

IDLE, PRE_ALARM, ALARM = "idle", "pre_alarm", "alarm"


class VirtualDevice:
    def __init__(self, site: str, device: str, broker: tuple[str, int], rng: random.Random,
                 heartbeat_s: float = 30.0, incident_every_s: float = 240.0, countdown_s: int = 20):
        self.site, self.device = site, device
        self.broker = broker
        self.rng = rng
        self.heartbeat_s = heartbeat_s
        self.incident_every_s = incident_every_s
        self.countdown_s = countdown_s
        # Seconds since the epoch at start stand in for the persisted boot
        # counter, so ids stay unique when the demo restarts on the same db.
        self.boot = int(time.time())
        self.seq = 0
        self.started = time.monotonic()
        self.zone = rng.choice(ZONES)
        self.battery = rng.randint(40, 100)
        self.state = IDLE
        self.pre_alarm_cause = None
        self.pre_alarm_until = 0.0
        self.open_alarm: str | None = None
        self.commands: list[dict] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device, clean_session=False)
        self.client.will_set(self.topic("status"), protocol.encode({"v": 1, "device": device, "state": "offline"}),
                             qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 30)

    # --- wire -----------------------------------------------------------
    def topic(self, kind: str) -> str:
        return protocol.topic(self.site, self.device, kind)

    def uptime_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def publish(self, kind: str, body: dict) -> None:
        qos, retain = protocol.DELIVERY[kind]
        self.client.publish(self.topic(kind), protocol.encode(body), qos=qos, retain=retain)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("%s: broker refused the connection: %s", self.device, reason_code)
            return
        client.subscribe(self.topic("cmd"), qos=1)
        self.publish("status", {"v": 1, "device": self.device, "state": "online", "fw": FW_VERSION,
                                "uptime_ms": self.uptime_ms()})

    def _on_message(self, client, userdata, message):
        try:
            cmd = json.loads(message.payload)
        except ValueError:
            log.warning("%s: unreadable command on %s", self.device, message.topic)
            return
        self.commands.append(cmd)
        if cmd.get("cmd") == "help_coming":
            log.info("%s: the desk says help is coming (%s)", self.device, cmd.get("ref"))
        elif cmd.get("cmd") == "resolved" and cmd.get("ref") == self.open_alarm:
            self.state, self.open_alarm = IDLE, None
        elif cmd.get("cmd") == "ping":
            self.heartbeat()

    # --- messages -------------------------------------------------------
    def _record(self, body: dict) -> dict:
        self.seq += 1
        body.update({"v": 1, "device": self.device, "id": f"{self.device}:{self.boot}:{self.seq}",
                     "uptime_ms": self.uptime_ms(), "battery_pct": self.battery})
        body["sent_uptime_ms"] = body["uptime_ms"]
        body["time"] = round(time.time(), 3)
        return body

    def heartbeat(self) -> None:
        self.publish("heartbeat", {"v": 1, "device": self.device, "uptime_ms": self.uptime_ms(),
                                   "battery_pct": self.battery, "fw": FW_VERSION,
                                   "rssi": -40 - self.rng.randint(0, 45), "worn": True})

    def alarm(self, atype: str, cause: str | None = None) -> str:
        body = self._record({"type": atype, "location": {"zone": self.zone}})
        if cause:
            body["cause"] = cause
        self.publish("alarm", body)
        self.state, self.open_alarm = ALARM, body["id"]
        log.info("%s: %s alarm %s", self.device, atype + (f" ({cause})" if cause else ""), body["id"])
        return body["id"]

    def event(self, etype: str, **fields) -> None:
        self.publish("event", self._record({"type": etype, **fields}))

    # --- behaviour ------------------------------------------------------
    def tick(self, dt: float) -> None:
        """Advance the device's own life by dt seconds."""
        if self.state == PRE_ALARM and time.monotonic() >= self.pre_alarm_until:
            self.alarm("man_down", self.pre_alarm_cause)
        elif self.state == IDLE and self.rng.random() < dt / self.incident_every_s:
            roll = self.rng.random()
            if roll < 0.4:
                self.alarm("panic")
            else:
                self.pre_alarm_cause = self.rng.choice(vocabulary.MAN_DOWN_CAUSES)
                self.event("pre_alarm_started", cause=self.pre_alarm_cause, countdown_s=self.countdown_s)
                self.state = PRE_ALARM
                self.pre_alarm_until = time.monotonic() + self.countdown_s
                if roll < 0.7:  # the wearer is fine and cancels
                    self.event("pre_alarm_cancelled", cause=self.pre_alarm_cause)
                    self.state = IDLE

    def connect(self) -> None:
        self.client.connect_async(*self.broker, keepalive=30)
        self.client.loop_start()

    def disconnect(self) -> None:
        # A clean shutdown still says "offline": the desk must not think it is worn.
        self.publish("status", {"v": 1, "device": self.device, "state": "offline"})
        self.client.disconnect()
        self.client.loop_stop()


class Fleet:
    """N virtual devices on one site, ticked by one background thread."""

    def __init__(self, mqtt_url: str, size: int, site: str = "demo", seed: int | None = None,
                 heartbeat_s: float = 30.0, incident_every_s: float = 240.0):
        broker = protocol.parse_mqtt_url(mqtt_url)
        rng = random.Random(seed)
        self.devices = [
            VirtualDevice(site, f"sim-{i:03d}", broker, random.Random(rng.random()),
                          heartbeat_s=heartbeat_s, incident_every_s=incident_every_s)
            for i in range(1, size + 1)
        ]
        self.heartbeat_s = heartbeat_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)

    async def start(self) -> None:
        for device in self.devices:
            device.connect()
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for device in self.devices:
            device.disconnect()

    def _run(self) -> None:
        step = 1.0
        next_heartbeat = [time.monotonic() + random.random() * self.heartbeat_s for _ in self.devices]
        while not self._stop.wait(step):
            now = time.monotonic()
            for n, device in enumerate(self.devices):
                if now >= next_heartbeat[n]:
                    device.heartbeat()
                    next_heartbeat[n] = now + self.heartbeat_s
                device.tick(step)
