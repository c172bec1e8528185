"""Driving simulated devices by hand while `lonewatch sim` runs: the HTTP
control endpoint on 127.0.0.1 lists the devices with their state and makes a
wearer hold panic, cut its Wi-Fi, drain its battery; the terminal prompt does
the same; Ctrl-C stops it all within 5 s, also at a thousand devices."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port

LONEWATCH = str(Path(sys.executable).parent / "lonewatch")


class Sim:
    def __init__(self, *args: str):
        self.control = free_port()
        self.lines: list[str] = []
        self.proc = subprocess.Popen([LONEWATCH, "sim", "--control-port", str(self.control), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(lambda: "Press Ctrl-C to stop" in self.output(), "the banner", 30)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, predicate, what: str, timeout: float = 10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            assert self.proc.poll() is None, f"sim ended waiting for {what}:\n{self.output()}"
            time.sleep(0.05)
        raise AssertionError(f"no {what} in {timeout} s:\n{self.output()[-3000:]}")

    def get(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.control}{path}", timeout=5) as r:
            return json.load(r)

    def post(self, path: str):
        request = urllib.request.Request(f"http://127.0.0.1:{self.control}{path}", method="POST")
        with urllib.request.urlopen(request, timeout=5) as r:
            return json.load(r)

    def device(self, name: str) -> dict:
        return next(d for d in self.get("/devices") if d["device"] == name)

    def stop(self, sig=signal.SIGINT) -> float:
        started = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(15)
        return time.monotonic() - started


@pytest.fixture
def running():
    sims = []

    def start(*args):
        sims.append(Sim(*args))
        return sims[-1]

    yield start
    for s in sims:
        if s.proc.poll() is None:
            s.proc.kill()


def test_control_endpoint_lists_devices_and_drives_them(running):
    sim = running("--devices", "2", "--seed", "4")
    sim.wait_for(lambda: all(d["online"] for d in sim.get("/devices")), "both devices online")
    assert [d["device"] for d in sim.get("/devices")] == ["sim-001", "sim-002"]

    sim.post("/devices/sim-001/hold?ms=2300")
    sim.wait_for(lambda: "delivered" in sim.device("sim-001")["felt"], "delivered felt on sim-001")
    assert sim.device("sim-001")["state"] == "delivered"

    sim.post("/devices/sim-002/cut_wifi")
    sim.wait_for(lambda: not sim.device("sim-002")["online"], "sim-002 offline")
    sim.post("/devices/sim-002/restore_wifi")
    sim.wait_for(lambda: sim.device("sim-002")["online"], "sim-002 back online")

    sim.post("/devices/sim-002/battery?pct=9")  # done when answered (Fleet.device_action)
    assert sim.device("sim-002")["battery_pct"] == 9

    for path, status in (("/devices/sim-009/press", 404), ("/devices/sim-001/dance", 400),
                         ("/devices/sim-001/hold?ms=long", 400), ("/devices/sim-001/press?force=1", 400)):
        with pytest.raises(urllib.error.HTTPError) as refused:
            sim.post(path)
        assert refused.value.code == status, path
        assert json.load(refused.value)["error"]

    assert sim.stop() < 5.0
    assert sim.proc.returncode == 0, sim.output()[-3000:]
    out = sim.output()
    assert "alarms raised:      1" in out
    assert "delivered (felt):   1" in out


def test_a_thousand_simulated_devices_stop_within_5_seconds(running):
    sim = running("--devices", "1000")
    sim.wait_for(lambda: sum(d["online"] for d in sim.get("/devices")) == 1000, "1,000 devices online", 90)
    took = sim.stop(signal.SIGINT)
    assert sim.proc.returncode == 0, sim.output()[-3000:]
    assert took < 5.0
    assert "devices connected:  1000 of 1000" in sim.output()


def test_the_terminal_prompt_drives_devices():
    import os
    import pty

    main, secondary = pty.openpty()
    proc = subprocess.Popen([LONEWATCH, "sim", "--devices", "1", "--control-port", str(free_port())],
                            stdin=secondary, stdout=secondary, stderr=subprocess.STDOUT)
    os.close(secondary)
    seen = bytearray()

    def read_until(text: bytes, timeout: float = 20, after: int = 0):
        deadline = time.monotonic() + timeout
        while text not in seen[after:]:
            assert time.monotonic() < deadline, seen.decode(errors="replace")[-2000:]
            try:
                seen.extend(os.read(main, 4096))
            except OSError:
                break

    try:
        read_until(b"commands: list")
        read_until(b"devices 1/1 online")
        os.write(main, b"hold sim-001 ms=2300\n")
        read_until(b"hold sim-001 {'ms': 2300}")
        os.write(main, b"list\n")
        read_until(b"sim-001")
        deadline = time.monotonic() + 15
        while b"delivered" not in seen.split(b"hold sim-001")[-1]:
            assert time.monotonic() < deadline, seen.decode(errors="replace")[-2000:]
            os.write(main, b"list\n")
            time.sleep(0.3)
            seen.extend(os.read(main, 65536))
        mark = len(seen)
        os.write(main, b"dance sim-001\n")
        read_until(b"commands: list", 5, after=mark)
        proc.send_signal(signal.SIGINT)
        read_until(b"alarms raised:      1")
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)


def test_joining_an_existing_broker_as_devices_only(mosquitto):
    out = subprocess.run([LONEWATCH, "sim", "--broker", mosquitto.url, "--devices", "2", "--duration", "2",
                          "--control-port", str(free_port())], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "devices connected:  2 of 2" in out.stdout
    assert "embedded" not in out.stdout and "incidents at the gateway" not in out.stdout
    refused = subprocess.run([LONEWATCH, "sim", "--broker", mosquitto.url, "--scenario",
                              "simulator/scenarios/panic.toml", "--check"], capture_output=True, text=True,
                             timeout=60, cwd=Path(__file__).resolve().parent.parent)
    assert refused.returncode == 2 and "run it without --broker" in refused.stderr
