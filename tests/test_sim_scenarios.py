"""`lonewatch sim --scenario FILE --check`, as a user runs it: every shipped
scenario passes with fleet devices against the embedded broker and the real
gateway, a scenario whose expectations are not met fails and says what
differed, and a scenario file with mistakes is refused with all of them.

The shipped scenarios run at once, each in its own process (the longest, a
lone-work session of the protocol's shortest 60 s, sets the pace). Each runs
again with every device running the firmware under micropython on a 96 KB
heap: the
man-down ones play their trace on the board's accelerometer, a SisFall fall
when ../shared is there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SISFALL
from simulator.scenario import SCENARIOS, load, shipped

LONEWATCH = str(Path(sys.executable).parent / "lonewatch")
NAMES = [p.stem for p in shipped()]
FIRMWARE_NAMES = NAMES  # every shipped scenario: none asks of a device what the firmware cannot do


def sim(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([LONEWATCH, "sim", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def shipped_runs():
    runs = {p.stem: ["--scenario", str(p), "--check"] for p in shipped()}
    runs.update({f"{name} --firmware": ["--scenario", str(SCENARIOS / f"{name}.toml"), "--check", "--firmware",
                                        "--heap", "96k"] for name in FIRMWARE_NAMES})
    procs = {name: subprocess.Popen([LONEWATCH, "sim", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
             for name, args in runs.items()}
    results = {}
    try:
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=150)
            results[name] = (proc.returncode, out)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    return results


def test_the_issue_s_scenarios_are_shipped():
    for word in ("normal-shift", "panic", "fall", "fall-cancelled", "no-motion", "tilt", "broker-outage",
                 "lone-work-overdue", "battery", "switched-off", "gateway-killed"):
        assert any(word in name for name in NAMES), word


def test_simulators_started_together_never_choose_the_same_port():
    # Two simulators whose random numbers agree, as a score of them started
    # at once now and then do: the second is refused the first one's port
    # while the first holds it, though it is not bound yet.
    choose = ("import random, sys; from simulator import ports; random.seed(7); "
              "print(ports.claimed_port(), flush=True); sys.stdin.read()")
    first = subprocess.Popen([sys.executable, "-c", choose], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        taken = first.stdout.readline()
        second = subprocess.run([sys.executable, "-c", choose], input="", capture_output=True, text=True, timeout=30)
        assert second.returncode == 0, second.stderr
        assert int(second.stdout) != int(taken)
    finally:
        first.kill()
        first.wait()


@pytest.mark.parametrize("name", NAMES + [f"{name} --firmware" for name in FIRMWARE_NAMES])
def test_shipped_scenario_passes_its_check(shipped_runs, name):
    code, out = shipped_runs[name]
    assert code == 0, out[-4000:]
    assert f"scenario {name.split()[0]}: everything expected happened, and nothing else" in out
    assert "went wrong:         nothing" in out
    if name.endswith("--firmware"):
        assert "0 fleet device(s) and" in out and "running the firmware under micropython, 96 KB heap" in out


@pytest.mark.parametrize("name", ["fall", "fall --firmware"])
def test_the_fall_is_a_sisfall_recording_when_the_data_set_is_there(shipped_runs, name):
    code, out = shipped_runs[name]
    played = "dev-1 fall: SisFall recording " if (SISFALL / "manifest.csv").exists() else "dev-1 fall: synthetic fall"
    assert f"man-down trace:     {played}" in out, out[-2000:]


@pytest.mark.parametrize("name", ["gateway-killed-panic", "gateway-killed-panic --firmware"])
def test_the_gateway_is_killed_not_stopped(shipped_runs, name):
    code, out = shipped_runs[name]
    # Two gateway processes ran on the database; only the last one stopped
    # cleanly (the simulator's own stop): the first was sent SIGKILL.
    assert out.count("lonewatch.gateway: gateway gw-1 started") == 2, out[-4000:]
    assert out.count("lonewatch.stack: stopping") == 1, out[-4000:]


def test_unmet_expectations_and_unexpected_incidents_fail_the_check_and_are_listed(tmp_path):
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("""
name = "wrong"
duration_s = 5
[settings]
heartbeat_s = 1
[[devices]]
name = "dev-1"
[[devices]]
name = "dev-2"
[[timeline]]
at = 1
do = "hold"
device = "dev-1"
[[expect]]
device = "dev-2"
type = "panic"
[felt]
dev-1 = ["alarm_queued"]
""")
    result = sim("--scenario", str(wrong), "--check")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "scenario wrong: 3 difference(s)" in out
    assert "missing: PANIC on dev-2" in out
    assert "unexpected: PANIC on dev-1 at 3." in out
    assert "felt on dev-1: expected ['alarm_queued'], got ['alarm_queued', 'delivered']" in out


def test_a_scenario_with_mistakes_is_refused_naming_each(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("""
duration_s = "long"
[[devices]]
name = "Dev 1"
[[devices]]
name = "dev-2"
kind = "robot"
[[timeline]]
at = 1
do = "jump"
device = "dev-2"
[[timeline]]
at = 2
do = "hold"
device = "dev-9"
[[expect]]
device = "dev-2"
type = "fire"
""")
    result = sim("--scenario", str(bad), "--check")
    assert result.returncode == 2
    for problem in ("duration_s must be float", "name must match", "kind must be one of fleet, firmware",
                    "do must be one of", "device must be one of the [[devices]], got 'dev-9'",
                    "type must be one of panic"):
        assert problem in result.stderr, result.stderr


def test_every_shipped_scenario_loads_and_says_what_it_shows():
    for path in shipped():
        scenario = load(path)
        assert scenario.name == path.stem
        assert scenario.description
