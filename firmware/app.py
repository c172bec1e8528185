# The wearable: wires config, board, detector, gestures, alarm states,
# outbox, link and feedback into a few long-running asyncio tasks.
#
# The button (100 Hz) and sensor (50 Hz) tasks only compute and write to the
# outbox on flash; the link task does all the waiting on the network. A task
# that dies resets the board (a half-alive wearable is worse than a reboot),
# and the supervisor feeds the watchdog only while every task shows progress.
import asyncio
import gc
import json
import sys
import time

import machine
from micropython import const

import alarmstate
import board
import feedback
import gestures
import link
import mandown
import outbox
import patterns
import protocol
import sensor
import version

_BUTTON_MS = const(10)
# Idle (no gesture in progress, no pre-alarm to cancel) the button task looks
# this often: the press interrupt keeps what happens in between (button_task).
_BUTTON_IDLE_MS = const(100)
# A press edge this soon after the button was last seen down is its bounce.
_DEBOUNCE_MS = const(30)
_SENSOR_MS = const(20)
_SUPERVISOR_MS = const(500)
# A technical alarm after this many failed sensor reads in a row (1 s).
_SENSOR_FAILURES = const(50)
_NTP_EVERY_MS = const(3600 * 1000)
_HEAP_REPORT_MS = const(5000)
_LOW_BATTERY_EVERY_MS = const(10 * 60 * 1000)
# Held for the one moment it is needed: queuing an alarm on a heap with no
# hole big enough for the record (App.carry_out). About three records' worth.
_RESERVE = const(1024)


class App:
    def __init__(self, cfg, boot):
        # First, while the heap is still in one piece: a block that size.
        self.reserve = bytearray(_RESERVE)
        self.cfg = cfg
        self.boot = boot
        self.seq = 0
        self.board = board.Board()
        self.player = feedback.Player(self.board.buzzer, self.board.vibration,
                                      self.board.led, cfg["silent"])
        self.box = outbox.Outbox("outbox.log", cfg["outbox_max"],
                                 cfg["delivered_timeout_s"] * 1000)
        self.states = alarmstate.AlarmStates(cfg["prealarm_s"], self.new_id)
        self.session = alarmstate.Session(self.new_id)
        self.gestures = gestures.Gestures(cfg["hold_ms"], cfg["panic_presses"], cfg["press_window_ms"])
        self.detector = mandown.Detector(cfg["mandown"])
        self.link = link.Link(cfg, boot, self.board.wlan, self.box, self.on_command,
                              self.on_online)
        self.sensor = None
        self.progress = {}  # task name -> ticks_ms of its last loop
        self.heap_peak = 0
        self.battery_pct = None
        self.last_ntp = None
        self.worn = True
        import sntp
        self.epoch = sntp.EPOCH_OFFSET  # unix seconds = time.time() + epoch
        del sntp
        _forget("sntp")
        print("lonewatch %s: device %s boot %d, %d record(s) in the outbox"
              % (version.FW, cfg["device"], boot, len(self.box)))

    # ---- actions --------------------------------------------------------

    def new_id(self):
        self.seq += 1
        return protocol.record_id(self.cfg["device"], self.boot, self.seq)

    def _wall(self):
        return time.time() + self.epoch

    def carry_out(self, actions, now=None):
        """Do what the state machine decided; `now` (ticks_ms) is when it
        happened, so a countdown and its alarm are dated consistently."""
        cfg = self.cfg
        if now is None:
            now = time.ticks_ms()
        for action in actions:
            while True:
                try:
                    if action[0] == "alarm":
                        _, rid, atype, cause = action
                        body = protocol.alarm(cfg["device"], rid, atype, now, cause=cause,
                                              wall_time=self._wall(), battery_pct=self.battery_pct,
                                              location=cfg["location"])
                        self.queue("alarm", body)
                    elif action[0] == "event":
                        _, rid, etype, cause, countdown = action
                        self.queue("event", protocol.event(
                            cfg["device"], rid, etype, now, cause=cause, countdown_s=countdown,
                            duration_s=cfg["session_s"] if etype == "session_start" else None,
                            wall_time=self._wall(), battery_pct=self.battery_pct,
                            location=cfg["location"]))
                    elif action[0] == "feedback":
                        self.player.play(action[1])
                    break
                except MemoryError:
                    # The record did not fit the torn heap. An alarm only in
                    # RAM would die with the reset a failing task causes:
                    # free the reserve, which leaves room for it, and write
                    # it again.
                    if self.reserve is None:
                        raise
                    self.reserve = None
                    gc.collect()
                    print("heap: reserve used")

    def queue(self, kind, body):
        # Flash first, then the network: the outbox write is the commitment.
        if kind == outbox.HEARTBEAT:
            self.box.add(kind, json.dumps(body))
        else:
            self.box.add(kind, json.dumps(body), body["id"], body["uptime_ms"])
            print("queued %s %s %s" % (kind, body["id"], body["type"]))
        self.link.wake.set()

    def raise_technical(self, cause):
        rid = self.new_id()
        self.carry_out([("alarm", rid, "technical", cause), ("feedback", patterns.ALARM_QUEUED)])

    # ---- inputs ---------------------------------------------------------

    def on_gesture(self, g):
        if g == gestures.PRESS:
            actions = self.states.press()
            if actions:
                # Cancelled: the wearer says they are fine, not that they are
                # up again. Watch afresh from now, so that staying down or
                # falling again raises a new pre-alarm.
                self.detector.reset()
            self.carry_out(actions)
        elif g == gestures.PANIC:
            self.carry_out(self.states.panic())
        # A press may answer the session's prompt; the end of the presses may
        # be a check-in or a session gesture.
        self.carry_out(self.session.update(g, self.states.state))

    def on_detector(self, code, now):
        name = mandown.NAMES[code]
        if code in mandown.DOWN:
            self.carry_out(self.states.man_down(name, now), now)
        elif code in (mandown.NOT_WORN, mandown.WORN):
            self.worn = code == mandown.WORN
            self.carry_out([("event", self.new_id(), name, None, None)])
        # CLEARED (moving again) does not cancel a pre-alarm: only the
        # wearer's press says "I'm OK".

    def on_command(self, topic, payload):
        import commands
        try:
            changes = commands.run(self, payload)
        finally:
            del commands
            _forget("commands")
        if changes is not None:
            import config
            try:
                config.update(self, changes)
            finally:
                del config
                _forget("config")

    # ---- measurements -----------------------------------------------------

    def read_battery(self):
        cfg = self.cfg
        mv = self.board.adc.read_uv() * cfg["battery_divider"] // 1000000
        span = cfg["battery_full_mv"] - cfg["battery_empty_mv"]
        pct = (mv - cfg["battery_empty_mv"]) * 100 // span
        self.battery_pct = max(0, min(100, pct))
        return mv

    def send_heartbeat(self):
        mv = self.read_battery()
        rssi = self.board.wlan.status("rssi") if self.board.wlan.isconnected() else None
        body = protocol.heartbeat(self.cfg["device"], time.ticks_ms(), self.battery_pct, version.FW,
                                  battery_mv=mv, rssi=rssi, wall_time=self._wall(),
                                  outbox=len(self.box), worn=self.worn)
        self.queue("heartbeat", body)

    def on_online(self):
        if self.cfg["ntp_host"] and (self.last_ntp is None or time.ticks_diff(
                time.ticks_ms(), self.last_ntp) > _NTP_EVERY_MS):
            self.last_ntp = time.ticks_ms()
            asyncio.create_task(self.sync_clock())

    async def sync_clock(self):
        # Hourly at most: its code is loaded only for it.
        import sntp
        try:
            now = await sntp.query(self.cfg["ntp_host"])
            if now:
                sntp.set_clock(machine.RTC(), now)
                print("ntp: clock set")
        except OSError as e:
            print("ntp: %r" % (e,))
        finally:
            del sntp
            _forget("sntp")

    # ---- tasks ------------------------------------------------------------

    async def button_task(self):
        # Samples every _BUTTON_MS only while it matters within milliseconds:
        # a gesture in progress, or a pre-alarm a press must cancel in time.
        # Otherwise it looks every _BUTTON_IDLE_MS, and a press edge latched by
        # the interrupt (Board.down_at) in between is counted from when it
        # began, so a hold is timed right and a short tap is not lost.
        board, gestures = self.board, self.gestures
        last_down = None  # ticks_ms the button was last seen down, while recent
        while True:
            now = time.ticks_ms()
            pressed = board.pressed()
            edge = board.down_at
            board.down_at = None
            at = now
            if edge is not None and not gestures.down and (
                    last_down is None or time.ticks_diff(edge, last_down) > _DEBOUNCE_MS):
                pressed, at = True, edge
            if pressed:
                last_down = now
            elif last_down is not None and time.ticks_diff(now, last_down) > _DEBOUNCE_MS:
                last_down = None
            for g in gestures.update(pressed, at):
                self.on_gesture(g)
            self.progress["button"] = now
            await asyncio.sleep_ms(_BUTTON_MS if gestures.down or gestures.count
                                   or self.states.state == alarmstate.PRE_ALARM else _BUTTON_IDLE_MS)

    async def sensor_task(self):
        failures = 0
        due = time.ticks_ms()
        while True:
            now = time.ticks_ms()
            if self.sensor is not None:
                try:
                    overruns = self.sensor.overruns
                    for _ in range(self.sensor.waiting()):
                        x, y, z = self.sensor.read()
                        code = self.detector.feed(x, y, z)
                        if code:
                            self.on_detector(code, now)
                    failures = 0
                    if self.sensor.overruns != overruns:
                        print("sensor: FIFO full: samples may be lost (the loop was held up)")
                except OSError as e:
                    failures += 1
                    if failures == _SENSOR_FAILURES:
                        print("sensor: %d reads failed (%r)" % (failures, e))
                        self.raise_technical("sensor_failed")
            self.carry_out(self.states.tick(now), now)
            background = self.session.tick(now)
            if self.states.state == alarmstate.PRE_ALARM:
                background = patterns.PRE_ALARM
            elif background is None and not self.link.online:
                background = patterns.NO_CONNECTION
            self.player.set_background(background)
            self.progress["sensor"] = now
            due = time.ticks_add(due, _SENSOR_MS)
            wait = time.ticks_diff(due, time.ticks_ms())
            if wait < -100:  # fell far behind (GC, flash write): resynchronise
                due = time.ticks_ms()
                wait = 0
            await asyncio.sleep_ms(max(0, wait))

    async def heartbeat_task(self):
        last_low = None
        while True:
            self.send_heartbeat()
            if self.battery_pct < self.cfg["low_battery_pct"] and (
                    last_low is None or time.ticks_diff(time.ticks_ms(), last_low) > _LOW_BATTERY_EVERY_MS):
                last_low = time.ticks_ms()
                print("battery: low, %d %% left" % self.battery_pct)
                self.player.play(patterns.LOW_BATTERY)
            self.progress["heartbeat"] = time.ticks_ms()
            await asyncio.sleep_ms(self.cfg["heartbeat_s"] * 1000)

    async def supervisor_task(self, tasks):
        wdt = machine.WDT(timeout=self.cfg["wdt_ms"])
        last_report = time.ticks_ms()
        stale_ms = self.cfg["wdt_ms"] // 2
        flash_reported = False
        while True:
            now = time.ticks_ms()
            if not flash_reported and self.box.flash_error is not None:
                # Alarms still go out, but one in RAM only would not outlive
                # a reboot: the desk should have the device seen to.
                flash_reported = True
                self.raise_technical("flash_failed")
            for name in ("button", "sensor"):
                if time.ticks_diff(now, self.progress.get(name, now)) > stale_ms:
                    print("supervisor: %s task stalled, letting the watchdog reset" % name)
                    return
            for task in tasks:
                if task.done():
                    print("supervisor: a task ended, resetting")
                    machine.reset()
            wdt.feed()
            if time.ticks_diff(now, last_report) >= _HEAP_REPORT_MS:
                # Live heap: what is still referenced after a collection.
                last_report = now
                gc.collect()
                used = gc.mem_alloc()
                self.heap_peak = max(self.heap_peak, used)
                print("heap: used %d peak %d free %d" % (used, self.heap_peak, gc.mem_free()))
                if self.reserve is None:
                    try:
                        self.reserve = bytearray(_RESERVE)
                    except MemoryError:
                        pass  # no block that size yet; the next report tries again
            await asyncio.sleep_ms(_SUPERVISOR_MS)

    async def run(self):
        try:
            self.sensor = sensor.open_sensor(self.cfg["sensor"], self.board.i2c)
        except sensor.SensorError as e:
            # Panic still works without the sensor; the desk must know man-down does not.
            print("sensor: %s" % e)
            self.raise_technical("sensor_missing")
        tasks = []
        for name, coro in (("button", self.button_task()), ("sensor", self.sensor_task()),
                           ("player", self.player.run()), ("link", self.link.run()),
                           ("heartbeat", self.heartbeat_task())):
            tasks.append(asyncio.create_task(guarded(name, coro)))
        await self.supervisor_task(tasks)
        # Only reached when a task stalled: stop feeding; the watchdog resets.
        while True:
            await asyncio.sleep_ms(1000)


async def guarded(name, coro):
    try:
        await coro
    except Exception as e:
        print("task %s died:" % name)
        sys.print_exception(e)
        machine.reset()


def _forget(name):
    # Code run at boot or on a rare command need not occupy the heap in
    # between (modules are not frozen in flash). The caller drops its own
    # reference first: a local naming the module would keep it alive, and
    # main()'s locals live as long as the device runs.
    del sys.modules[name]
    gc.collect()


def main():
    import config
    try:
        cfg = config.load()
        mandown.validate(cfg["mandown"])  # its own settings are checked by it
    except (config.ConfigError, ValueError) as e:
        import badconfig
        badconfig.show_bad_config(str(e))
        return
    boot = config.next_boot()
    del config
    _forget("config")
    asyncio.run(App(cfg, boot).run())
