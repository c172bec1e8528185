"""`lonewatch bench sim` runs end to end on a small scale and ends with the
JSON line the issue names."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import require_mosquitto

LONEWATCH = str(Path(sys.executable).parent / "lonewatch")


def test_bench_sim_prints_a_table_and_the_json_line():
    require_mosquitto()
    out = subprocess.run([LONEWATCH, "bench", "sim", "--fleet-devices", "50", "--firmware-devices", "1",
                          "--seconds", "10"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["fleet_devices"] == 50 and result["firmware_devices"] == 1
    assert 0 < result["fleet_core_share"] < 1
    assert result["firmware_max_backlog_s"] >= 0
    assert "share of one core (target < 0.25)" in out.stdout
