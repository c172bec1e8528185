"""Button gestures: hold >= 2 s or 3 presses within 2 s raise panic, a single
short press never does, a double press is a check-in. Runs under CPython and,
via the last test, under MicroPython."""

import sys

if sys.implementation.name == "cpython":
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "firmware"))

import gestures
from gestures import DOUBLE, PANIC, PRESS, SINGLE


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


if sys.implementation.name == "cpython":
    from micropython_cases import run_cases_under_micropython

    def test_cases_pass_under_micropython(tmp_path):
        run_cases_under_micropython(__file__, tmp_path)
