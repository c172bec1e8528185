"""The accelerometer drivers read what the chip's FIFO kept, so a firmware
that reads late loses no sample: the real drivers (firmware/lis3dh.py,
firmware/mpu6050.py) on the virtual board's register-level fakes, under the
real MicroPython VM. Each sample of the trace is numbered in its x and y, so
a lost or repeated sample shows."""

import struct
import subprocess

import pytest

from simulator.paths import FIRMWARE, MICROPYTHON, VBOARD

# Multiples of 500 mg are exact on both chips at +-8 g (4 mg and 1/4096 g steps).
STEP_MG = 500


def numbered(k):
    return (STEP_MG * (k % 16) - 4000, STEP_MG * ((k // 16) % 16) - 4000, -1000)


def number_of(x, y):
    return (x + 4000) // STEP_MG + 16 * ((y + 4000) // STEP_MG)


SCRIPT = """
import time
import machine
import vboard_core
import {chip} as driver
vboard_core._command(["accel", {trace!r}, "1"])
sensor = driver.Sensor(machine.I2C(0))
for late_ms in {lateness}:
    time.sleep_ms(late_ms)
    n = sensor.waiting()
    got = [sensor.read() for _ in range(n)]
    print("read", late_ms, sensor.overruns, " ".join("%d,%d" % (x, y) for x, y, z in got))
"""


def read_late(tmp_path, chip, lateness_ms):
    """What the driver reads after each of the waits: (overruns so far, sample numbers)."""
    trace = tmp_path / "numbered.bin"
    trace.write_bytes(b"".join(struct.pack("<hhh", *numbered(k)) for k in range(256)))
    result = subprocess.run(
        [str(MICROPYTHON), "-c", SCRIPT.format(chip=chip, trace=str(trace), lateness=list(lateness_ms))],
        env={"MICROPYPATH": "%s:%s:.frozen" % (VBOARD, FIRMWARE), "LW_VBOARD_SENSOR": chip,
             "LW_VBOARD_LOG": str(tmp_path / "vboard.log")},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    reads = []
    for line in result.stdout.splitlines():
        _, _, overruns, *samples = line.split()
        reads.append((int(overruns), [number_of(*map(int, s.split(","))) for s in samples]))
    return reads


def consecutive(numbers):
    return all((b - a) % 256 == 1 for a, b in zip(numbers, numbers[1:]))


@pytest.mark.parametrize("chip", ["lis3dh", "mpu6050"])
def test_a_read_that_comes_late_still_gets_every_sample(tmp_path, chip):
    reads = read_late(tmp_path, chip, [20, 300, 20, 450, 100])
    numbers = [n for _, samples in reads for n in samples]
    assert consecutive(numbers), reads
    # 890 ms at 50 Hz, less the part of a sample period before the first and after the last
    assert 42 <= len(numbers) <= 46, reads
    assert len(reads[1][1]) >= 14 and len(reads[3][1]) >= 21   # the late reads caught up
    assert all(overruns == 0 for overruns, _ in reads)


def test_a_lis3dh_read_later_than_its_fifo_holds_gets_the_newest_32_and_says_so(tmp_path):
    (before, first), (after, late) = read_late(tmp_path, "lis3dh", [100, 1000])
    assert before == 0 and after == 1
    assert len(late) == 32 and consecutive(late)
    assert (late[0] - first[-1]) % 256 > 1                     # the oldest were dropped


def test_an_mpu6050_read_later_than_its_fifo_holds_starts_afresh_and_says_so(tmp_path):
    # 1024 bytes hold 170 samples (3.4 s); past that a sample may start mid-way.
    (before, _), (after, dropped), (_, fresh) = read_late(tmp_path, "mpu6050", [100, 3600, 200])
    assert before == 0 and after == 1 and dropped == []
    assert 9 <= len(fresh) <= 11 and consecutive(fresh)
