"""Firmware in the loop, panic path: the unmodified firmware under the
MicroPython VM on the virtual board, against real brokers. Gestures raise
(or do not raise) alarms, and the desk's answers reach the wearer as
distinct feedback patterns."""

import time

from firmware_harness import (DEVICE, buzzer_tones, desk_for, device_for,  # noqa: F401
                              now_ms, pulses, wait_quiet)


def test_panic_hold_reaches_the_broker_as_a_valid_alarm(any_broker, desk_for, device_for):
    desk = desk_for(any_broker)
    dev = device_for(any_broker)
    desk.wait_for("status", state="online")
    t0 = now_ms()
    dev.press(2300)
    alarm = desk.wait_for("alarm", type="panic")
    assert alarm.body["id"].startswith(DEVICE + ":1:")
    assert alarm.body["location"] == {"zone": "lab-3"}
    assert alarm.qos == 1
    # Felt at once, before any answer from the desk: alarm queued.
    assert 2700 in buzzer_tones(dev, t0)
    assert pulses(dev, "vibration", t0) >= 1
    assert desk.invalid == []


def test_three_quick_presses_raise_panic_and_a_single_press_never_does(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto)
    desk.wait_for("status", state="online")
    dev.press(150)
    time.sleep(3)  # past the multi-press window
    assert desk.of("alarm") == []
    dev.presses(3, ms=120, gap_ms=300)
    desk.wait_for("alarm", type="panic")
    assert len(desk.of("alarm")) == 1


def test_double_press_sends_a_check_in_with_location(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto)
    desk.wait_for("status", state="online")
    dev.presses(2, ms=120, gap_ms=250)
    check_in = desk.wait_for("event", type="check_in")
    assert check_in.body["location"] == {"zone": "lab-3"}
    time.sleep(0.5)
    assert desk.of("alarm") == []


def test_desk_answers_reach_the_wearer_as_distinct_patterns(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto, auto_deliver=True)  # the gateway answers `delivered` on store
    dev = device_for(mosquitto, silent=False)
    desk.wait_for("status", state="online")
    t0 = now_ms()
    dev.press(2300)
    alarm_id = desk.wait_for("alarm").body["id"]
    dev.wait_console("cmd: delivered " + alarm_id)
    wait_quiet(dev, t0, quiet_ms=1500)  # queued + delivered patterns played out

    t_help = now_ms()
    desk.command("help_coming", ref=alarm_id, by="desk")
    dev.wait_console("state delivered -> help_coming")
    wait_quiet(dev, t_help)
    seen = (t_help, dev.outputs(t_help - 1500))
    assert buzzer_tones(dev, t_help) == [1800, 2700, 2700], seen  # rising: help is coming
    assert pulses(dev, "vibration", t_help) == 3, seen

    t_resolved = now_ms()
    desk.command("resolved", ref=alarm_id)
    dev.wait_console("state help_coming -> idle")
    wait_quiet(dev, t_resolved)
    seen = (t_resolved, dev.outputs(t_resolved - 1500))
    assert buzzer_tones(dev, t_resolved) == [], seen
    assert pulses(dev, "vibration", t_resolved) == 1, seen

    t_due = now_ms()
    desk.command("session_due", due_in_s=300)
    dev.wait_console("cmd: session_due")
    wait_quiet(dev, t_due)
    seen = (t_due, dev.outputs(t_due - 1500))
    assert pulses(dev, "vibration", t_due) == 2 and buzzer_tones(dev, t_due) == [], seen

    mark = dev.mark()
    desk.command("ping")
    desk.wait_for("heartbeat", count=2)  # one at boot, one for the ping
    dev.wait_console("cmd: ping", after=mark)


def test_delivered_pattern_is_two_short_pulses_without_sound(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto)
    desk.wait_for("status", state="online")
    t_press = now_ms()
    dev.press(2300)
    alarm_id = desk.wait_for("alarm").body["id"]
    wait_quiet(dev, t_press)
    t0 = now_ms()
    desk.command("delivered", ref=alarm_id)
    dev.wait_console("state alarm -> delivered")
    wait_quiet(dev, t0)
    assert pulses(dev, "vibration", t0) == 2
    assert buzzer_tones(dev, t0) == []


def test_silent_mode_vibrates_but_never_sounds(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto, silent=True)
    desk.wait_for("status", state="online")
    t0 = now_ms()
    dev.press(2300)
    desk.wait_for("alarm", type="panic")
    wait_quiet(dev, t0)
    assert buzzer_tones(dev, t0) == []
    assert pulses(dev, "vibration", t0) >= 1


def test_bad_commands_are_ignored_and_the_device_keeps_working(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto)
    desk.wait_for("status", state="online")
    desk.client.publish("lonewatch/v1/hq/%s/cmd" % DEVICE, b"not json", qos=1)
    desk.command("config", config={"prealarm_s": "soon"})
    dev.wait_console("config rejected")
    dev.press(2300)
    desk.wait_for("alarm", type="panic")
