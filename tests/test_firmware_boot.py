"""Firmware in the loop, boot: a bad device config gets a clear REPL message
and the BAD_CONFIG LED/buzzer pattern, and the device stays put: no watchdog,
no boot loop, no boot counter churn. A good config boots and counts boots."""

import json
import time

from firmware_harness import desk_for, device_for  # noqa: F401
from simulator.board import device_config


def led_blinks(dev):
    return len(dev.output_on("led"))


def test_bad_config_shows_a_clear_message_and_pattern_without_boot_loop(mosquitto, device_for):
    cfg = device_config(mosquitto.port, prealarm_s="soon", sensor="adxl345")
    del cfg["device"]
    dev = device_for(mosquitto, config=cfg, start=False)
    dev.start(wait_online=False)
    line = dev.wait_console("CONFIG ERROR")
    assert "'device' is required" in line
    assert "'prealarm_s' must be an integer" in line
    assert "'sensor' must be one of lis3dh, mpu6050" in line
    time.sleep(3)
    assert dev.alive()                      # waiting for a fix, not rebooting
    assert sum("CONFIG ERROR" in x for x in dev.console) == 1
    assert led_blinks(dev) >= 5             # the fast blink of BAD_CONFIG
    assert 2700 in [int(v[0]) for t, k, g, v in dev.outputs() if k == "pwm" and int(v[1]) > 0]
    assert not any(k == "wdt" for _, k, _, _ in dev.outputs())  # no watchdog to trip
    assert not (dev.flash / "boot.txt").exists()


def test_config_that_is_not_json_is_reported_as_such(mosquitto, device_for):
    dev = device_for(mosquitto, config='{"device": "dev-001",', start=False)
    dev.start(wait_online=False)
    assert "config.json is not valid JSON" in dev.wait_console("CONFIG ERROR")
    assert dev.alive()


def test_bad_man_down_settings_are_a_config_error_too(mosquitto, device_for):
    dev = device_for(mosquitto, start=False, mandown={"impact_g": -1})
    dev.start(wait_online=False)
    assert "impact_g" in dev.wait_console("CONFIG ERROR")


def test_each_boot_counts_and_the_config_can_change_over_the_air(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto)
    desk.wait_for("status", state="online")
    desk.command("config", config={"prealarm_s": 7, "silent": True})
    dev.wait_console("config applied")
    saved = json.loads((dev.flash / "config.json").read_text())
    assert saved["prealarm_s"] == 7 and saved["silent"] is True
    dev.kill()
    dev.start()
    dev.wait_console("boot 2")
    assert (dev.flash / "boot.txt").read_text() == "2"


def test_sensor_bus_errors_raise_a_technical_alarm(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto)
    desk.wait_for("status", state="online")
    dev.i2c_fault("fail")
    assert desk.wait_for("alarm", type="technical").body["cause"] == "sensor_failed"
    dev.press(2300)
    desk.wait_for("alarm", type="panic")


def test_a_task_that_dies_resets_the_board_instead_of_running_half_alive(mosquitto, desk_for,
                                                                        device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto)
    desk.wait_for("status", state="online")
    dev.i2c_fault("crash")                      # the sensor task dies
    dev.wait_console("task sensor died")
    dev.wait_console("boot 2", timeout=10)      # reset and powered on again
    second_boot = next(i for i, line in enumerate(dev.console) if "boot 2" in line)
    dev.wait_console("link: online", after=second_boot)
    dev.press(2300)
    assert desk.wait_for("alarm", type="panic").body["id"].startswith("dev-001:2:")
