"""What a simulated wearer's body does on `fall`: a SisFall-format recording
of a fall from standing that the detector reports, else the synthetic fall,
and the summary can say which. Small folders in the data set's format stand
in for SisFall here, so the choice is tested whatever ../shared holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from simulator import traces, wearer
from simulator.board import device_config
from simulator.scenario import SCENARIOS, load

LONEWATCH = str(Path(sys.executable).parent / "lonewatch")


def sisfall_folder(tmp_path, recordings: dict) -> Path:
    """recordings: file -> (activity, samples), written as SUBJECT/FILE.csv.gz with a manifest."""
    rows = ["file,kind,activity,subject,trial,samples"]
    for n, (name, (activity, samples)) in enumerate(sorted(recordings.items()), 1):
        (tmp_path / "SA01").mkdir(exist_ok=True)
        traces.write_csv(str(tmp_path / "SA01" / name), samples)
        rows.append(f"SA01/{name},fall,{activity},SA01,{n},{len(samples)}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def a_fall(seed):
    return traces.fall_then_motionless(seed=seed, after_s=15)[50 * traces.RATE_HZ:]


def a_stumble_caught_in_time(seed):
    return traces.stumble(seed=seed, after_s=10)[50 * traces.RATE_HZ:]


def test_a_recorded_fall_the_detector_misses_is_passed_over_for_one_it_reports(tmp_path):
    data = sisfall_folder(tmp_path, {"F01_SA01_R01.csv.gz": ("F01", a_stumble_caught_in_time(1)),
                                     "F02_SA01_R01.csv.gz": ("F02", a_fall(2)),
                                     "F03_SA01_R01.csv.gz": ("F03", a_stumble_caught_in_time(3))})
    for seed in range(6):
        motion = wearer.motion("fall", seed, None, data)
        assert motion.source == "SisFall recording SA01/F02_SA01_R01.csv.gz"
        assert motion.verdict == "fall"
        # Played from shortly before the impact: the detector reports it a few seconds in.
        assert wearer.LEAD_S < motion.after_s < wearer.LEAD_S + 9


def test_without_a_reported_fall_from_standing_the_synthetic_fall_plays_and_the_summary_says_why(tmp_path):
    # A fall from a seat (F13) is not one a walking wearer can have.
    data = sisfall_folder(tmp_path, {"F01_SA01_R01.csv.gz": ("F01", a_stumble_caught_in_time(1)),
                                     "F13_SA01_R01.csv.gz": ("F13", a_fall(2))})
    motion = wearer.motion("fall", 0, None, data)
    assert motion.source.startswith("synthetic fall")
    assert f"no fall from standing in {data} that the detector reports" in motion.source
    assert motion.verdict == "fall"


def test_the_man_down_scenarios_traces_give_the_verdict_each_names():
    for name, action in (("fall", "fall"), ("no-motion", "no_motion"), ("tilt", "tilt")):
        config = device_config(0, **load(SCENARIOS / f"{name}.toml").settings)["mandown"]
        for seed in range(4):
            motion = wearer.motion(action, seed, config, None)
            assert motion.verdict == action, f"{name}, seed {seed}: {motion.describe()}"


def test_a_fleet_device_driven_by_hand_goes_down_as_the_shipped_detector_judges(tmp_path):
    # No scenario: the devices of a bare `lonewatch sim`, a tilt and a
    # no-motion pressed on the control endpoint.
    from lonewatch.simworld import SimWorld

    world = SimWorld(tmp_path, devices=1)
    seed, config = world._bodies["sim-001"]
    for action in ("tilt", "no_motion"):
        assert wearer.motion(action, seed, config, None).verdict == action


def test_a_data_folder_that_is_not_sisfall_is_refused_before_anything_starts(tmp_path):
    result = subprocess.run([LONEWATCH, "sim", "--data", str(tmp_path), "--duration", "1"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert f"--data: {tmp_path}: no manifest.csv" in result.stderr
