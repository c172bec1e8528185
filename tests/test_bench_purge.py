"""`lonewatch bench purge` runs end to end and ends with its JSON line
(a small scale; the figures themselves are not asserted)."""

import json
import subprocess
import sys
from pathlib import Path

LONEWATCH = str(Path(sys.executable).parent / "lonewatch")


def test_bench_purge_prints_table_and_json_summary():
    out = subprocess.run([LONEWATCH, "bench", "purge", "--rows", "12000"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["rows"] == 12000 and summary["chunk_rows"] == 5000
    assert summary["single_longest_wait_ms"] > 0 and summary["chunked_longest_wait_ms"] > 0
    assert any(line.startswith("longest wait of the writer") for line in lines)
