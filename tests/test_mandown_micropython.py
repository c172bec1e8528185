"""The detector the device runs (firmware/mandown.py under the real MicroPython
VM) reports exactly the events CPython reports, and mpy-cross compiles it."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIRMWARE, MICROPYTHON, MPY_CROSS, SISFALL

sys.path.insert(0, str(FIRMWARE))

import mandown  # noqa: E402
from simulator import sisfall, traces  # noqa: E402

# Feeds every "x,y,z" line of a file through one detector and prints
# "sample_index event_name" per event; the same script runs under both VMs.
# With reset, the detector re-arms after each man-down event, as the firmware
# does once the alarm is handled.
FEED_SCRIPT = """
import sys
sys.path.insert(0, %(firmware)r)
import mandown
d = mandown.Detector(%(config)r)
i = 0
with open(%(data)r) as f:
    for line in f:
        x, y, z = line.split(",")
        e = d.feed(int(x), int(y), int(z))
        if e:
            print(i, mandown.NAMES[e])
            if %(reset)r and e in (mandown.FALL, mandown.NO_MOTION, mandown.TILT):
                d.reset()
        i += 1
"""


def run_both(tmp_path, samples, config=None, reset=False):
    data = tmp_path / "samples.csv"
    data.write_text("".join("%d,%d,%d\n" % s for s in samples))
    script = tmp_path / "feed.py"
    script.write_text(FEED_SCRIPT % {"firmware": str(FIRMWARE), "data": str(data), "config": config,
                                    "reset": reset})
    outputs = []
    for vm in (MICROPYTHON, Path(sys.executable)):
        done = subprocess.run([str(vm), str(script)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.split("\n"))
    return outputs


def test_micropython_reports_the_same_events_as_cpython_on_synthetic_traces(tmp_path):
    samples = (traces.fall_then_recovers(1) + traces.slow_slide(2, (10, 70, -30))
               + traces.device_dropped(3, after_s=30) + traces.stumble(4))
    on_device, on_host = run_both(tmp_path, samples)
    names = [line.split()[1] for line in on_host if line]
    assert {"fall", "cleared", "tilt", "not_worn", "worn"} <= set(names)
    assert on_device == on_host


def test_micropython_matches_cpython_on_sisfall_recordings(tmp_path):
    if not (SISFALL / "manifest.csv").exists():
        pytest.skip("SisFall data not found at %s (../shared relative to the repo root)" % SISFALL)
    recordings = sisfall.read_manifest(str(SISFALL))
    picked = [r for r in recordings if r.subject == "SE06" and r.trial == 2]
    samples = [s for r in [r for r in recordings if r.file == "SE06/D01_SE06_R01.csv.gz"] + picked
               for s in r.load()]
    on_device, on_host = run_both(tmp_path, samples, config={"no_motion_s": 30}, reset=True)
    assert sum("fall" in line for line in on_host) >= 10
    assert on_device == on_host


def test_mpy_cross_compiles_the_detector(tmp_path):
    out = tmp_path / "mandown.mpy"
    done = subprocess.run([str(MPY_CROSS), "-o", str(out), str(FIRMWARE / "mandown.py")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0
