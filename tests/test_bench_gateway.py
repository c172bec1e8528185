"""`lonewatch bench gateway` runs end to end and ends with its JSON line
(a smoke run at a small scale; the figures themselves are not asserted)."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import require_mosquitto

LONEWATCH = str(Path(sys.executable).parent / "lonewatch")


def test_bench_gateway_prints_table_and_json_summary():
    require_mosquitto()
    out = subprocess.run([LONEWATCH, "bench", "gateway", "--count", "500", "--probes", "10",
                          "--background-devices", "20"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert {"bare_rate", "gateway_rate", "ratio", "alarm_ratio", "p50_ms", "p99_ms"} <= set(summary)
    assert summary["probes"] == 10 and summary["bare_rate"] > 0 and summary["gateway_rate"] > 0
    assert any(line.startswith("publish -> live feed p99") for line in lines)
    assert any(line.startswith("gateway, alarms burst") for line in lines)
