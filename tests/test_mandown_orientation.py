"""Mounting orientation does not matter: the detector learns upright from
walking, so the same motion seen through a rotated device gives the same events,
on synthetic traces and on real SisFall recordings."""

import random
import sys

import pytest

from conftest import FIRMWARE, SISFALL

sys.path.insert(0, str(FIRMWARE))

import mandown  # noqa: E402
from simulator import sisfall, traces  # noqa: E402

ORIENTATIONS = [(0, 0, 0), (90, 0, 0), (0, 90, 0), (0, 0, 90), (0, 0, 180), (90, 0, 90), (37, -61, 143)]


def events(samples, upright_from=None):
    detector = mandown.Detector()
    if upright_from is not None:
        for x, y, z in upright_from:
            detector.feed(x, y, z)
        detector = _fresh_with_upright(detector.upright)
    out = []
    for i, (x, y, z) in enumerate(samples):
        code = detector.feed(x, y, z)
        if code:
            out.append((mandown.NAMES[code], i // mandown.BLOCK))
    return out


def _fresh_with_upright(upright):
    detector = mandown.Detector()
    if upright:
        detector.assume_upright(*upright)
    return detector


def same_outcome(a, b):
    # Rounding after a rotation may move an event by one 0.5 s block.
    return [n for n, _ in a] == [n for n, _ in b] and all(
        abs(ta - tb) <= 1 for (_, ta), (_, tb) in zip(a, b))


@pytest.mark.parametrize("orientation", ORIENTATIONS[1:])
@pytest.mark.parametrize("scenario, expected", [
    ("fall_then_motionless", ["fall"]),
    ("slow_slide", ["tilt"]),
    ("device_dropped", ["not_worn"]),
    ("stumble", []),
])
def test_synthetic_scenario_gives_the_same_events_at_any_mounting(scenario, expected, orientation):
    make = traces.SCENARIOS[scenario]
    upright = events(make(3, (0, 0, 0)))
    rotated = events(make(3, orientation))
    assert [n for n, _ in upright] == expected
    assert same_outcome(upright, rotated), (upright, rotated)


def test_rotating_a_recorded_trace_keeps_the_events():
    samples = traces.fall_then_recovers(5)
    reference = events(samples)
    assert [n for n, _ in reference] == ["fall", "cleared"]
    for orientation in ORIENTATIONS[1:]:
        assert same_outcome(events(traces.rotate(samples, orientation)), reference), orientation


def _sisfall_pick():
    if not (SISFALL / "manifest.csv").exists():
        pytest.skip("SisFall data not found at %s (../shared relative to the repo root)" % SISFALL)
    recordings = sisfall.read_manifest(str(SISFALL))
    subject = [r for r in recordings if r.subject == "SA03"]
    walking = next(r for r in subject if r.activity == "D01")
    # Trial 1 of every fall and of the ADL most often confused with one.
    wanted = {r.activity for r in subject if r.is_fall} | {"D08", "D10", "D11", "D13", "D14", "D19"}
    picked = [r for r in subject if r.trial == 1 and r.activity in wanted]
    return walking, picked


def test_rotated_sisfall_recordings_give_the_same_detections():
    walking, picked = _sisfall_pick()
    walk = walking.load()
    rng = random.Random(4)
    orientations = [(rng.uniform(-180, 180), rng.uniform(-90, 90), rng.uniform(-180, 180))
                    for _ in range(2)] + [(0, 0, 180)]
    detected = 0
    for rec in picked:
        samples = rec.load()
        reference = events(samples, upright_from=walk)
        detected += any(n == "fall" for n, _ in reference)
        for orientation in orientations:
            rotated = events(traces.rotate(samples, orientation),
                             upright_from=traces.rotate(walk, orientation))
            assert same_outcome(rotated, reference), (rec.file, orientation, reference, rotated)
    # The comparison means something only if the falls are found in the first place.
    assert detected >= 12
