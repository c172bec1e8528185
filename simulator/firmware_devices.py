"""Devices that run the unmodified firmware, each in its own `micropython`
process on a virtual board (simulator.board), driven by the same actions as
the fleet devices (simulator.scenario.DEVICE_ACTIONS).

What the wearer felt is read from the firmware's console: the state machine
prints each change (`state alarm -> delivered`), and each change plays one
feedback pattern (docs/firmware.md); the board's recorded outputs hold the
vibration and tones themselves.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from simulator import firmware_logic, wearer
from simulator.board import VirtualDevice, device_config

# Console lines -> the pattern the firmware played for them.
_FELT = (
    (re.compile(r"^state \w+ -> alarm$"), "alarm_queued"),
    (re.compile(r"^state alarm -> delivered$"), "delivered"),
    (re.compile(r"^state \w+ -> help_coming$"), "help_coming"),
    (re.compile(r"^state (alarm|delivered|help_coming) -> idle$"), "resolved"),
    (re.compile(r"^state pre_alarm -> idle$"), "cancelled"),
    (re.compile(r"^queued event \S+ check_in$"), "check_in"),
    (re.compile(r"^cmd: session_due"), "session_due"),
    (re.compile(r"^cmd: ping"), "ping"),
    (re.compile(r"^battery: low"), "low_battery"),
)
_SHORT_MS, _LONG_MS, _GAP_MS = 150, 1000, 300
EMPTY_MV, FULL_MV = 3300, 4150  # the firmware's default battery_empty_mv, battery_full_mv


def battery_mv(pct: int) -> int:
    return EMPTY_MV + (FULL_MV - EMPTY_MV) * max(0, min(100, pct)) // 100


class FirmwareDevice:
    def __init__(self, workdir: Path, name: str, site: str, broker: tuple[str, int], *, settings: dict | None = None,
                 sensor: str = "lis3dh", battery_pct: int = 90, heap_kb: int | None = None, seed: int = 0):
        self.device = name
        self.seed = seed
        self.battery = battery_pct
        cfg = device_config(broker[1], device=name, site=site, mqtt_host=broker[0], **(settings or {}))
        self.session_s = cfg.get("session_s", firmware_logic.config.SPEC["session_s"][0])
        self.board = VirtualDevice(workdir, cfg, broker_port=broker[1], sensor=sensor, device_heap_kb=heap_kb,
                                   proxy=False, battery_mv=battery_mv(battery_pct), background=wearer.walking(seed))
        self.powered = False
        self.wifi_on = True
        self._lock = threading.Lock()

    # ---- lifecycle ----------------------------------------------------------

    def start(self, timeout: float = 20.0) -> None:
        """Power on and wait for the firmware to boot; RuntimeError if it refuses its config."""
        mark = self.board.mark()
        self.board.start(wait_online=False)
        self.powered = True
        line = self.board.wait_console(r"^lonewatch |^CONFIG ERROR", timeout, after=mark)
        if line.startswith("CONFIG ERROR"):
            self.board.stop()
            raise RuntimeError(f"{self.device}: the firmware refuses its config: {line[len('CONFIG ERROR: '):]}")

    def stop(self) -> None:
        self.board.stop()
        self.powered = False

    # ---- what it shows --------------------------------------------------------

    @property
    def online(self) -> bool:
        """Online since its last boot, by its own console."""
        if not self.board.alive():
            return False
        state = None
        for line in self.board.console:
            if line.startswith("link: online"):
                state = True
            elif line.startswith("link: offline") or line.startswith("lonewatch "):
                state = False
        return bool(state)

    def felt(self) -> list[str]:
        out = []
        for line in list(self.board.console):
            for rx, pattern in _FELT:
                if rx.search(line):
                    out.append(pattern)
                    break
        return out

    def sent(self) -> int:
        """Alarms and events the broker took (the firmware does not print its heartbeats)."""
        return sum(1 for line in list(self.board.console)
                   if line.startswith("link: sent") or line.startswith("link: broker has alarm"))

    def state(self) -> str:
        for line in reversed(self.board.console):
            m = re.match(r"^state \w+ -> (\w+)$", line)
            if m:
                return m.group(1)
        return "idle" if self.board.alive() else "off"

    def describe(self) -> dict:
        return {"device": self.device, "kind": "firmware", "powered": self.board.alive(), "wifi": self.wifi_on,
                "online": self.online, "state": self.state(), "battery_pct": self.battery,
                "felt": self.felt()[-5:]}

    # ---- actions (blocking: run them off the event loop) -----------------------

    def act(self, action: str, params: dict) -> None:
        with self._lock:
            getattr(self, "_" + action)(**params)

    def _press(self, ms: int = 150) -> None:
        self.board.press(ms)

    def _hold(self, ms: int | None = None) -> None:
        self.board.press(ms or 2300)

    def _presses(self, n: int = 3) -> None:
        self.board.presses(n)

    def _check_in(self) -> None:
        self.board.presses(2)

    def move(self, motion: wearer.Motion) -> None:
        """A man-down action: the accelerometer feels the trace from now on; the firmware's detector decides."""
        self.board.play(motion.samples)

    def _cut_wifi(self) -> None:
        self.wifi_on = False
        self.board.wifi(False)

    def _restore_wifi(self) -> None:
        self.wifi_on = True
        self.board.wifi(True)

    def _battery(self, pct: int) -> None:
        self.battery = pct
        self.board.battery(battery_mv(pct))

    def _drain(self, to_pct: int = 10, over_s: float = 10.0) -> None:
        start, steps = self.battery, max(1, self.battery - to_pct)
        for n in range(1, steps + 1):
            time.sleep(over_s / steps)
            self._battery(start - n)

    def _power_off(self) -> None:
        self.board.kill()

    def _power_on(self) -> None:
        if not self.board.alive():
            self.board.start(wait_online=False)

    def _power_cycle(self, off_s: float = 1.0) -> None:
        self._power_off()
        time.sleep(off_s)
        self._power_on()

    # A long press is released between 0.6 s and hold_ms (docs/firmware.md).
    def _session_start(self, duration_s: int = 3600) -> None:
        if duration_s != self.session_s:
            raise ValueError(f"{self.device}: the wearable starts sessions of its session_s ({self.session_s} s), "
                             f"not {duration_s} s")
        self._gesture(_LONG_MS, _SHORT_MS)

    def _session_end(self) -> None:
        self._gesture(_SHORT_MS, _LONG_MS)

    def _gesture(self, *lengths_ms: int) -> None:
        for length in lengths_ms:
            self.board.press(length)
            time.sleep(_GAP_MS / 1000)
