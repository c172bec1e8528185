"""Run simulated wearables: light fleet devices in this process (and, with
--firmware, the real firmware under MicroPython on virtual boards). Without
--broker it starts an embedded broker and the real gateway on a temporary
database; with --broker it joins that installation as devices only.
--scenario plays a scenario file (simulator/scenarios/); --check then exits 0
only if everything it expects reached the gateway and nothing else did.
While it runs, devices can be driven over HTTP on 127.0.0.1 (see
docs/simulator.md). Ctrl-C stops everything."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import time
from pathlib import Path

from lonewatch.commands import count, mqtt_url, port_number

PROGRESS_EVERY_S = 1.0


def heap_size(text: str) -> int:
    """'96k' -> 96 (KB of device heap)."""
    value = text.lower().removesuffix("k")
    if not value.isdigit() or not 16 <= int(value) <= 4096:
        raise argparse.ArgumentTypeError(f"heap must be like 96k (16k..4096k), got {text!r}")
    return int(value)


def add_arguments(parser) -> None:
    parser.add_argument("--broker", type=mqtt_url, metavar="mqtt://HOST:PORT",
                        help="join this broker as devices only (default: start an embedded broker and a gateway)")
    parser.add_argument("--mqtt-port", type=port_number, help="port of the embedded broker (default: a free one)")
    parser.add_argument("--devices", type=count, default=None,
                        help="light fleet devices (default 3; with --scenario, the scenario's devices)")
    parser.add_argument("--firmware", type=count, nargs="?", const=-1, default=0, metavar="N",
                        help="devices running the real firmware under micropython; "
                             "bare with --scenario: every device of the scenario")
    parser.add_argument("--site", default=None, help="site of the devices (default sim, or the scenario's)")
    parser.add_argument("--seed", type=int, default=None, help="seed the devices' randomness")
    parser.add_argument("--heap", type=heap_size, default=None, metavar="96k",
                        help="firmware devices run compiled modules on this device heap")
    parser.add_argument("--scenario", metavar="FILE", help="play this scenario file")
    parser.add_argument("--check", action="store_true",
                        help="with --scenario: exit 0 only if every expectation was met and nothing else happened")
    parser.add_argument("--control-port", type=port_number, default=None,
                        help="HTTP control endpoint on 127.0.0.1 (default: a free port)")
    parser.add_argument("--data", metavar="DIR", default=None,
                        help="SisFall-format recordings to take falls from (default: ../shared/datasets/sisfall-50hz "
                             "beside the checkout if it is there, else synthetic falls)")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop after S seconds (default: at the scenario's end, else on Ctrl-C)")


def run(args) -> int:
    from simulator import scenario as scenarios

    if args.check and not args.scenario:
        print("lonewatch sim: --check needs --scenario", file=sys.stderr)
        return 2
    scenario = None
    if args.scenario:
        try:
            scenario = scenarios.load(args.scenario)
        except scenarios.ScenarioError as exc:
            print(f"lonewatch sim: {exc}", file=sys.stderr)
            return 2
        if args.broker and (args.check or _needs_own_installation(scenario)):
            print("lonewatch sim: this scenario stops or asks the broker or the gateway, or is checked "
                  "against the gateway's records; run it without --broker", file=sys.stderr)
            return 2
    from simulator import sisfall, wearer
    try:
        args.falls = wearer.sisfall_folder(args.data)
    except sisfall.DatasetError as exc:
        print(f"lonewatch sim: --data: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_main(args, scenario))
    except RuntimeError as exc:
        print(f"lonewatch sim: {exc}", file=sys.stderr)
        return 1


def _needs_own_installation(scenario) -> bool:
    from simulator.scenario import WORLD_ACTIONS
    return bool(scenario.expect or scenario.felt) or any(s.action in WORLD_ACTIONS for s in scenario.timeline)


async def _main(args, scenario) -> int:
    from simulator import scenario as scenarios
    from lonewatch.simworld import SimWorld as World

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with tempfile.TemporaryDirectory(prefix="lonewatch-sim-") as tmp:
        world = World(Path(tmp), broker_url=args.broker, mqtt_port=args.mqtt_port, devices=args.devices,
                      firmware=args.firmware, site=args.site, seed=args.seed, heap_kb=args.heap,
                      scenario=scenario, control_port=args.control_port, falls=args.falls)
        differences = None
        try:
            await world.start()
            print(world.banner(), flush=True)
            started, wall_start = time.monotonic(), time.time()
            progress = asyncio.create_task(_progress(world, started))
            if scenario is not None:
                work = asyncio.create_task(scenarios.play(scenario, world, started, log=_say))
            elif args.duration is not None:
                work = asyncio.create_task(asyncio.sleep(args.duration))
            else:
                work = asyncio.create_task(stop.wait())
            stopper = asyncio.create_task(stop.wait())
            if sys.stdin.isatty():
                _prompt(world, loop)
            await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
            interrupted = stop.is_set()
            for task in (work, stopper, progress):
                task.cancel()
            if not interrupted:
                work.result()  # a scenario step that failed is the run's error
            if sys.stdout.isatty():
                print()  # end the progress line
            summary = world.summary()
            if scenario is not None and not interrupted:
                differences = scenarios.compare(scenario, world.incidents(), world.felt(), wall_start,
                                                world.problems + world.rejects())
        finally:
            await world.stop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    if sys.stdin.isatty():
        loop.remove_reader(sys.stdin.fileno())
    print(_format_summary(summary), flush=True)
    if scenario is None:
        return 0
    if differences is None:
        print(f"scenario {scenario.name}: interrupted before its end, not checked")
        return 1 if args.check else 0
    if differences:
        print(f"scenario {scenario.name}: {len(differences)} difference(s) from what it expects:")
        for line in differences:
            print(f"  - {line}")
        return 1 if args.check else 0
    print(f"scenario {scenario.name}: everything expected happened, and nothing else")
    return 0


PROMPT_HELP = ("commands: list | ACTION DEVICE [KEY=VALUE ...] (e.g. hold sim-001, presses sim-002 n=3, "
               "cut_wifi sim-003, battery sim-001 pct=9) | help")


def _prompt(world, loop) -> None:
    """Lines typed while the simulation runs drive its devices, as the HTTP endpoint does."""
    from simulator.scenario import DEVICE_ACTIONS

    print(PROMPT_HELP, flush=True)

    def line_typed():
        words = sys.stdin.readline().split()
        if not words:
            return
        if words[0] == "list":
            for d in world.describe():
                print(f"  {d['device']:<12} {d['state']:<12} {'online' if d['online'] else 'offline':<8} "
                      f"battery {d['battery_pct']}%  felt {', '.join(d['felt']) or '-'}", flush=True)
            return
        if words[0] not in DEVICE_ACTIONS or len(words) < 2 or words[1] not in world.device_names():
            print(PROMPT_HELP, flush=True)
            return
        params = {}
        for word in words[2:]:
            key, _, value = word.partition("=")
            kind = DEVICE_ACTIONS[words[0]].get(key)
            try:
                params[key] = kind(value)
            except (TypeError, ValueError):
                print(f"  {words[0]}: parameters are {', '.join(DEVICE_ACTIONS[words[0]]) or 'none'}", flush=True)
                return
        asyncio.ensure_future(world.device_action(words[1], words[0], params))
        print(f"  {words[0]} {words[1]} {params or ''}".rstrip(), flush=True)

    loop.add_reader(sys.stdin.fileno(), line_typed)


def _say(text: str) -> None:
    print(text, flush=True)


async def _progress(world, started: float) -> None:
    tty = sys.stdout.isatty()
    last_line = 0.0
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        s = world.summary()
        line = (f"sim {time.monotonic() - started:6.1f} s  devices {s['online']}/{s['devices']} online  "
                f"sent {s['messages_sent']}  alarms {s['alarms_raised']} raised, {s['alarms_delivered']} delivered, "
                f"{s['alarms_acknowledged']} acknowledged  incidents {s['incidents']}")
        if tty:
            print("\r" + line, end="", flush=True)
        elif time.monotonic() - last_line >= 5 * PROGRESS_EVERY_S:
            last_line = time.monotonic()
            print(line, flush=True)


def _format_summary(s: dict) -> str:
    lines = [
        "",
        "summary",
        f"  devices connected:  {s['connected_ever']} of {s['devices']} ({s['online']} online at the end)",
        f"  messages sent:      {s['messages_sent']}",
        f"  alarms raised:      {s['alarms_raised']}",
        f"  delivered (felt):   {s['alarms_delivered']}",
        f"  acknowledged (felt): {s['alarms_acknowledged']}",
    ]
    if s["incidents"] is not None:
        lines.append(f"  incidents at the gateway: {s['incidents']}  rejected messages: {s['rejected']}")
    for line in s["man_down"]:
        lines.append(f"  man-down trace:     {line}")
    lines.append("  went wrong:         " + ("; ".join(s["problems"]) if s["problems"] else "nothing"))
    return "\n".join(lines)

