"""`lonewatch bench purge`: how long the retention purge keeps the ingest's
writer away from the database, in chunks as the gateway does it, against the
same purge in one transaction, measured in the same run.

The case it stands for: a gateway back after downtime (or given a shorter
retention) with a backlog of old rows to purge at start, while the alarms
queued at the broker wait to be stored.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path

from gateway import service
from gateway.config import load_config
from gateway.service import Gateway

DAY = 86400


def add_arguments(parser) -> None:
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="old heartbeats to purge (default 1,000,000: about 8 hours of 1,000 devices)")


def _fill(gateway: Gateway, rows: int, now: float) -> None:
    body = {"v": 1, "device": "dev-0000", "uptime_ms": 123456, "battery_pct": 80, "fw": "0.1.0"}
    start = now - 20 * DAY
    with gateway.store.transaction():
        for n in range(rows):
            gateway.store.add_message(start + n * 0.03, "hq", f"dev-{n % 1000:04d}", "heartbeat", body)


def measure(rows: int, chunk_rows: int) -> dict:
    """Purge `rows` old heartbeats with `chunk_rows` per transaction while a
    thread in the writer's place stores a row every millisecond; return the
    longest that thread waited for the database, and the purge's total time."""
    with tempfile.TemporaryDirectory(prefix="lonewatch-bench-purge-") as tmp:
        gateway = Gateway(load_config(None, db=str(Path(tmp) / "bench.db")))
        now = time.time()
        _fill(gateway, rows, now)
        waits: list[float] = []
        stop = threading.Event()

        def writer() -> None:
            while not stop.is_set():
                asked = time.perf_counter()
                with gateway.store.transaction():
                    waits.append(time.perf_counter() - asked)
                    gateway.store.audit(time.time(), "bench", "probe")
                time.sleep(0.001)

        probe = threading.Thread(target=writer, daemon=True)
        try:
            probe.start()
            time.sleep(0.05)
            started = time.perf_counter()
            counts = asyncio.run(gateway.purge_expired(now, chunk_rows))
            total = time.perf_counter() - started
        finally:
            stop.set()
            probe.join()
            gateway.store.close()
        if counts["heartbeats"] != rows:
            raise RuntimeError(f"purged {counts['heartbeats']} of {rows} heartbeats")
        return {"longest_wait_ms": max(waits) * 1000, "total_s": total}


def run(args) -> int:
    print(f"{args.rows:,} heartbeats older than their retention; a writer stores a row every millisecond",
          flush=True)
    single = measure(args.rows, args.rows + 1)
    print(f"one transaction: writer waited up to {single['longest_wait_ms']:,.1f} ms", flush=True)
    chunked = measure(args.rows, service.PURGE_CHUNK_ROWS)
    print(f"chunks of {service.PURGE_CHUNK_ROWS:,}: writer waited up to {chunked['longest_wait_ms']:,.1f} ms",
          flush=True)
    result = {
        "rows": args.rows,
        "chunk_rows": service.PURGE_CHUNK_ROWS,
        "single_longest_wait_ms": round(single["longest_wait_ms"], 1),
        "single_total_s": round(single["total_s"], 2),
        "chunked_longest_wait_ms": round(chunked["longest_wait_ms"], 1),
        "chunked_total_s": round(chunked["total_s"], 2),
        "wait_ratio": round(chunked["longest_wait_ms"] / single["longest_wait_ms"], 4),
    }
    print()
    print(f"{'measure':<36} {'one transaction':>16} {'chunked':>10}")
    print(f"{'longest wait of the writer (ms)':<36} {result['single_longest_wait_ms']:>16,.1f} "
          f"{result['chunked_longest_wait_ms']:>10,.1f}")
    print(f"{'whole purge (s)':<36} {result['single_total_s']:>16.2f} {result['chunked_total_s']:>10.2f}")
    print(json.dumps(result))
    return 0
