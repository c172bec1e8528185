"""`lonewatch power`: the budget of the shipped defaults meets the issue's
target, every current names its source, and the JSON line comes last."""

import json
import runpy
import subprocess
import sys

from simulator import power
from simulator.paths import FIRMWARE


def lonewatch(*args):
    return subprocess.run([sys.executable, "-m", "lonewatch.cli", "power", *args],
                          capture_output=True, text=True, check=True).stdout


def test_the_shipped_defaults_last_a_day_on_1000_mah_and_the_json_line_is_last():
    out = lonewatch("--battery-mah", "1000")
    result = json.loads(out.strip().splitlines()[-1])
    assert result["battery_mah"] == 1000
    assert result["hours"] >= 24
    assert "1000 mAh" in out and "What trades battery for response" in out


def test_every_current_cites_a_source():
    for name, (ma, source) in power.CURRENTS.items():
        assert ma > 0 and len(source) > 20, name
    for label, ma, source in power.budget(power.Settings())["rows"]:
        assert source in {s for _, s in power.CURRENTS.values()}, label


def test_hours_scale_with_the_battery_and_fall_with_more_radio_and_cpu():
    s = power.Settings()
    assert power.hours(s, battery_mah=2000) == 2 * power.hours(s)
    assert power.hours(s, heartbeat_s=5) < power.hours(s)
    assert power.hours(s, host_cpu_share=0.02) < power.hours(s)
    assert power.hours(s, wifi_powersave=False) < power.hours(s)


def test_a_cpu_share_measured_on_a_board_replaces_the_simulators():
    out = lonewatch("--cpu-share", "1.0")
    assert json.loads(out.strip().splitlines()[-1])["cpu_share"] == 1.0


def test_the_budget_is_computed_for_the_firmwares_own_defaults():
    # What the firmware sets at run time (Wi-Fi power save, the sensors'
    # registers, the button interrupt) is checked in test_firmware_power_save.py.
    spec = runpy.run_path(str(FIRMWARE / "config.py"))["SPEC"]
    s = power.Settings()
    assert (s.heartbeat_s, s.keepalive_s, s.sensor) == (
        spec["heartbeat_s"][0], spec["keepalive_s"][0], spec["sensor"][0])
    assert s.wifi_powersave
    out = lonewatch("--no-wifi-powersave")
    assert json.loads(out.strip().splitlines()[-1])["wifi_powersave"] is False
    assert "Light sleep: none" in out
