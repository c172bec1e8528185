"""A minute and a half of `lonewatch bench soak` (the long run is 30): 1,000 devices
with reconnect churn, alarms and desk pages, and the gateway neither leaks
nor loses anything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import require_mosquitto

LONEWATCH = str(Path(sys.executable).parent / "lonewatch")


def test_a_minute_and_a_half_of_a_fleet_leak_nothing_and_lose_no_alarm():
    require_mosquitto()
    result = subprocess.run([LONEWATCH, "bench", "soak", "--minutes", "1.5", "--devices", "1000", "--pages", "3"],
                            capture_output=True, text=True, timeout=400)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0 and figures["ok"], result.stdout[-3000:] + result.stderr[-3000:]
    assert figures["alarms_stored_once"] == figures["alarms_delivered"] == figures["alarms"] > 0
    assert figures["growth_pct"]["rss_kib"] < 10
