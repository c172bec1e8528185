"""Host-side harness for firmware-in-the-loop tests and demos.

Runs the unmodified firmware/ under the unix MicroPython VM with the virtual
board (simulator/vboard/) first on the module path. A per-device directory
is the device's flash (config.json, outbox.log, boot.txt live there and
survive a kill -9 = power cut). The harness presses the button, plays
accelerometer traces, sets the battery voltage, takes Wi-Fi away, cuts the
link to the broker with a TCP proxy, kills and restarts the device, and reads
the recorded pin/PWM outputs and console.
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from simulator.paths import FIRMWARE, MICROPYTHON, MPY_CROSS, VBOARD
from simulator.ports import free_port

RESET_EXIT = 75  # vboard_core._RESET_EXIT: the board reset itself



def pin_map() -> dict[str, int]:
    """firmware/pins.py, the one pin map: name -> GPIO number."""
    namespace: dict = {}
    exec((FIRMWARE / "pins.py").read_text(), namespace)
    return {k: v for k, v in namespace.items() if k.isupper() and isinstance(v, int)}


PINS = {name.lower(): gpio for name, gpio in pin_map().items()}


def compile_firmware(out: Path, sources=FIRMWARE) -> Path:
    """Precompile firmware/*.py to .mpy as deployed to a device: compiling
    source at import costs more heap than a 100 KB ESP32 can spare. Each
    module is named by its file name alone (-s), as on the device: the name
    is interned on the heap when the module loads, and a host path would
    make it several times longer."""
    out.mkdir(parents=True, exist_ok=True)
    for src in sources.glob("*.py"):
        if src.name == "main.py":
            (out / "main.py").write_text(src.read_text())  # run as source at boot
            continue
        subprocess.run([str(MPY_CROSS), "-s", src.name, "-o", str(out / (src.stem + ".mpy")), str(src)],
                       check=True, capture_output=True)
    return out


def measure_vboard_heap(vboard_lib: Path, sensor="lis3dh") -> int:
    """Bytes of VM heap the virtual board's own modules keep alive."""
    script = (
        "import gc\ngc.collect()\nb=gc.mem_alloc()\n"
        "import vboard_core, machine, network\n"
        "i2c = machine.I2C(0)\nw = network.WLAN(0)\n"
        "gc.collect()\nprint(gc.mem_alloc() - b)\n")
    # With its control socket and outputs log open, as in a run: they, and
    # the socket's poll object, are the board's too.
    out = subprocess.run([str(MICROPYTHON), "-c", script], capture_output=True, text=True,
                         env={"MICROPYPATH": "%s:.frozen" % vboard_lib, "LW_VBOARD_SENSOR": sensor,
                              "LW_VBOARD_LOG": os.devnull,
                              "LW_VBOARD_PORT": str(free_port(socket.SOCK_DGRAM))},
                         check=True)
    return int(out.stdout.split()[-1])


def device_config(broker_port: int, **overrides) -> dict:
    """A device config with short timings for tests."""
    cfg = {
        "device": "dev-001",
        "site": "hq",
        "wifi_ssid": "lab-wifi",
        "wifi_password": "secret",
        "mqtt_host": "127.0.0.1",
        "mqtt_port": broker_port,
        "mqtt_tls": False,
        "keepalive_s": 5,
        "connect_timeout_s": 3,
        "backoff_max_s": 2,
        "puback_timeout_s": 3,
        "prealarm_s": 2,
        "heartbeat_s": 30,
        "ntp_host": "",
        "location": {"zone": "lab-3"},
        # A standing, breathing wearer must not trip the long rules mid-test.
        "mandown": {"no_motion_s": 600, "tilt_s": 600, "not_worn_s": 300},
    }
    cfg.update(overrides)
    return cfg


def standing_still(seconds=4, seed=1):
    """An upright wearer's small sway (milli-g, 50 Hz), to loop as background."""
    rng = random.Random(seed)
    return [(rng.randint(-40, 40), -1000 + rng.randint(-40, 40), rng.randint(-40, 40))
            for _ in range(seconds * 50)]


class LinkProxy:
    """A TCP proxy between device and broker; `cut()` is a lost link: open
    connections are reset and new ones refused until `restore()`."""

    def __init__(self, target_port: int, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.up = True
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(8)
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            with self._lock:
                socks = [self._listener] + [s for pair in self._pairs for s in pair]
            try:
                readable, _, _ = select.select(socks, [], [], 0.05)
            except (OSError, ValueError):
                continue
            for s in readable:
                if s is self._listener:
                    self._accept()
                else:
                    self._forward(s)

    def _accept(self):
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        if not self.up:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            client.close()  # reset: nothing behind this link
            return
        try:
            upstream = socket.create_connection(self.target, timeout=2)
        except OSError:
            client.close()
            return
        with self._lock:
            self._pairs.append((client, upstream))

    def _forward(self, s):
        with self._lock:
            pair = next((p for p in self._pairs if s in p), None)
        if pair is None:
            return
        other = pair[1] if s is pair[0] else pair[0]
        try:
            data = s.recv(65536)
            if data:
                other.sendall(data)
                return
        except OSError:
            pass
        self._close_pair(pair)

    def _close_pair(self, pair):
        with self._lock:
            if pair in self._pairs:
                self._pairs.remove(pair)
        for s in pair:
            try:
                s.close()
            except OSError:
                pass

    def cut(self):
        self.up = False
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            self._close_pair(pair)

    def restore(self):
        self.up = True

    def close(self):
        self.cut()
        self._stop = True
        self._thread.join(2)
        self._listener.close()


def _udp_port_bound(port: int) -> bool:
    """Whether a UDP socket is bound to `port` (Linux's /proc/net/udp)."""
    suffix = ":%04X" % port
    with open("/proc/net/udp") as table:
        next(table)  # the header
        return any(line.split()[1].endswith(suffix) for line in table)


class VirtualDevice:
    """One wearable: its flash directory, its MicroPython process, its board."""

    def __init__(self, workdir: Path, config: dict | None, broker_port: int | None = None,
                 sensor="lis3dh", device_heap_kb: int | None = None, proxy=True,
                 battery_mv=3900, background=None, power_on_after_reset=True):
        self.workdir = Path(workdir)
        self.flash = self.workdir / "flash"
        self.flash.mkdir(parents=True, exist_ok=True)
        self.outputs_path = self.workdir / "outputs.log"
        self.console_path = self.workdir / "console.log"
        self.sensor = sensor
        # With a device-sized heap, run what a device runs: precompiled modules.
        self.lib = compile_firmware(self.workdir / "lib") if device_heap_kb else FIRMWARE
        self.vboard = compile_firmware(self.workdir / "vboard", VBOARD) if device_heap_kb else VBOARD
        self.heapsize = None
        if device_heap_kb:
            # On the ESP32 `machine` and `network` are C in flash; here they are
            # Python on the same heap. Grant exactly what they measure on top.
            self.vboard_heap = measure_vboard_heap(self.vboard, sensor)
            self.heapsize = "%d" % (device_heap_kb * 1024 + self.vboard_heap)
        self.battery_mv = battery_mv
        self.background = standing_still() if background is None else background
        self.proxy = LinkProxy(broker_port) if (proxy and broker_port) else None
        if config is not None:
            if self.proxy and isinstance(config, dict):
                config = dict(config, mqtt_port=self.proxy.port)
            self.write_config(config)
        self.proc: subprocess.Popen | None = None
        self.console: list[str] = []
        self._console_cv = threading.Condition()
        self._trace_n = 0
        self.ctl_port = None
        self._ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.boots = 0
        # A real board comes back up after machine.reset() or its watchdog.
        self.power_on_after_reset = power_on_after_reset

    # ---- lifecycle --------------------------------------------------------

    def write_config(self, config) -> None:
        text = config if isinstance(config, str) else json.dumps(config, indent=1)
        (self.flash / "config.json").write_text(text)

    def start(self, wait_online=True, timeout=15.0):
        self.ctl_port = free_port(socket.SOCK_DGRAM)
        # Paths relative to the flash folder the VM runs in: on a device they
        # are a few bytes ("/lib"), and the host's temporary folder, however
        # deep, must not take the device's heap (each is kept there).
        env = {
            "MICROPYPATH": "%s:%s:.frozen" % (os.path.relpath(self.vboard, self.flash),
                                              os.path.relpath(self.lib, self.flash)),
            "LW_VBOARD_PORT": str(self.ctl_port),
            "LW_VBOARD_LOG": os.path.relpath(self.outputs_path, self.flash),
            "LW_VBOARD_SENSOR": self.sensor,
            "LW_VBOARD_INIT": "adc %d %d" % (PINS["battery"], self._battery_uv(self.battery_mv)),
            "HOME": str(self.workdir),
        }
        cmd = [str(MICROPYTHON)]
        if self.heapsize:
            cmd += ["-X", "heapsize=" + self.heapsize]
        cmd += [os.path.relpath(self.lib / "main.py", self.flash)]
        mark = self.mark()
        self.proc = subprocess.Popen(cmd, cwd=self.flash, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.boots += 1
        threading.Thread(target=self._read_console, args=(self.proc,), daemon=True).start()
        self._wait_control_ready()
        self.play(self.background, loop=True)
        if wait_online:
            self.wait_console("link: online", timeout, after=mark)
        return self

    def _wait_control_ready(self, timeout=10.0):
        # The vboard binds its control port when the firmware first imports it.
        # Looked up in the kernel's socket table, not by binding the port to
        # see if it is taken: such a probe, held at the wrong moment, is what
        # makes the board's own bind fail.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return  # exited (bad config shows its pattern without a board)
            if _udp_port_bound(self.ctl_port):
                return
            time.sleep(0.02)
        raise TimeoutError("virtual board did not open its control port")

    def _read_console(self, proc):
        with open(self.console_path, "a") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                with self._console_cv:
                    self.console.append(line.rstrip("\n"))
                    self._console_cv.notify_all()
        with self._console_cv:
            self._console_cv.notify_all()
        if proc.wait() == RESET_EXIT and self.power_on_after_reset and proc is self.proc:
            self.start(wait_online=False)

    def wait_console(self, pattern: str, timeout=10.0, after=0) -> str:
        """Wait for a console line matching regex `pattern` (from line index `after`)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._console_cv:
            while True:
                for line in self.console[after:]:
                    if rx.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no console line matching %r in %.0f s; console:\n%s"
                                       % (pattern, timeout, "\n".join(self.console[-40:])))
                self._console_cv.wait(min(left, 0.2))

    def mark(self) -> int:
        """Console position, for waiting on lines printed after now."""
        with self._console_cv:
            return len(self.console)

    def kill(self):
        """Power cut: SIGKILL, nothing gets to flush or say goodbye."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        self.power_on_after_reset = False
        self.kill()
        if self.proxy:
            self.proxy.close()
        self._ctl.close()

    # ---- inputs -------------------------------------------------------------

    def _send(self, command: str):
        self._ctl.sendto(command.encode(), ("127.0.0.1", self.ctl_port))

    def button(self, down: bool):
        self._send("pin %d %d" % (PINS["button"], 0 if down else 1))  # active low

    def press(self, ms=150):
        self.button(True)
        time.sleep(ms / 1000)
        self.button(False)

    def presses(self, n, ms=150, gap_ms=250):
        """n presses; returns after a final gap so the next gesture is apart."""
        for _ in range(n):
            self.press(ms)
            time.sleep(gap_ms / 1000)

    def play(self, samples, loop=False):
        """Play (x, y, z) milli-g samples at 50 Hz from now; without loop the
        last sample is held (a wearer lying still)."""
        self._trace_n += 1
        path = self.workdir / ("trace-%d.bin" % self._trace_n)
        path.write_bytes(b"".join(struct.pack("<hhh", *s) for s in samples))
        self._send("accel %s %d" % (path, 1 if loop else 0))

    @staticmethod
    def _battery_uv(mv: int) -> int:
        divider = 2  # the 100k/100k divider in hardware/pinmap.md
        return mv * 1000 // divider

    def battery(self, mv: int):
        self._send("adc %d %d" % (PINS["battery"], self._battery_uv(mv)))

    def wifi(self, in_range: bool):
        self._send("wifi %d" % (1 if in_range else 0))

    def i2c_fault(self, mode: str):
        """ok, fail (bus errors) or crash (an exception the driver does not expect)."""
        self._send("i2c " + mode)

    def stall(self, ms: int):
        """Hold the firmware's one core for `ms` at its next hardware access, as
        a blocking flash erase or TLS handshake would; the sensor samples on."""
        self._send("stall %d" % ms)

    def cut_link(self):
        self.proxy.cut()

    def restore_link(self):
        self.proxy.restore()

    # ---- outputs ------------------------------------------------------------

    def outputs(self, since_ms: float = 0):
        """Recorded output changes: (epoch_ms, kind, gpio, values)."""
        rows = []
        if not self.outputs_path.exists():
            return rows
        since_ms = int(since_ms)  # the board stamps whole milliseconds; loopback MQTT is faster
        for line in self.outputs_path.read_text().splitlines():
            parts = line.split()
            if len(parts) < 3 or int(parts[0]) < since_ms:
                continue
            rows.append((int(parts[0]), parts[1], parts[2], parts[3:]))
        return rows

    def output_on(self, name: str, since_ms: float = 0) -> list[int]:
        """Times (epoch ms) when output `name` (pins.py) turned on."""
        gpio = str(PINS[name])
        times = []
        for t, kind, pin, values in self.outputs(since_ms):
            if pin != gpio:
                continue
            if kind == "pin" and values[0] == "1":
                times.append(t)
            elif kind == "pwm" and int(values[1]) > 0:
                times.append(t)
        return times

    def heap_report(self):
        """(used, peak) from the firmware's last heap line, or None."""
        for line in reversed(self.console):
            m = re.search(r"heap: used (\d+) peak (\d+)", line)
            if m:
                return int(m.group(1)), int(m.group(2))
        return None
