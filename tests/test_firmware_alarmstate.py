"""The alarm state machine: man-down gives a cancellable pre-alarm, panic
alarms at once, the desk's feedback walks an alarm to help-coming and back to
idle. Runs under CPython and, via the last test, under MicroPython."""

import sys

if sys.implementation.name == "cpython":
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "firmware"))

import alarmstate
import patterns


def machine(prealarm_s=20):
    counter = [0]

    def new_id():
        counter[0] += 1
        return "dev-001:4:%d" % counter[0]

    return alarmstate.AlarmStates(prealarm_s, new_id)


def test_fall_starts_a_pre_alarm_then_alarms_with_its_cause_when_not_cancelled(scratch):
    m = machine(prealarm_s=20)
    actions = m.man_down("fall", 1000)
    assert actions == [("event", "dev-001:4:1", "pre_alarm_started", "fall", 20)]
    assert m.state == alarmstate.PRE_ALARM
    assert m.tick(20999) == []
    actions = m.tick(21000)
    assert actions[0] == ("alarm", "dev-001:4:2", "man_down", "fall")
    assert ("feedback", patterns.ALARM_QUEUED) in actions
    assert m.state == alarmstate.ALARM


def test_press_during_pre_alarm_cancels_it_with_an_im_ok_event_and_no_alarm(scratch):
    m = machine()
    m.man_down("no_motion", 0)
    actions = m.press()
    assert actions[0] == ("event", "dev-001:4:2", "pre_alarm_cancelled", "no_motion", None)
    assert m.state == alarmstate.IDLE
    assert m.tick(10 ** 6) == []


def test_panic_alarms_at_once_from_any_state(scratch):
    m = machine()
    assert m.panic()[0] == ("alarm", "dev-001:4:1", "panic", None)
    m.command("delivered", "dev-001:4:1")
    assert m.panic()[0] == ("alarm", "dev-001:4:2", "panic", None)
    assert m.active_id == "dev-001:4:2"


def test_press_outside_a_pre_alarm_does_nothing(scratch):
    m = machine()
    assert m.press() == []
    m.panic()
    assert m.press() == []
    assert m.state == alarmstate.ALARM


def test_desk_feedback_walks_the_alarm_to_help_coming_and_resolved(scratch):
    m = machine()
    m.panic()
    assert m.command("delivered", "dev-001:4:1") == [("feedback", patterns.DELIVERED)]
    assert m.command("delivered", "dev-001:4:1") == []  # duplicate: felt once
    assert m.command("help_coming", "dev-001:4:1") == [("feedback", patterns.HELP_COMING)]
    assert m.state == alarmstate.HELP_COMING
    assert m.command("resolved", "dev-001:4:1") == [("feedback", patterns.RESOLVED)]
    assert m.state == alarmstate.IDLE


def test_help_coming_before_delivered_still_reaches_the_wearer(scratch):
    m = machine()
    m.panic()
    assert m.command("help_coming", "dev-001:4:1") == [("feedback", patterns.HELP_COMING)]


def test_feedback_for_another_alarm_is_ignored(scratch):
    m = machine()
    m.panic()
    assert m.command("delivered", "dev-001:3:9") == []
    assert m.command("resolved", None) == []
    assert m.state == alarmstate.ALARM


def test_man_down_during_an_alarm_does_not_restart_the_countdown(scratch):
    m = machine()
    m.panic()
    assert m.man_down("fall", 5) == []
    assert m.state == alarmstate.ALARM


def test_silent_mode_keeps_vibration_and_led_but_no_buzzer(scratch):
    for name in patterns.PATTERNS:
        loud = list(patterns.steps(name))
        quiet = list(patterns.steps(name, silent=True))
        assert [s[1:] for s in quiet] == [s[1:] for s in loud]
        assert [s[0] for s in quiet] == [0] * len(loud)


def test_feedback_patterns_are_distinct(scratch):
    felt = [list(patterns.steps(n)) for n in (patterns.ALARM_QUEUED, patterns.DELIVERED,
                                           patterns.HELP_COMING, patterns.NO_CONNECTION,
                                           patterns.LOW_BATTERY)]
    for i in range(len(felt)):
        for j in range(i + 1, len(felt)):
            assert felt[i] != felt[j]


if sys.implementation.name == "cpython":
    from micropython_cases import run_cases_under_micropython

    def test_cases_pass_under_micropython(tmp_path):
        run_cases_under_micropython(__file__, tmp_path)


def test_each_pattern_is_one_whole_run_of_the_steps_table(scratch):
    # A miscounted run would shift every pattern after it.
    runs = [list(patterns.steps(name)) for name in patterns.PATTERNS]
    assert all(runs)
    assert sum(1 + 3 * len(run) for run in runs) == len(patterns._STEPS)
