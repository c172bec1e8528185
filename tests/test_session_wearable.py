"""The lone-work session as the wearable knows it: its gestures send the
session events and are felt, the gateway's reminder arms the device's own
deadline, a missed deadline plays the pre-alarm and an overdue session the
overdue pattern until a press answers with one check-in. Runs under CPython
and, via the last test, under MicroPython."""

import sys

if sys.implementation.name == "cpython":
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "firmware"))

import alarmstate
import gestures
import patterns
import protocol

IDLE = alarmstate.IDLE


def session():
    counter = [0]

    def new_id():
        counter[0] += 1
        return "dev-001:4:%d" % counter[0]

    return alarmstate.Session(new_id)


def sent(actions):
    return [a[2] for a in actions if a[0] == "event"]


def felt(actions):
    return [a[1] for a in actions if a[0] == "feedback"]


def test_each_session_gesture_sends_its_event_and_is_felt_as_its_own_pattern(scratch):
    s = session()
    for g, state in (("session_start", "active"), ("check_in", "active"), ("session_extend", "active"),
                     ("session_end", "off")):
        actions = s.update(g, IDLE)
        assert sent(actions) == [g] and felt(actions) == [g]
        assert s.state == state
    bodies = [list(patterns.steps(name)) for name in ("session_start", "session_extend", "session_end",
                                                       "check_in", "session", "session_due", "overdue",
                                                       "pre_alarm")]
    assert all(bodies[i] != bodies[j] for i in range(len(bodies)) for j in range(i + 1, len(bodies)))


def test_session_gestures_do_nothing_during_an_alarm(scratch):
    s = session()
    for alarm in (alarmstate.PRE_ALARM, alarmstate.ALARM, alarmstate.HELP_COMING):
        assert s.update("session_start", alarm) == []
    assert s.state == "off"


def test_a_single_press_or_a_panic_is_no_session_gesture(scratch):
    s = session()
    assert s.update(gestures.SINGLE, IDLE) == [] and s.update(gestures.PANIC, alarmstate.ALARM) == []
    assert s.update(gestures.PRESS, IDLE) == []


def test_the_desk_registering_a_session_is_felt(scratch):
    s = session()
    assert s.command("session", 7200, 0) == [("feedback", "session")]
    assert s.state == "active"


def test_a_reminder_arms_the_deadline_and_a_check_in_disarms_it(scratch):
    s = session()
    s.update("session_start", IDLE)
    assert s.command("session_due", 30, 1000) == [("feedback", "session_due")]
    assert s.state == "due" and s.tick(30999) is None
    s.update("check_in", IDLE)
    assert s.tick(31000) is None and s.state == "active"


def test_a_missed_deadline_plays_the_pre_alarm_until_a_press_checks_in_once(scratch):
    s = session()
    s.command("session_due", 30, 1000)
    assert s.tick(31000) == patterns.PRE_ALARM and s.state == "pre_alarm"
    assert s.tick(600000) == patterns.PRE_ALARM  # no alarm of its own: the gateway's is raised at the deadline
    actions = s.update(gestures.PRESS, IDLE)
    assert sent(actions) == ["check_in"] and felt(actions) == ["check_in"]
    assert s.tick(600010) is None
    # The double press that answered ends: no second check-in.
    assert s.update(gestures.DOUBLE, IDLE) == [] and s.state == "active"
    assert sent(s.update(gestures.DOUBLE, IDLE)) == ["check_in"]


def test_overdue_plays_until_a_press_answers_and_the_gesture_in_progress_still_counts(scratch):
    s = session()
    s.update("session_start", IDLE)
    assert s.command("session_due", 0, 5000) == []
    assert s.state == "overdue" and s.tick(5020) == "overdue"
    assert sent(s.update(gestures.PRESS, IDLE)) == ["check_in"]
    assert s.tick(5040) is None
    # A press that began an extend answers the overdue, and the extend is still sent.
    assert sent(s.update("session_extend", IDLE)) == ["session_extend"] and s.state == "active"


def test_a_panic_while_answering_ends_the_answer_and_sends_no_session_event(scratch):
    s = session()
    s.command("session_due", 0, 0)
    assert sent(s.update(gestures.PRESS, IDLE)) == ["check_in"]
    assert s.update(gestures.PANIC, alarmstate.ALARM) == [] and s.state == "active"


def test_the_desk_extending_an_overdue_session_stops_the_pattern(scratch):
    s = session()
    s.command("session_due", 0, 0)
    assert s.command("session", 1800, 10) == [("feedback", "session")]
    assert s.tick(20) is None


def test_the_desk_checking_in_for_the_wearer_stops_the_missed_prompt(scratch):
    s = session()
    s.command("session_due", 30, 1000)
    assert s.tick(31000) == patterns.PRE_ALARM
    assert s.command("session", 1800, 32000) == [("feedback", "session")]
    assert s.tick(32020) is None and s.state == "active"


def test_the_desk_ending_the_session_stops_every_prompt_and_is_felt_as_a_check_out(scratch):
    for due_in_s in (30, 0):  # reminded, or already overdue
        s = session()
        s.update("session_start", IDLE)
        s.command("session_due", due_in_s, 1000)
        assert s.command("session_end", None, 2000) == [("feedback", "session_end")]
        assert s.state == "off" and s.tick(600000) is None
        assert s.update(gestures.PRESS, IDLE) == []  # nothing left to answer


def test_help_for_an_alarm_the_gateway_raised_is_felt_without_changing_the_alarm_states(scratch):
    m = alarmstate.AlarmStates(20, lambda: "dev-001:4:1")
    assert m.command("help_coming", "incident-7") == [("feedback", "help_coming")]
    assert m.command("resolved", "incident-7") == [("feedback", "resolved")]
    assert m.command("delivered", "incident-7") == []
    assert m.state == IDLE


def test_session_events_carry_the_location_and_the_start_its_duration(scratch):
    zone = {"zone": "lab-3"}
    for etype in ("session_start", "session_extend", "check_in", "session_end"):
        body = protocol.event("dev-001", "dev-001:4:1", etype, 1000, location=zone,
                              duration_s=7200 if etype == "session_start" else None)
        assert body["location"] == zone
        assert ("duration_s" in body) == (etype == "session_start")


if sys.implementation.name == "cpython":
    from micropython_cases import run_cases_under_micropython

    def test_cases_pass_under_micropython(tmp_path):
        run_cases_under_micropython(__file__, tmp_path)
