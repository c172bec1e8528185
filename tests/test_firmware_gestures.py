"""Button gestures: hold >= 2 s or 3 presses within 2 s raise panic, a single
press never does, a double press is a check-in; long (0.6-2 s) and short
presses in pairs start, extend and end a lone-work session, and panic wins
in the middle of any of them. Runs under CPython and, via the last test,
under MicroPython."""

import sys

if sys.implementation.name == "cpython":
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "firmware"))

import gestures
from gestures import DOUBLE, PANIC, PRESS, SINGLE

SHORT, LONG = 150, 1000  # ms held

def play(g, timeline, until):
    """timeline: list of (start_ms, duration_ms) presses; sampled every 10 ms."""
    seen = []
    for now in range(0, until, 10):
        pressed = any(start <= now < start + length for start, length in timeline)
        for gesture in g.update(pressed, now):
            seen.append((now, gesture))
    return seen


def kinds(seen):
    return [g for _, g in seen if g != PRESS]


def test_hold_for_two_seconds_raises_panic_while_still_held(scratch):
    seen = play(gestures.Gestures(), [(100, 2500)], 4000)
    assert kinds(seen) == [PANIC]
    assert [t for t, g in seen if g == PANIC] == [2100]


def test_hold_just_short_of_two_seconds_is_not_panic(scratch):
    seen = play(gestures.Gestures(), [(100, 1900)], 5000)
    assert PANIC not in kinds(seen)
    assert kinds(seen) == [SINGLE]


def test_three_presses_within_two_seconds_raise_panic_at_the_third(scratch):
    seen = play(gestures.Gestures(), [(0, 150), (500, 150), (1000, 150)], 4000)
    assert kinds(seen) == [PANIC]
    assert [t for t, g in seen if g == PANIC] == [1000]


def test_three_presses_spread_over_more_than_two_seconds_are_not_panic(scratch):
    seen = play(gestures.Gestures(), [(0, 150), (1000, 150), (2100, 150)], 6000)
    assert PANIC not in kinds(seen)
    assert kinds(seen) == [DOUBLE, SINGLE]


def test_single_short_press_never_raises_panic(scratch):
    seen = play(gestures.Gestures(), [(0, 200)], 10000)
    assert kinds(seen) == [SINGLE]
    assert [g for _, g in seen][0] == PRESS  # reported at once, e.g. to cancel a pre-alarm


def test_double_press_is_a_check_in(scratch):
    seen = play(gestures.Gestures(), [(0, 150), (400, 150)], 4000)
    assert kinds(seen) == [DOUBLE]


def test_panic_by_holding_is_raised_once_and_the_release_starts_nothing(scratch):
    seen = play(gestures.Gestures(), [(0, 6000)], 10000)
    assert kinds(seen) == [PANIC]


def test_configured_thresholds_are_used(scratch):
    g = gestures.Gestures(hold_ms=1000, presses=4, window_ms=3000)
    assert kinds(play(g, [(0, 1100)], 2000)) == [PANIC]
    g = gestures.Gestures(hold_ms=1000, presses=4, window_ms=3000)
    seen = play(g, [(0, 100), (600, 100), (1200, 100), (1800, 100)], 5000)
    assert kinds(seen) == [PANIC]


def sequence(*lengths, gap=300):
    """Presses of the given lengths, `gap` ms apart."""
    timeline, t = [], 0
    for length in lengths:
        timeline.append((t, length))
        t += length + gap
    return timeline


def test_long_then_short_starts_a_session(scratch):
    assert kinds(play(gestures.Gestures(), sequence(LONG, SHORT), 5000)) == ["session_start"]


def test_long_then_long_extends_it(scratch):
    assert kinds(play(gestures.Gestures(), sequence(LONG, LONG), 5000)) == ["session_extend"]


def test_short_then_long_checks_out(scratch):
    assert kinds(play(gestures.Gestures(), sequence(SHORT, LONG), 5000)) == ["session_end"]


def test_short_then_short_is_still_the_check_in(scratch):
    assert kinds(play(gestures.Gestures(), sequence(SHORT, SHORT), 5000)) == [DOUBLE] == ["check_in"]


def test_a_press_is_long_from_six_tenths_of_a_second(scratch):
    assert kinds(play(gestures.Gestures(), sequence(590, SHORT), 5000)) == [DOUBLE]
    assert kinds(play(gestures.Gestures(), sequence(610, SHORT), 5000)) == ["session_start"]


def test_a_single_long_press_means_nothing(scratch):
    assert kinds(play(gestures.Gestures(), [(0, 1500)], 5000)) == [SINGLE]


def test_every_session_gesture_reports_its_press_at_once(scratch):
    seen = play(gestures.Gestures(), sequence(LONG, SHORT), 5000)
    assert [t for t, g in seen if g == PRESS] == [0, 1300]


def test_a_hold_in_the_middle_of_a_session_gesture_is_panic_and_nothing_else(scratch):
    for first in (SHORT, LONG):
        seen = play(gestures.Gestures(), sequence(first, 2500), 8000)
        assert kinds(seen) == [PANIC]
        assert [t for t, g in seen if g == PANIC] == [first + 300 + 2000]


def test_three_presses_are_panic_whatever_their_lengths(scratch):
    for lengths in ((LONG, SHORT, SHORT), (SHORT, LONG, SHORT), (LONG, LONG, SHORT), (SHORT, SHORT, LONG)):
        g = gestures.Gestures(window_ms=5000)  # room for three presses of any length
        seen = play(g, sequence(*lengths, gap=200), 10000)
        assert kinds(seen) == [PANIC], lengths
        third = sum(lengths[:2]) + 400
        assert [t for t, k in seen if k == PANIC] == [third], lengths


def test_a_session_gesture_then_a_hold_raises_panic_after_it(scratch):
    seen = play(gestures.Gestures(), [(0, LONG), (1300, SHORT), (4000, 2500)], 9000)
    assert kinds(seen) == ["session_start", PANIC]


def test_more_presses_below_a_higher_panic_count_are_a_check_in_only_if_all_short(scratch):
    g = gestures.Gestures(presses=4, window_ms=3000)
    assert kinds(play(g, sequence(SHORT, SHORT, SHORT, gap=200), 6000)) == [DOUBLE]
    g = gestures.Gestures(presses=4, window_ms=4000)
    assert kinds(play(g, sequence(LONG, SHORT, SHORT, gap=200), 8000)) == [SINGLE]


if sys.implementation.name == "cpython":
    from micropython_cases import run_cases_under_micropython

    def test_cases_pass_under_micropython(tmp_path):
        run_cases_under_micropython(__file__, tmp_path)
