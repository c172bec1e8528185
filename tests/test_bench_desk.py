"""A small `lonewatch bench desk` (the full run has 100,000 past incidents and
50 pages): it reaches the real gateway, every page gets every alarm, and the
JSON line carries the figures the issue names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import require_mosquitto

LONEWATCH = str(Path(sys.executable).parent / "lonewatch")


def test_a_small_desk_benchmark_reports_its_figures_and_misses_no_alarm():
    require_mosquitto()
    result = subprocess.run([LONEWATCH, "bench", "desk", "--open", "20", "--historic", "2000", "--pages", "5",
                             "--alarms", "3"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["live_samples"] == 5 * 3 and figures["live_missed"] == 0
    assert figures["csv_rows"] > 0 and figures["gateway_rss_kib"] > 0
    for key in ("snapshot_ms", "history_ms", "live_p99_ms", "csv_ms"):
        assert figures[key] > 0, key
