"""Firmware in the loop, man-down path: a real recorded fall (SisFall; the
synthetic one from simulator/traces.py when ../shared is absent) played
through the virtual accelerometer's registers gives a pre-alarm the wearer
feels, then an alarm with its cause, unless a press says "I'm OK" first."""

import time

from firmware_harness import (buzzer_tones, desk_for, device_for, fall_trace,  # noqa: F401
                              now_ms, pulses, synthetic_fall)


def test_fall_gives_pre_alarm_then_man_down_alarm(any_broker, desk_for, device_for, fall_trace):
    desk = desk_for(any_broker)
    dev = device_for(any_broker, prealarm_s=2)
    desk.wait_for("status", state="online")
    t0 = now_ms()
    dev.play(fall_trace)
    started = desk.wait_for("event", type="pre_alarm_started", timeout=15)
    assert started.body["cause"] == "fall" and started.body["countdown_s"] == 2
    alarm = desk.wait_for("alarm", type="man_down", timeout=10)
    assert alarm.body["cause"] == "fall"
    # The countdown ran on the device: the alarm is stamped >= 2 s after the pre-alarm.
    assert alarm.body["uptime_ms"] - started.body["uptime_ms"] >= 2000
    # The wearer was warned during the countdown: repeated beeps and vibration.
    assert buzzer_tones(dev, t0).count(2700) >= 3
    assert pulses(dev, "vibration", t0) >= 3


def test_press_during_pre_alarm_cancels_it_and_no_alarm_follows(any_broker, desk_for, device_for,
                                                                 fall_trace):
    desk = desk_for(any_broker)
    dev = device_for(any_broker, prealarm_s=2)
    desk.wait_for("status", state="online")
    dev.play(fall_trace)
    dev.wait_console("state idle -> pre_alarm", timeout=15)
    dev.press(150)
    cancelled = desk.wait_for("event", type="pre_alarm_cancelled")
    assert cancelled.body["cause"] == "fall"
    time.sleep(3)  # longer than the countdown would have run
    assert desk.of("alarm") == []


def test_mpu6050_board_detects_a_synthetic_fall(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto, sensor="mpu6050", prealarm_s=1)
    desk.wait_for("status", state="online")
    dev.play(synthetic_fall())
    assert desk.wait_for("alarm", type="man_down", timeout=20).body["cause"] == "fall"


def test_missing_sensor_raises_a_technical_alarm_but_panic_still_works(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto, sensor="none")
    technical = desk.wait_for("alarm", type="technical")
    assert technical.body["cause"] == "sensor_missing"
    dev.press(2300)
    desk.wait_for("alarm", type="panic")
