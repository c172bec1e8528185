"""`lonewatch bench sim`: what simulated wearables cost.

Fleet: N light devices (one process, one network thread) heartbeating every
30 s against a broker in its own process; the share of one core the fleet
process uses once all are connected, and its CPU per device.

Firmware: K devices each running the unmodified firmware in its own
`micropython` process on a virtual board, all at once; their CPU per device
and whether their sensor loops keep up. The board logs how many samples
the firmware has taken out of the sensor, every 250; the backlog is how far
that falls behind the 50 Hz clock (samples due by the clock minus samples
taken, in seconds), the largest over every device and every count. The
sensor's FIFO holds 0.64 s (LIS3DH): a backlog under that loses nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.gateway import start_broker, stop

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def add_arguments(parser) -> None:
    parser.add_argument("--fleet-devices", type=int, default=1000, help="light devices (default 1000)")
    parser.add_argument("--firmware-devices", type=int, default=20, help="firmware devices (default 20)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring window of each part (default 60)")
    parser.add_argument("--heap", type=int, default=None, metavar="KB",
                        help="firmware devices run compiled modules on this device heap (e.g. 96)")
    parser.add_argument("--broker", choices=("mosquitto", "amqtt"), default="mosquitto",
                        help="broker the devices connect to, in its own process (default mosquitto)")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


async def measure_fleet(port: int, devices: int, seconds: float) -> dict:
    from simulator.fleet import Fleet

    fleet = Fleet(f"mqtt://127.0.0.1:{port}", devices, site="bench", seed=1, incident_every_s=None)
    started = time.monotonic()
    await fleet.start()
    try:
        while fleet.connected() < devices:
            if time.monotonic() - started > 120:
                raise RuntimeError(f"only {fleet.connected()} of {devices} fleet devices connected in 120 s")
            await asyncio.sleep(0.1)
        connect_s = time.monotonic() - started
        cpu0, wall0 = time.process_time(), time.monotonic()
        sent0 = sum(d.sent["heartbeat"] for d in fleet.devices)
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        heartbeats = sum(d.sent["heartbeat"] for d in fleet.devices) - sent0
        online = fleet.connected()
    finally:
        stop0 = time.monotonic()
        await fleet.stop()
        stop_s = time.monotonic() - stop0
    return {"devices": devices, "online": online, "connect_s": connect_s, "core_share": cpu / wall,
            "cpu_ms_per_device_s": cpu / wall / devices * 1000, "heartbeats": heartbeats, "stop_s": stop_s}


def _backlog_s(rows: list[tuple[int, int]]) -> float:
    """Largest shortfall of reads behind the 50 Hz clock, from (epoch_ms, count) rows."""
    if len(rows) < 2:
        return float("nan")
    t0, n0 = rows[0]
    return max(0.0, max(((t - t0) / 20 - (n - n0)) / 50 for t, n in rows))


def measure_firmware(port: int, devices: int, seconds: float, heap_kb: int | None, tmp: Path) -> dict:
    from simulator.board import VirtualDevice, device_config

    boards = []
    try:
        for n in range(1, devices + 1):
            cfg = device_config(port, device=f"fw-{n:03d}", site="bench", heartbeat_s=30, keepalive_s=30)
            boards.append(VirtualDevice(tmp / f"fw-{n:03d}", cfg, broker_port=port, device_heap_kb=heap_kb,
                                        proxy=False))
        for board in boards:
            board.start(wait_online=False)
        for board in boards:
            board.wait_console("link: online", timeout=120)
        # Out of the boot and connect: measure the steady state.
        time.sleep(2)
        pids = [b.proc.pid for b in boards]
        cpu0, wall0 = [_cpu_s(p) for p in pids], time.monotonic()
        mark = time.time() * 1000
        time.sleep(seconds)
        wall = time.monotonic() - wall0
        cpu = [_cpu_s(p) - c for p, c in zip(pids, cpu0)]
        backlogs = []
        for board in boards:
            rows = [(t, int(values[0])) for t, kind, _, values in board.outputs(mark) if kind == "reads"]
            backlogs.append(_backlog_s(rows))
        alive = sum(1 for b in boards if b.alive())
    finally:
        for board in boards:
            board.stop()
    return {"devices": devices, "alive": alive, "core_share": sum(cpu) / wall,
            "cpu_ms_per_device_s": statistics.mean(cpu) / wall * 1000, "max_backlog_s": max(backlogs),
            "median_backlog_s": statistics.median(backlogs)}


def run(args) -> int:
    if args.firmware_devices and args.seconds < 10:
        print("lonewatch bench sim: the firmware part needs --seconds 10 or more (the board counts reads every 5 s)",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lonewatch-bench-sim-") as tmpdir:
        tmp = Path(tmpdir)
        broker, port = start_broker(args.broker, tmp)
        try:
            print(f"broker: {args.broker} on 127.0.0.1:{port}", flush=True)
            fleet = asyncio.run(measure_fleet(port, args.fleet_devices, args.seconds)) if args.fleet_devices else None
            if fleet:
                print(f"fleet: {fleet['online']} of {fleet['devices']} online, {fleet['core_share']:.3f} of a core",
                      flush=True)
            firmware = (measure_firmware(port, args.firmware_devices, args.seconds, args.heap, tmp)
                        if args.firmware_devices else None)
        finally:
            stop(broker)

    print()
    print(f"{'measure':<52} {'value':>10}")
    if fleet:
        print(f"{'fleet devices (heartbeat every 30 s)':<52} {fleet['devices']:>10}")
        print(f"{'  connected after (s)':<52} {fleet['connect_s']:>10.1f}")
        print(f"{'  share of one core (target < 0.25)':<52} {fleet['core_share']:>10.3f}")
        print(f"{'  CPU per device (ms per s)':<52} {fleet['cpu_ms_per_device_s']:>10.4f}")
        print(f"{'  heartbeats sent in the window':<52} {fleet['heartbeats']:>10}")
        print(f"{'  stop (s)':<52} {fleet['stop_s']:>10.2f}")
    if firmware:
        print(f"{'firmware devices (micropython, 50 Hz sensor loop)':<52} {firmware['devices']:>10}")
        print(f"{'  still running at the end':<52} {firmware['alive']:>10}")
        print(f"{'  share of one core, all together':<52} {firmware['core_share']:>10.3f}")
        print(f"{'  CPU per device (ms per s)':<52} {firmware['cpu_ms_per_device_s']:>10.1f}")
        print(f"{'  largest sensor backlog (s)':<52} {firmware['max_backlog_s']:>10.3f}")
        print(f"{'  median sensor backlog (s)':<52} {firmware['median_backlog_s']:>10.3f}")
    print(json.dumps({
        "broker": args.broker,
        "seconds": args.seconds,
        "fleet_devices": fleet["devices"] if fleet else 0,
        "fleet_core_share": round(fleet["core_share"], 4) if fleet else None,
        "fleet_cpu_ms_per_device_s": round(fleet["cpu_ms_per_device_s"], 5) if fleet else None,
        "firmware_devices": firmware["devices"] if firmware else 0,
        "firmware_core_share": round(firmware["core_share"], 3) if firmware else None,
        "firmware_cpu_ms_per_device_s": round(firmware["cpu_ms_per_device_s"], 2) if firmware else None,
        "firmware_max_backlog_s": round(firmware["max_backlog_s"], 3) if firmware else None,
    }))
    return 0
