"""What a wearer's body does when a scenario says `fall`, `no_motion` or
`tilt`: the 50 Hz trace the device's accelerometer feels from then on, and
when the firmware's own detector (firmware/mandown.py) reports it.

A firmware device plays the trace on its virtual accelerometer and its
detector decides; a fleet device has no accelerometer, so the same detector
runs over the same trace here and the fleet device is told its verdict when
the detector would have given it. Either way the alarm comes after the
detector's own seconds, not at the moment of the action.

A fall is a recorded one from SisFall when the recordings are there
(`lonewatch sim --data DIR`, by default ../shared/datasets/sisfall-50hz
beside the checkout), else the synthetic fall of simulator/traces.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from contract.vocabulary import MAN_DOWN_CAUSES
from simulator import sisfall, traces
from simulator.firmware_logic import mandown

DEFAULT_SISFALL = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "sisfall-50hz"
# Falls that start on one's feet (slips, trips, fainting: the data set's
# README), so they follow on from the walking every wearer does before.
FALLS_FROM_STANDING = ("F01", "F02", "F03", "F04", "F05", "F06", "F07")
# Each trace starts this long before what makes it an event (the impact of
# a fall), still walking.
LEAD_S = 3
WALK_LOOP_S = 10
# Every synthetic trace starts with a minute of walking (simulator/traces.py).
_WALK_END = 60 * traces.RATE_HZ
MAN_DOWN = MAN_DOWN_CAUSES  # the actions a body performs, named after what the detector would report


@dataclass
class Motion:
    action: str
    samples: list          # (x, y, z) milli-g at 50 Hz, from the action on
    source: str            # where the trace comes from, for the summary
    verdict: str | None    # what the detector reports on it: fall, no_motion, tilt, or None
    after_s: float | None  # when, in seconds from the start of the trace

    def describe(self) -> str:
        if self.verdict is None:
            return f"{self.action}: {self.source}; the detector reports nothing on it"
        return f"{self.action}: {self.source}; the detector reports {self.verdict} after {self.after_s:.1f} s"


def walking(seed: int) -> list:
    """A wearer walking, looped as a firmware device's background: its
    detector learns which way is up, and a wearer on the move never reads
    as motionless."""
    return traces.fall_then_motionless(seed=seed, after_s=0)[_WALK_END - WALK_LOOP_S * traces.RATE_HZ:_WALK_END]


def sisfall_folder(data: str | None) -> Path | None:
    """The SisFall-format folder to take falls from: `data` if given (it must
    be one), else the default beside the checkout if it is there."""
    if data is not None:
        sisfall.read_manifest(data)  # DatasetError saying what is wrong
        return Path(data)
    return DEFAULT_SISFALL if (DEFAULT_SISFALL / "manifest.csv").is_file() else None


def motion(action: str, seed: int, mandown_config: dict | None, data: Path | None) -> Motion:
    """The trace for a man-down action and the detector's verdict on it."""
    if action == "fall" and data is not None:
        recorded = _recorded_fall(seed, mandown_config, data)
        if recorded is not None:
            return recorded
        synthetic = _synthetic(action, seed, mandown_config)
        synthetic.source += f" (no fall from standing in {data} that the detector reports)"
        return synthetic
    return _synthetic(action, seed, mandown_config)


def _synthetic(action: str, seed: int, mandown_config: dict | None) -> Motion:
    if action == "fall":
        samples = traces.from_before_impact(traces.fall_then_motionless(seed=seed, after_s=120), LEAD_S)
        source = f"synthetic fall (simulator/traces.py, seed {seed})"
    elif action == "tilt":
        samples = traces.slow_slide(seed=seed, after_s=120)[_WALK_END - LEAD_S * traces.RATE_HZ:]
        source = f"synthetic slow slide down a wall (seed {seed})"
    elif action == "no_motion":
        samples = traces.collapse_into_chair(seed=seed, after_s=120)[_WALK_END - LEAD_S * traces.RATE_HZ:]
        source = f"synthetic collapse into a chair, then motionless (seed {seed})"
    else:
        raise ValueError(f"{action!r} is not a man-down action ({', '.join(MAN_DOWN)})")
    return _judged(action, samples, source, seed, mandown_config)


def _recorded_fall(seed: int, mandown_config: dict | None, data: Path) -> Motion | None:
    """The first fall from standing, from a place in the data set the seed
    picks, that the detector reports as a fall: a recording it misses shows
    the detector's blind spots (docs/mandown.md), not the alarm path."""
    falls = sorted((r for r in sisfall.read_manifest(str(data))
                    if r.is_fall and r.activity in FALLS_FROM_STANDING), key=lambda r: r.file)
    start = random.Random(seed).randrange(len(falls)) if falls else 0
    for recording in falls[start:] + falls[:start]:
        samples = traces.from_before_impact(recording.load(), LEAD_S)
        found = _judged("fall", samples, f"SisFall recording {recording.file}", seed, mandown_config)
        if found.verdict == "fall":
            return found
    return None


def _judged(action, samples, source, seed, mandown_config) -> Motion:
    """The detector's verdict, after the walking it has seen before."""
    detector = mandown.Detector(mandown_config)
    for x, y, z in walking(seed):
        detector.feed(x, y, z)
    for n, (x, y, z) in enumerate(samples):
        event = detector.feed(x, y, z)
        if event in mandown.DOWN:
            return Motion(action, samples, source, mandown.NAMES[event], (n + 1) / traces.RATE_HZ)
    return Motion(action, samples, source, None, None)

