"""The device config: defaults filled in, every problem reported at once in
words a person can act on, over-the-air changes limited and re-validated.
Runs under CPython and, via the last test, under MicroPython."""

import sys

if sys.implementation.name == "cpython":
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "firmware"))

import json
import os

import config

MINIMAL = {"device": "dev-001", "site": "hq", "wifi_ssid": "lab", "mqtt_host": "10.0.0.2"}


def problems_of(raw):
    try:
        config.validate(raw)
    except config.ConfigError as e:
        return str(e)
    return None


def test_minimal_config_gets_the_documented_defaults(scratch):
    cfg = config.validate(dict(MINIMAL))
    assert cfg["prealarm_s"] == 20 and cfg["hold_ms"] == 2000 and cfg["panic_presses"] == 3
    assert cfg["heartbeat_s"] == 30 and cfg["silent"] is False and cfg["sensor"] == "lis3dh"
    assert cfg["mqtt_port"] == 8883 and cfg["mqtt_tls"] is True and cfg["mqtt_ca"] == "ca.der"
    assert cfg["location"] == {}
    assert cfg["delivered_timeout_s"] == 30


def test_delivered_timeout_is_checked_like_the_other_timings(scratch):
    text = problems_of(dict(MINIMAL, delivered_timeout_s=0))
    assert "'delivered_timeout_s' must be between 1 and 3600" in text, text
    assert "'delivered_timeout_s' must be an integer" in problems_of(dict(MINIMAL, delivered_timeout_s="30s"))


def test_every_problem_is_reported_at_once(scratch):
    raw = dict(MINIMAL, prealarm_s=0, silent="yes", sensor="adxl", colour="red")
    del raw["site"]
    text = problems_of(raw)
    for expected in ("'site' is required", "'prealarm_s' must be between 1 and 600",
                     "'silent' must be true or false", "'sensor' must be one of lis3dh, mpu6050",
                     "unknown setting 'colour'"):
        assert expected in text, text


def test_a_session_from_the_wearable_lasts_two_hours_unless_configured_within_the_protocols_bounds(scratch):
    assert config.validate(dict(MINIMAL))["session_s"] == 7200
    assert config.validate(dict(MINIMAL, session_s=3600))["session_s"] == 3600
    for bad in (59, 7 * 24 * 3600 + 1):
        assert "'session_s' must be between 60 and 604800" in problems_of(dict(MINIMAL, session_s=bad))
    assert config.merge_remote(config.validate(dict(MINIMAL)), {"session_s": 1800})["session_s"] == 1800


def test_the_hold_for_panic_leaves_room_for_a_long_press(scratch):
    assert "'hold_ms' must be between 1000 and 10000" in problems_of(dict(MINIMAL, hold_ms=600))


def test_names_must_be_valid_topic_levels(scratch):
    assert "'device' must be 1-32" in problems_of(dict(MINIMAL, device="Dev 1"))
    assert "'site' must be 1-32" in problems_of(dict(MINIMAL, site="-hq"))


def test_battery_range_must_make_sense(scratch):
    text = problems_of(dict(MINIMAL, battery_empty_mv=4200, battery_full_mv=3300))
    assert "'battery_empty_mv' must be below 'battery_full_mv'" in text


def test_remote_changes_are_limited_and_validated(scratch):
    cfg = config.validate(dict(MINIMAL))
    assert config.merge_remote(cfg, {"prealarm_s": 30})["prealarm_s"] == 30
    for bad in ({"mqtt_host": "evil"}, {"prealarm_s": "soon"}, ["prealarm_s"]):
        try:
            config.merge_remote(cfg, bad)
        except config.ConfigError:
            continue
        raise AssertionError("accepted %r" % (bad,))
    assert cfg["prealarm_s"] == 20  # the running config is untouched


def test_load_reports_missing_and_unparsable_files(scratch):
    for text, expected in ((None, "no %s/config.json" % scratch), ("{nope", "is not valid JSON")):
        path = scratch + "/config.json"
        if text is not None:
            with open(path, "w") as f:
                f.write(text)
        try:
            config.load(path)
        except config.ConfigError as e:
            assert expected in str(e), str(e)
        else:
            raise AssertionError("loaded a bad config")


def test_save_then_load_round_trips(scratch):
    path = scratch + "/config.json"
    cfg = config.validate(dict(MINIMAL, location={"zone": "lab-3"}))
    config.save(cfg, path)
    assert config.load(path) == cfg
    with open(path) as f:
        assert json.loads(f.read())["location"] == {"zone": "lab-3"}


def test_a_boot_counter_that_cannot_be_saved_gives_a_random_boot_above_any_counted_one(scratch):
    path = scratch + "/boot.txt"
    assert config.next_boot(path) == 1 and config.next_boot(path) == 2
    os.mkdir(path + ".tmp")  # the flash refuses the write
    first, second = config.next_boot(path), config.next_boot(path)
    # Counted again, boot 3 would repeat the ids of the boot that could not save it.
    for boot in (first, second):
        assert config.RANDOM_BOOT_BASE <= boot < 10 ** 10
    assert first != second
    with open(path) as f:
        assert f.read() == "2"


if sys.implementation.name == "cpython":
    from micropython_cases import run_cases_under_micropython

    def test_cases_pass_under_micropython(tmp_path):
        run_cases_under_micropython(__file__, tmp_path)
