"""The wiring drawing is generated from firmware/pins.py and committed; it
must be what the generator makes now, so it cannot drift from the pin map."""

import re
import subprocess
import sys

from conftest import ROOT

from test_firmware_build import pin_map


def test_the_committed_wiring_svg_is_the_one_generated_from_the_pin_map():
    result = subprocess.run([sys.executable, str(ROOT / "hardware" / "wiring.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_pin_of_the_firmware_is_drawn_with_its_gpio():
    svg = (ROOT / "hardware" / "wiring.svg").read_text()
    drawn = dict((name, int(gpio)) for gpio, name in re.findall(r">GPIO (\d+)  ([A-Z_0-9]+)<", svg))
    assert drawn == pin_map()


def test_the_bill_of_materials_covers_every_function_the_issue_names():
    bom = (ROOT / "hardware" / "bom.md").read_text()
    for part in ("ESP32", "LIS3DH", "MPU-6050", "button", "Vibration motor", "Flyback diode",
                 "Buzzer", "LED", "LiPo", "Charger", "protection", "Battery measurement",
                 "Enclosure", "Clip"):
        assert part in bom, part
