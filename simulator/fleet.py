"""Light virtual devices: many wearables in one process, for the demo, for
`lonewatch sim` and for load. The firmware itself runs under the real
MicroPython VM in simulator.board; a fleet device instead runs the firmware's
pure logic in CPython (simulator.firmware_logic): its button gestures, its
alarm state machine, its outbox on a file (an alarm leaves it only on the
gateway's `delivered`, and is sent again without one), and its protocol
encoding. What stands in for the rest: the detector's verdict is an input
(`man_down("fall")`), the battery is a percentage, Wi-Fi is a flag. Given a
LoneWork plan, the wearers also work alone now and then: a session started
from the device, check-ins by double press, a check-out, and now and then
one who forgets and runs overdue.

All devices of a fleet share one network thread (simulator.netloop): a fleet
of 1,000 is two threads, not 1,000, and stops in about a second.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import logging
import os
import random
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from contract import protocol as contract
from simulator import firmware_logic as fw
from simulator.netloop import NetLoop

log = logging.getLogger(__name__)

FW_VERSION = "sim-0.2"
ZONES = ("lab-1", "lab-2", "workshop", "cold-room", "server-room", "basement")
# New connections in flight at once: a fleet starting together must not
# overrun the broker's accept queue (amqtt listens with a backlog of 100).
CONNECTS_IN_FLIGHT = 50
BUTTON_MS = 10
TICK_S = 1.0
# Heartbeats drift by up to this share of the interval, as real clocks do,
# so a fleet started together does not stay in step.
HEARTBEAT_JITTER = 0.05

# The fleet's thread does an action at once unless it has stopped.
ACT_WITHIN_S = 2.0
# A wearer who cannot do the next step of their lone work (the device is off)
# tries again this much later.
LONE_WORK_RETRY_S = 5.0


@dataclass(frozen=True)
class LoneWork:
    """How a fleet's wearers work alone; each pair is a (low, high) range in
    seconds that a wearer's seeded randomness picks from. A wearer starts a
    session from the device (session_start, its zone as the place) within
    first_within_s of the device's first power-on and for duration_s, checks
    in by double press every check_in_s, and checks out checks_out_before_end_s
    before the end, then has a break_s before the next. One session in every
    overdue_every of the fleet (the second, and so on) is a forgotten one: no
    check-in, no check-out, until answers_overdue_after_s after the overdue
    notice is felt, when the wearer answers with a check-in and checks out
    leaves_after_answering_s after that check-in has gone."""

    first_within_s: tuple[float, float]
    duration_s: tuple[int, int]
    check_in_s: tuple[float, float]
    checks_out_before_end_s: tuple[float, float]
    break_s: tuple[float, float]
    overdue_every: int
    answers_overdue_after_s: tuple[float, float]
    leaves_after_answering_s: tuple[float, float]

    def __post_init__(self):
        check = contract.FIELDS["event"]["duration_s"][1]
        for duration in self.duration_s:
            if check(duration):
                raise ValueError(f"lone work: a session_start's duration_s {check(duration)}, got {duration}")
        if self.checks_out_before_end_s[1] >= self.duration_s[0]:
            raise ValueError("lone work: checks_out_before_end_s must be shorter than the shortest session")
        if self.overdue_every < 1:
            raise ValueError("lone work: overdue_every must be 1 or more")


# The device config keys a fleet device honours, with the firmware's defaults.
DEFAULTS = {
    "heartbeat_s": 30,
    "keepalive_s": 30,
    "connect_timeout_s": 10,
    "backoff_max_s": 30,
    "delivered_timeout_s": 30,
    "prealarm_s": 20,
    "hold_ms": 2000,
    "panic_presses": 3,
    "press_window_ms": 2000,
    "low_battery_pct": 15,
    "outbox_max": 32,
}

# The firmware prints its state changes to the REPL; here they are debug logs.
fw.alarmstate.print = lambda *a: log.debug(*a)
fw.outbox.print = lambda *a: log.debug(*a)


def _memory_dir() -> str | None:
    """Where a fleet's temporary flash goes: a RAM file system if there is one
    (Linux's /dev/shm), else the system's temporary directory (None). On a disk
    shared with other work, removing a thousand devices' files at stop took
    0.1 to 2.9 s, and a stop must fit in 5 s."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def ticks_ms() -> int:
    return int(time.monotonic() * 1000)


class FleetDevice:
    """One light wearable. Its methods run on the fleet's network thread; from
    any other thread call them through Fleet.call(device, method, ...)."""

    def __init__(self, fleet: "Fleet", site: str, device: str, rng: random.Random, *,
                 worker: str | None = None, zone: str | None = None, battery_pct: int | None = None,
                 incident_every_s: float | None = None, **config):
        unknown = set(config) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"{device}: unknown device setting(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(DEFAULTS)}")
        self.fleet, self.loop = fleet, fleet.loop
        self.site, self.device = site, device
        self.cfg = dict(DEFAULTS, **config)
        self.rng = rng
        self.worker = worker or device
        self.location = {"zone": zone or rng.choice(ZONES)}
        self.battery = rng.randint(40, 100) if battery_pct is None else battery_pct
        self.incident_every_s = incident_every_s
        self.flash = os.path.join(fleet.flash, device)
        os.makedirs(self.flash, exist_ok=True)
        self.topic_base = contract.topic(site, device, "")
        # What the wearer felt, heard or saw: (time.time(), pattern).
        self.felt: list[tuple[float, str]] = []
        self.sent = collections.Counter()  # kind -> messages the broker took
        self.powered = False
        self.wifi = True
        self.online = False
        self.boots = 0
        self.states = self.box = None  # made at power-on, as on the device
        self.client: mqtt.Client | None = None
        self._timers: list = []
        self._inflight: tuple | None = None  # (mid, outbox key, kind)
        self._attempts = 0
        self._button_down = False
        self._button_timer = None
        self._silent = None  # the socket of a link cut by cut_wifi
        self.working_alone = False  # between its session_start and session_end
        self._sessions = 0  # lone-work sessions this wearer started
        self._forgotten = None  # the number of the session the wearer forgot, until answered

    # ---- power --------------------------------------------------------------

    def power_on(self) -> None:
        if self.powered:
            return
        self.powered = True
        self.boots += 1
        self.boot = self._next_boot()
        self.seq = 0
        self.started_ms = ticks_ms()
        self.box = fw.outbox.Outbox(os.path.join(self.flash, "outbox.log"), self.cfg["outbox_max"],
                                    self.cfg["delivered_timeout_s"] * 1000)
        self.states = fw.alarmstate.AlarmStates(self.cfg["prealarm_s"], self.new_id)
        self.gestures = fw.gestures.Gestures(self.cfg["hold_ms"], self.cfg["panic_presses"],
                                             self.cfg["press_window_ms"])
        self._attempts = 0
        self._every(self.rng.random() * self.cfg["heartbeat_s"], self._heartbeat_due)
        self._every(TICK_S, self._tick)
        self.fleet.want_connect(self)
        if self.boots == 1 and self.fleet.lone_work is not None:
            # The wearer's plan goes on whether the device is on or off.
            self._later(self.fleet.lone_work.first_within_s, self._start_session)

    def power_off(self) -> None:
        """A power cut: no goodbye; the broker notices the closed connection
        and publishes the Last Will. The outbox file stays."""
        if not self.powered:
            return
        self.powered = False
        for timer in self._timers:
            timer.cancel()
        self._timers = []
        self._drop_connection()

    def power_cycle(self, off_s: float = 1.0) -> None:
        self.power_off()
        self.loop.call_later(off_s, self.power_on)

    def _next_boot(self) -> int:
        # Persisted like the firmware's boot.txt; it starts from the clock so
        # ids stay unique when a demo restarts on the same database.
        path = os.path.join(self.flash, "boot.txt")
        try:
            with open(path) as f:
                previous = int(f.read())
        except (OSError, ValueError):
            previous = 0
        boot = max(previous + 1, int(time.time()))
        with open(path, "w") as f:
            f.write(str(boot))
        return boot

    def _every(self, first_s: float, fn) -> None:
        if len(self._timers) > 16:
            self._timers = [t for t in self._timers if not t.cancelled and t.when > self.loop.now()]
        self._timers.append(self.loop.call_later(first_s, fn))

    # ---- the link -----------------------------------------------------------

    def connect(self) -> bool:
        """One connect attempt (the fleet paces them); False if it failed at once."""
        if not (self.powered and self.wifi):
            return False
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.device, clean_session=False)
        client.will_set(self.topic_base + "status",
                        fw.protocol.encode(fw.protocol.status(self.device, "offline")), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.connect_timeout = min(self.cfg["connect_timeout_s"], 2.0)
        self.loop.attach(client)
        self.client = client
        try:
            client.connect(*self.fleet.broker, keepalive=self.cfg["keepalive_s"])
        except OSError as exc:
            log.debug("%s: connect failed: %s", self.device, exc)
            self.client = None
            self._retry()
            return False
        return True

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is not self.client:
            return
        self.fleet.connect_done(self)
        if reason_code.is_failure:
            log.warning("%s: broker refused the connection: %s", self.device, reason_code)
            self._drop_connection()
            self._retry()
            return
        self.online = True
        self._attempts = 0
        self._inflight = None
        # Subscribing again is harmless and covers a broker that lost the session.
        client.subscribe(self.topic_base + "cmd", qos=1)
        birth = fw.protocol.status(self.device, "online", FW_VERSION, self.uptime_ms())
        client.publish(self.topic_base + "status", fw.protocol.encode(birth), qos=1, retain=True)
        self.drain()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is not self.client:
            return
        was_connecting = not self.online
        self.online = False
        self._inflight = None
        self.client = None
        if was_connecting:
            self.fleet.connect_done(self)
        if self.powered and self.fleet.running:
            self._retry()

    def _drop_connection(self) -> None:
        client, self.client = self.client, None
        if not self.online and client is not None:
            self.fleet.connect_done(self)
        self.online = False
        self._inflight = None
        sock = client.socket() if client is not None else None
        if sock is not None:
            # Close without DISCONNECT: to the broker this is a lost device.
            # paho sees the end of the stream and closes its side.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _retry(self) -> None:
        # The firmware's backoff: 1, 2, 4 ... s capped at backoff_max_s, with jitter.
        self._attempts += 1
        base = min(2 ** min(self._attempts - 1, 10), self.cfg["backoff_max_s"])
        delay = base * (0.5 + self.rng.random() / 2)
        self._every(delay, lambda: self.fleet.want_connect(self) if self.powered else None)

    def cut_wifi(self) -> None:
        """Out of range: nothing more goes either way, and no one says so; the
        broker notices only when the keep-alive runs out."""
        self.wifi = False
        if self.client is not None:
            if not self.online:
                self.fleet.connect_done(self)
            self._silent = self.loop.detach(self.client)
            self.client, self.online, self._inflight = None, False, None

    def restore_wifi(self) -> None:
        if not self.wifi:
            self.wifi = True
            if self._silent is not None:
                self._silent.close()
                self._silent = None
            if self.powered and self.client is None:
                self._attempts = 0
                self.fleet.want_connect(self)

    # ---- uplink: the outbox, one record at a time, oldest first --------------

    def uptime_ms(self) -> int:
        return ticks_ms() - self.started_ms

    def new_id(self) -> str:
        self.seq += 1
        return fw.protocol.record_id(self.device, self.boot, self.seq)

    def queue(self, kind: str, body: dict) -> int | None:
        """As the firmware app queues: flash first, the record's id and uptime
        beside its JSON. The record's outbox key (None if the outbox refused it)."""
        if kind == fw.outbox.HEARTBEAT:
            key = self.box.add(kind, json.dumps(body))
        else:
            key = self.box.add(kind, json.dumps(body), body["id"], body["uptime_ms"])
        self.drain()
        return key

    def drain(self) -> None:
        if not self.online or self._inflight is not None:
            return
        record = self.box.next_to_send(self.uptime_ms())
        if record is None:
            return
        key, kind, rid, uptime_ms, payload, resend = record
        if resend:
            log.info("%s: no delivered for alarm %d, sending it again", self.device, key)
        if kind == fw.outbox.HEARTBEAT:
            data = payload.encode()
        else:
            data = fw.protocol.encode_for_send(
                payload, fw.protocol.sent_uptime(rid, uptime_ms, self.uptime_ms(), self.boot))
        info = self.client.publish(self.topic_base + kind, data, qos=fw.protocol.QOS[kind])
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return  # the connection is going; on_disconnect retries
        self._inflight = (info.mid, key, kind)

    def waits_to_send(self, key: int) -> bool:
        """Whether outbox record `key` waits behind an older one still on its way
        (records go one at a time, oldest first)."""
        return self._inflight is not None and self._inflight[1] < key

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if client is not self.client or self._inflight is None or self._inflight[0] != mid:
            return
        _, key, kind = self._inflight
        self._inflight = None
        self.box.sent(key, self.uptime_ms())
        self.sent[kind] += 1
        self.drain()

    # ---- downlink -------------------------------------------------------------

    def _on_message(self, client, userdata, message) -> None:
        if message.topic != self.topic_base + "cmd":
            # amqtt 0.12 hands a subscriber messages of other topics too.
            log.debug("%s: ignored a message on %s", self.device, message.topic)
            return
        cmd, problem = fw.commands.parse(message.payload)
        if cmd is None:
            log.warning("%s: refused a command (%s): %r", self.device, problem, message.payload[:60])
            return
        name, ref = cmd["cmd"], cmd.get("ref")
        if name == "delivered" and self.box.delivered(ref):
            self.drain()
        if name in ("delivered", "help_coming", "resolved"):
            self.carry_out(self.states.command(name, ref))
        elif name == "ping":
            self.send_heartbeat()
            self.feel(fw.patterns.PING)
        elif name == "session_due":
            self.feel(fw.patterns.SESSION_DUE)
            if cmd.get("due_in_s") == 0 and self._forgotten == self._sessions:
                self._later(self.fleet.lone_work.answers_overdue_after_s,
                            lambda n=self._sessions: self._answer_overdue(n))

    def feel(self, pattern: str) -> None:
        self.felt.append((time.time(), pattern))

    # ---- what the wearer and the world do ---------------------------------------

    def carry_out(self, actions, now_ms: int | None = None) -> None:
        """The firmware app's carry_out: alarms and events to the outbox, feedback felt."""
        at = self.uptime_ms() if now_ms is None else now_ms - self.started_ms
        for action in actions:
            if action[0] == "alarm":
                _, rid, atype, cause = action
                self.queue("alarm", fw.protocol.alarm(self.device, rid, atype, at, cause=cause,
                                                      wall_time=round(time.time(), 3),
                                                      battery_pct=self.battery, location=self.location))
                log.info("%s: %s alarm %s", self.device, atype + (f" ({cause})" if cause else ""), rid)
            elif action[0] == "event":
                _, rid, etype, cause, countdown = action
                self.queue("event", fw.protocol.event(self.device, rid, etype, at, cause=cause,
                                                      countdown_s=countdown, wall_time=round(time.time(), 3),
                                                      battery_pct=self.battery, location=self.location))
            elif action[0] == "feedback":
                self.feel(action[1])

    def button(self, down: bool) -> None:
        self._button_down = down
        self._sample_button()

    def _sample_button(self) -> None:
        # The firmware samples the button every 10 ms; a fleet device only
        # while a gesture is in progress.
        if not self.powered:
            return
        now = ticks_ms()
        for g in self.gestures.update(self._button_down, now):
            if g == fw.gestures.PRESS:
                self.carry_out(self.states.press())
            elif g == fw.gestures.PANIC:
                self.carry_out(self.states.panic())
            elif g == fw.gestures.DOUBLE and self.states.state == fw.alarmstate.IDLE:
                self.carry_out([("event", self.new_id(), "check_in", None, None),
                                ("feedback", fw.patterns.CHECK_IN)])
        if self._button_timer is not None:
            self._button_timer.cancel()
        busy = self._button_down or self.gestures.count
        self._button_timer = self.loop.call_later(BUTTON_MS / 1000, self._sample_button) if busy else None

    def press(self, ms: int = 150) -> None:
        self.button(True)
        self.loop.call_later(ms / 1000, lambda: self.button(False))

    def hold(self, ms: int | None = None) -> None:
        self.press(ms or self.cfg["hold_ms"] + 300)

    def presses(self, n: int, ms: int = 150, gap_ms: int = 250) -> None:
        for i in range(n):
            self.loop.call_later(i * (ms + gap_ms) / 1000, lambda: self.press(ms))

    def man_down(self, cause: str) -> None:
        """The detector reports `cause` (fall, no_motion, tilt) now."""
        if cause not in fw.protocol.MAN_DOWN_CAUSES:
            raise ValueError(f"man-down cause must be one of {', '.join(fw.protocol.MAN_DOWN_CAUSES)}")
        now = ticks_ms()
        actions = self.states.man_down(cause, now)
        self.carry_out(actions, now)
        if actions:
            # The firmware ticks the countdown 50 times a second; a fleet
            # device looks once a second, and once more when it runs out.
            self._every(self.states.prealarm_s + 0.001, self._countdown)

    def _countdown(self) -> None:
        now = ticks_ms()
        self.carry_out(self.states.tick(now), now)

    def session(self, etype: str, duration_s: int | None = None) -> int | None:
        """Lone work from the device: session_start (for duration_s) or session_end; its outbox key."""
        self.working_alone = etype == "session_start"
        return self.queue("event", fw.protocol.event(self.device, self.new_id(), etype, self.uptime_ms(),
                                              duration_s=duration_s, wall_time=round(time.time(), 3),
                                              battery_pct=self.battery, location=self.location))

    # ---- the wearer's lone work (the fleet's LoneWork plan) ----------------------

    def _later(self, range_s: tuple[float, float], step) -> None:
        self.loop.call_later(self.rng.uniform(*range_s), step)

    def _start_session(self) -> None:
        if not self.powered:
            self.loop.call_later(LONE_WORK_RETRY_S, self._start_session)
            return
        plan = self.fleet.lone_work
        duration = self.rng.randint(*plan.duration_s)
        self.session("session_start", duration)
        self._sessions += 1
        if self.fleet.forgets_next_session():
            # The overdue notice felt on the device reminds them (_on_message).
            # Without one (the desk ended the session first) they leave in the
            # end anyway, later than an answer to the notice would have come.
            self._forgotten = n = self._sessions
            low, high = plan.answers_overdue_after_s
            self._later((duration + 2 * low, duration + 2 * high), lambda: self._answer_overdue(n))
            return
        leaves_in = duration - self.rng.uniform(*plan.checks_out_before_end_s)
        self._next_check_in(self.loop.now() + leaves_in)
        self.loop.call_later(leaves_in, self._check_out)

    def _next_check_in(self, leaves_at: float) -> None:
        delay = self.rng.uniform(*self.fleet.lone_work.check_in_s)
        if self.loop.now() + delay + self._check_in_gone_s() < leaves_at:
            self.loop.call_later(delay, lambda: self._check_in(leaves_at))

    def _check_in(self, leaves_at: float) -> None:
        if self._can_double_press():
            self.presses(2)
        self._next_check_in(leaves_at)

    def _can_double_press(self) -> bool:
        # A double press is a check-in only while no alarm is going (the
        # firmware's rule), and its first press would cancel a pre-alarm: a
        # wearer with an alarm going does not check in.
        return self.powered and self.states.state == fw.alarmstate.IDLE

    def _answer_overdue(self, n: int) -> None:
        """The forgetful wearer of session n, a while after the overdue notice: a check-in, then off home."""
        if self._forgotten != n:
            return  # answered already
        self._forgotten = None
        if self._can_double_press():
            self.presses(2)
        low, high = self.fleet.lone_work.leaves_after_answering_s
        gone = self._check_in_gone_s()
        self._later((gone + low, gone + high), self._check_out)

    def _check_in_gone_s(self) -> float:
        # The firmware sends a check-in when the double press's window has
        # closed; a check-out after it must not overtake it.
        return self.cfg["press_window_ms"] / 1000 + 1

    def _check_out(self) -> int | None:
        """The session_end's outbox key, or None while the device is off."""
        if not self.powered:
            self.loop.call_later(LONE_WORK_RETRY_S, self._check_out)
            return None
        key = self.session("session_end")
        self._later(self.fleet.lone_work.break_s, self._start_session)
        return key

    def drain_battery(self, to_pct: int = 10, over_s: float = 10.0) -> None:
        """The battery runs down to to_pct over over_s, a percent at a time."""
        steps = max(1, self.battery - to_pct)
        for n in range(1, steps + 1):
            self.loop.call_later(over_s * n / steps, lambda pct=self.battery - n: self.set_battery(pct))

    def set_battery(self, pct: int) -> None:
        was, self.battery = self.battery, max(0, min(100, int(pct)))
        if self.battery < self.cfg["low_battery_pct"] <= was:
            self.feel(fw.patterns.LOW_BATTERY)

    def send_heartbeat(self) -> None:
        self.queue("heartbeat", fw.protocol.heartbeat(
            self.device, self.uptime_ms(), self.battery, FW_VERSION, rssi=-40 - self.rng.randint(0, 45),
            wall_time=round(time.time(), 3), outbox=len(self.box), worn=True))

    def _heartbeat_due(self) -> None:
        self.send_heartbeat()
        period = self.cfg["heartbeat_s"] * (1 + HEARTBEAT_JITTER * (2 * self.rng.random() - 1))
        self._every(period, self._heartbeat_due)

    def _tick(self) -> None:
        now = ticks_ms()
        self.carry_out(self.states.tick(now), now)
        self.drain()  # an alarm whose `delivered` is overdue goes out again
        if self.incident_every_s and self.states.state == fw.alarmstate.IDLE:
            self._random_incident()
        self._every(TICK_S, self._tick)

    def _random_incident(self) -> None:
        # The demo's wearers: now and then a panic, or a man-down that the
        # wearer cancels after a few seconds or that runs to an alarm.
        if self.rng.random() >= TICK_S / self.incident_every_s:
            return
        roll = self.rng.random()
        if roll < 0.4:
            self.carry_out(self.states.panic())
            return
        self.man_down(self.rng.choice(fw.protocol.MAN_DOWN_CAUSES))
        if roll < 0.7:
            self._every(self.rng.uniform(2, 8), lambda: self.press())

    def describe(self) -> dict:
        return {"device": self.device, "worker": self.worker, "powered": self.powered, "wifi": self.wifi,
                "online": self.online, "state": self.states.state if self.powered and self.states else "off",
                "battery_pct": self.battery, "outbox": len(self.box) if self.box is not None else None,
                "working_alone": self.working_alone, "felt": [p for _, p in self.felt[-5:]]}

    def goodbye(self, say_offline: bool = True) -> None:
        """A clean switch-off: say offline (the desk must not think it is
        worn), then DISCONNECT so the broker keeps the Last Will to itself."""
        for timer in self._timers:
            timer.cancel()
        if self.client is not None and self.online:
            if say_offline:
                self.client.publish(self.topic_base + "status", fw.protocol.encode(
                    fw.protocol.status(self.device, "offline")), qos=0, retain=True)
            self.client.disconnect()
        elif self.client is not None:
            self._drop_connection()


class Fleet:
    """N light devices on one site, on one network thread."""

    def __init__(self, mqtt_url: str, size: int = 0, site: str = "demo", seed: int | None = None,
                 heartbeat_s: float = 30.0, incident_every_s: float | None = 240.0, flash: str | None = None,
                 name_format: str = "sim-{:03d}", lone_work: LoneWork | None = None,
                 offline_at_stop: bool = True, **config):
        self.broker = contract.parse_mqtt_url(mqtt_url)
        # False: the fleet's stop is the world pausing, not its wearers
        # switching off; the devices leave without saying offline.
        self.offline_at_stop = offline_at_stop
        self.site = site
        self.loop = NetLoop()
        self._own_flash = flash is None
        self.flash = flash or tempfile.mkdtemp(prefix="lonewatch-fleet-", dir=_memory_dir())
        self.rng = random.Random(seed)
        self.lone_work = lone_work
        self._sessions_started = 0
        self.running = False
        self.devices: list[FleetDevice] = []
        self.by_name: dict[str, FleetDevice] = {}
        self._waiting: collections.deque = collections.deque()
        self._connecting: set = set()
        for i in range(1, size + 1):
            self.add(name_format.format(i), heartbeat_s=heartbeat_s, incident_every_s=incident_every_s, **config)

    def add(self, name: str, **settings) -> FleetDevice:
        """A device (before start); settings: worker, zone, battery_pct,
        incident_every_s and the device config keys in DEFAULTS."""
        if name in self.by_name:
            raise ValueError(f"two devices named {name!r}")
        device = FleetDevice(self, self.site, name, random.Random(self.rng.random()), **settings)
        self.devices.append(device)
        self.by_name[name] = device
        return device

    # ---- pacing connections ---------------------------------------------------

    def want_connect(self, device: FleetDevice) -> None:
        if device in self._connecting or device in self._waiting or device.client is not None:
            return
        self._waiting.append(device)
        self._pump()

    def connect_done(self, device: FleetDevice) -> None:
        self._connecting.discard(device)
        self._pump()

    def _pump(self) -> None:
        while self.running and self._waiting and len(self._connecting) < CONNECTS_IN_FLIGHT:
            device = self._waiting.popleft()
            self._connecting.add(device)
            if device.connect():
                # A broker that takes the connection but never answers frees the slot too.
                self.loop.call_later(device.cfg["connect_timeout_s"], lambda d=device: self._connect_overdue(d))
            else:
                self._connecting.discard(device)

    def _connect_overdue(self, device: FleetDevice) -> None:
        if device in self._connecting and not device.online:
            log.debug("%s: no CONNACK in time", device.device)
            device._drop_connection()
            device._retry()

    def forgets_next_session(self) -> bool:
        """Whether the session a wearer starts now runs overdue: the fleet's
        second, then every LoneWork.overdue_every-th, so a small demo shows one soon."""
        n, every = self._sessions_started, self.lone_work.overdue_every
        self._sessions_started += 1
        return n % every == 1 % every

    # ---- running ----------------------------------------------------------------

    def call(self, device: FleetDevice, method: str, *args) -> None:
        """Run device.method(*args) on the fleet's thread."""
        self.loop.call_soon_threadsafe(lambda: getattr(device, method)(*args))

    def act(self, name: str, action: str, params: dict) -> concurrent.futures.Future:
        """A scenario or control action (simulator.scenario.DEVICE_ACTIONS) on
        device `name`, from any thread; the future is done once the device has
        done it (a held button: once it is pressed, not released)."""
        device = self.by_name[name]
        calls = {
            "press": lambda: device.press(params.get("ms", 150)),
            "hold": lambda: device.hold(params.get("ms")),
            "presses": lambda: device.presses(params.get("n", 3)),
            "check_in": lambda: device.presses(2),
            "fall": lambda: device.man_down("fall"),
            "no_motion": lambda: device.man_down("no_motion"),
            "tilt": lambda: device.man_down("tilt"),
            "cut_wifi": device.cut_wifi,
            "restore_wifi": device.restore_wifi,
            "battery": lambda: device.set_battery(params["pct"]),
            "drain": lambda: device.drain_battery(params.get("to_pct", 10), params.get("over_s", 10.0)),
            "power_off": device.power_off,
            "power_on": device.power_on,
            "power_cycle": lambda: device.power_cycle(params.get("off_s", 1.0)),
            "session_start": lambda: device.session("session_start", params.get("duration_s", 3600)),
            "session_end": lambda: device.session("session_end"),
        }
        if action not in calls:
            raise ValueError(f"unknown action {action!r}; known: {', '.join(calls)}")
        done: concurrent.futures.Future = concurrent.futures.Future()

        def carry_out():
            if not done.set_running_or_notify_cancel():
                return  # the caller gave up waiting (device_action's timeout): not done after all
            try:
                done.set_result(calls[action]())
            except Exception as exc:
                done.set_exception(exc)
        self.loop.call_soon_threadsafe(carry_out)
        return done

    async def device_action(self, name: str, action: str, params: dict) -> None:
        """act(), awaited: what a control request or a scenario step asks for
        is done when this returns, so a listing that follows shows it."""
        try:
            await asyncio.wait_for(asyncio.wrap_future(self.act(name, action, params)), ACT_WITHIN_S)
        except TimeoutError:
            raise RuntimeError(f"{action} {name}: the fleet did not do it within {ACT_WITHIN_S:g} s "
                               "(it is stopping)") from None

    def device_names(self) -> list[str]:
        return list(self.by_name)

    def describe(self) -> list[dict]:
        return [d.describe() for d in self.devices]

    def connected(self) -> int:
        return sum(1 for d in self.devices if d.online)

    def start_now(self) -> None:
        self.running = True
        self.loop.start()
        for device in self.devices:
            self.loop.call_soon_threadsafe(device.power_on)

    def stop_now(self, grace_s: float = 0.8) -> threading.Event:
        """Check-outs, goodbyes and what they wrote sent within about grace_s, then the thread ends."""
        def goodbye():
            self.running = False
            for device in self.devices:
                device.powered = False
                device.goodbye(self.offline_at_stop)

        def check_out():
            # The simulation ends and its wearers go home: those working alone
            # check out before they switch off, or the gateway would rightly
            # take the switching off for contact lost during lone work.
            # A check-out needs only to be on its way before the goodbye, on
            # the same connection; it may wait for the PUBACK of an older
            # record, for at most half the time. The goodbyes get the rest.
            started = self.loop.now()
            leaving = {}
            try:
                for d in self.devices:
                    if d.working_alone and d.online:
                        leaving[d] = d._check_out()
            except Exception:
                # The goodbyes must come whatever: a stop that waits on this forever is no stop.
                log.exception("simulated devices: a check-out at the stop failed")

            def once_on_their_way():
                spent = self.loop.now() - started
                if spent < grace_s / 2 and any(d.online and key is not None and d.waits_to_send(key)
                                               for d, key in leaving.items()):
                    self.loop.call_later(0.02, once_on_their_way)
                else:
                    self.loop.stop(goodbye, grace_s - spent)
            once_on_their_way()

        if self.running:
            self.loop.call_soon_threadsafe(check_out)
        else:
            self.loop.stop(goodbye, grace_s)
        return self.loop.stopped

    async def start(self) -> None:
        self.start_now()

    async def stop(self) -> None:
        """Says goodbye for every device at once and waits for the network
        thread without blocking the event loop (it may carry the broker)."""
        stopped = self.stop_now()
        while not stopped.is_set():
            await asyncio.sleep(0.02)
        if self._own_flash:
            # Files are the disk's work, not the event loop's (the broker's, the
            # gateway's), on a thread of their own that ends with them: the
            # default executor's would stay behind after the fleet is gone.
            remover = threading.Thread(target=shutil.rmtree, args=(self.flash, True), name="fleet flash removal")
            remover.start()
            while remover.is_alive():
                await asyncio.sleep(0.02)
