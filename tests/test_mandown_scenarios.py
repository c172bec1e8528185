"""The man-down detector on long synthetic traces: each scenario of the issue
gets the outcome a security desk needs (simulator/traces.py builds them)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "firmware"))

import mandown  # noqa: E402
from simulator import traces  # noqa: E402

WALK_S = 60  # every trace starts with a minute of walking
MAN_DOWN = {mandown.FALL, mandown.NO_MOTION, mandown.TILT}


def events(samples, detector=None):
    """(event name, seconds after the walk) for every event the detector reports."""
    detector = detector or mandown.Detector()
    out = []
    for i, (x, y, z) in enumerate(samples):
        code = detector.feed(x, y, z)
        if code:
            out.append((mandown.NAMES[code], i / mandown.RATE_HZ - WALK_S))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fall_then_motionless_raises_fall_within_seconds(seed):
    got = events(traces.fall_then_motionless(seed))
    assert [name for name, _ in got] == ["fall"]
    # The fall itself happens within the first second after the walk.
    assert 1.5 <= got[0][1] <= 6


@pytest.mark.parametrize("seed", [0, 1, 2, 4])
@pytest.mark.parametrize("orientation", [(0, 0, 0), (30, 60, -20)])
def test_fall_off_a_reclined_seat_counts_its_turn_from_the_seat(seed, orientation):
    # Leaning forward to get up passes the trunk near upright; from there
    # the fall turns it only ~50 degrees, from the seat ~65.
    got = events(traces.fall_from_reclined_seat(seed, orientation))
    assert [name for name, _ in got] == ["fall"]


@pytest.mark.parametrize("seed", [1, 2])
def test_soft_fall_is_reported_after_a_longer_stillness(seed):
    # A collapse with a soft landing (1.7-2 g, under firm_impact_g) needs
    # soft_fall_still_s of stillness instead of fall_still_s.
    got = events(traces.fall_then_motionless(seed, impact_mg=1400))
    assert [name for name, _ in got] == ["fall"]
    assert 4.5 <= got[0][1] <= 8


def test_fall_too_soft_to_count_as_an_impact_is_caught_by_tilt():
    # With this seed the landing peaks at 1.36 g, below impact_g.
    got = events(traces.fall_then_motionless(0, impact_mg=1400))
    assert [name for name, _ in got] == ["tilt"]
    assert 29 <= got[0][1] <= 32


@pytest.mark.parametrize("seed", [0, 1])
def test_fall_then_getting_up_clears_the_alert(seed):
    got = events(traces.fall_then_recovers(seed))
    assert [name for name, _ in got] == ["fall", "cleared"]


@pytest.mark.parametrize("seed", [0, 1])
def test_wearer_moving_on_the_floor_after_a_fall_is_caught_by_tilt(seed):
    # Never still, so no "fall"; the long rule is the safety net.
    got = events(traces.fall_then_struggles(seed))
    assert [name for name, _ in got] == ["tilt"]
    assert 29 <= got[0][1] <= 33


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_hour_at_a_desk_with_small_movements_raises_nothing(seed):
    assert events(traces.desk_sitting(seed)) == []


@pytest.mark.parametrize("seed", [0, 1])
def test_slow_slide_to_the_floor_is_caught_by_tilt_not_fall(seed):
    got = events(traces.slow_slide(seed))
    assert [name for name, _ in got] == ["tilt"]
    # Down after ~15 s of sliding, then tilt_s (30 s) of lying.
    assert 35 <= got[0][1] <= 50


def test_slow_slide_is_caught_by_no_motion_when_tilt_is_off():
    detector = mandown.Detector({"tilt_s": 600})
    got = events(traces.slow_slide(0), detector)
    assert [name for name, _ in got] == ["no_motion"]
    assert 60 <= got[0][1] <= 80


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dropped_device_left_on_a_table_is_not_worn_not_man_down(seed):
    got = events(traces.device_dropped(seed))
    assert [name for name, _ in got] == ["not_worn"]
    assert got[0][1] <= 30


def test_device_picked_up_again_reports_worn():
    samples = traces.device_dropped(0, after_s=40) + traces.jump(1)
    names = [name for name, _ in events(samples)]
    assert names[:2] == ["not_worn", "worn"]
    assert not MAN_DOWN & {mandown.NAMES.index(n) for n in names}


@pytest.mark.parametrize("scenario", ["jump", "stumble"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jump_and_stumble_raise_nothing(scenario, seed):
    assert events(traces.SCENARIOS[scenario](seed)) == []


@pytest.mark.parametrize("scenario", ["bend_after_walk", "bend_at_the_last_step",
                                      "lie_down_and_turn", "collapse_into_chair"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_everyday_movements_after_a_walk_raise_nothing(scenario, seed):
    # A footstep is an impact, but nobody lands with it: bending or lying
    # down a moment later is not a fall. Dropping back into a chair hard
    # turns the trunk a lot, but it ends sitting.
    assert events(traces.SCENARIOS[scenario](seed)) == []


def test_reset_rearms_after_an_alarm():
    detector = mandown.Detector()
    first = events(traces.fall_then_motionless(0, after_s=10), detector)
    assert [n for n, _ in first] == ["fall"]
    detector.reset()
    # Still on the floor after the alarm was handled: the tilt rule warns again.
    second = events(traces.fall_then_motionless(0, after_s=60)[-40 * mandown.RATE_HZ:], detector)
    assert [n for n, _ in second] == ["tilt"]


def test_upright_is_learned_while_walking():
    detector = mandown.Detector()
    assert detector.upright is None
    events(traces.jump(0)[:WALK_S * mandown.RATE_HZ], detector)
    x, y, z = detector.upright
    # Body frame of the traces: upright reads about (0, -1 g, 0), leaning a little.
    assert y < -900 and abs(x) < 150 and abs(z) < 200


def test_csv_written_in_the_dataset_format(tmp_path):
    from simulator import sisfall

    samples = traces.jump(0)
    path = str(tmp_path / "jump.csv.gz")
    traces.write_csv(path, samples)
    assert sisfall.read_csv(path) == samples


def test_device_clipped_on_another_way_mid_shift_is_relearned_after_one_tilt():
    walk_s = 60 * mandown.RATE_HZ
    samples = traces.jump(0)[:walk_s] + traces.jump(1, orientation=(30, 20, 100))[:walk_s] * 2
    detector = mandown.Detector()
    got = []
    for i, (x, y, z) in enumerate(samples):
        code = detector.feed(x, y, z)
        if code:
            got.append((mandown.NAMES[code], i // mandown.RATE_HZ))
            detector.reset()  # the wearer cancels the pre-alarm
    # Walking the new way round looks tilted until upright is relearned:
    # one tilt pre-alarm after tilt_s, then nothing for the rest of the walk.
    assert [name for name, _ in got] == ["tilt"]
    assert 60 + 29 <= got[0][1] <= 60 + 32
