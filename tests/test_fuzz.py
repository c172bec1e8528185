"""The short version of `lonewatch bench fuzz` (the long run is 100,000
messages): hostile messages between valid alarms against the real gateway
on mosquitto, every verdict as the contract says, every alarm stored once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import require_mosquitto

LONEWATCH = str(Path(sys.executable).parent / "lonewatch")


def test_a_short_fuzz_run_loses_no_alarm_and_judges_every_message_by_the_contract():
    require_mosquitto()
    result = subprocess.run([LONEWATCH, "bench", "fuzz", "--messages", "4000", "--seed", "7"],
                            capture_output=True, text=True, timeout=300)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0 and figures["ok"], result.stdout[-3000:] + result.stderr[-3000:]
    assert figures["valid_alarms_stored_once"] == figures["valid_alarms"] == 200
    assert figures["verdicts_mismatched"] == {} and figures["internal_errors"] == 0
