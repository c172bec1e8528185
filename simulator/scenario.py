"""Scenarios: a TOML file naming the devices, a timeline of what happens to
them and around them, and what must reach the gateway (docs/simulator.md).

This module reads and checks the file, plays its timeline against a world
(the running devices, broker, gateway and desk, which `lonewatch sim`
provides) and compares what the gateway recorded with what was expected.
"""

from __future__ import annotations

import asyncio
import math
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from contract import protocol, vocabulary

SCENARIOS = Path(__file__).resolve().parent / "scenarios"

# action -> the parameters it takes (name -> type); every one is optional.
DEVICE_ACTIONS = {
    "press": {"ms": int},
    "hold": {"ms": int},
    "presses": {"n": int},
    "check_in": {},
    "fall": {},
    "no_motion": {},
    "tilt": {},
    "cut_wifi": {},
    "restore_wifi": {},
    "battery": {"pct": int},
    "drain": {"to_pct": int, "over_s": float},
    "power_off": {},
    "power_on": {},
    "power_cycle": {"off_s": float},
    "session_start": {"duration_s": int},
    "session_end": {},
}
WORLD_ACTIONS = {
    "broker_down": {},
    "broker_up": {},
    "gateway_kill": {},
    "gateway_start": {},
    "acknowledge": {"device": str},
    "resolve": {"device": str, "reason": str},
}
DEVICE_KINDS = ("fleet", "firmware")
SENSORS = ("lis3dh", "mpu6050")
INCIDENT_KEYS = {"device": str, "type": str, "cause": str, "at": float, "within": float, "state": str}
TOP_KEYS = {"name", "description", "duration_s", "site", "settings", "gateway", "devices", "timeline",
            "expect", "felt"}
DEFAULT_WITHIN_S = 2.0


class ScenarioError(Exception):
    """The file is not a usable scenario; the message lists every problem."""


@dataclass
class Device:
    name: str
    kind: str = "fleet"
    worker: str | None = None
    sensor: str = "lis3dh"
    battery_pct: int = 90
    settings: dict = field(default_factory=dict)


@dataclass
class Step:
    at: float
    action: str
    device: str | None
    params: dict


@dataclass
class Expected:
    device: str
    type: str
    cause: str | None
    at: float | None
    within: float
    state: str | None

    def describe(self) -> str:
        what = vocabulary.label_of(self.type, self.cause)
        when = f" at {self.at:g} s (+-{self.within:g})" if self.at is not None else ""
        return f"{what} on {self.device}{when}" + (f", {self.state}" if self.state else "")


@dataclass
class Scenario:
    path: Path
    name: str
    description: str
    duration_s: float
    site: str
    settings: dict
    gateway: dict
    devices: list[Device]
    timeline: list[Step]
    expect: list[Expected]
    felt: dict[str, list[str]]

    def device_names(self) -> list[str]:
        return [d.name for d in self.devices]


def load(path) -> Scenario:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from None
    problems: list[str] = []

    def want(value, kind, where):
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if not ok:
            problems.append(f"{where} must be {kind.__name__}, got {value!r}")
        return ok

    for key in sorted(set(raw) - TOP_KEYS):
        problems.append(f"unknown key {key!r} (known: {', '.join(sorted(TOP_KEYS))})")
    duration = raw.get("duration_s", 30)
    want(duration, float, "duration_s")
    site = raw.get("site", "sim")
    if not (isinstance(site, str) and protocol.NAME_RE.match(site)):
        problems.append(f"site must match {protocol.NAME_RE.pattern}, got {site!r}")
    settings = raw.get("settings", {})
    want(settings, dict, "[settings]")
    gateway = raw.get("gateway", {})
    want(gateway, dict, "[gateway]")

    devices = []
    for n, d in enumerate(raw.get("devices", []), 1):
        where = f"devices #{n}"
        unknown = set(d) - {"name", "kind", "worker", "sensor", "battery_pct", "settings"}
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        name = d.get("name")
        if not (isinstance(name, str) and protocol.NAME_RE.match(name)):
            problems.append(f"{where}: name must match {protocol.NAME_RE.pattern}, got {name!r}")
            continue
        kind = d.get("kind", "fleet")
        if kind not in DEVICE_KINDS:
            problems.append(f"{name}: kind must be one of {', '.join(DEVICE_KINDS)}, got {kind!r}")
        sensor = d.get("sensor", "lis3dh")
        if sensor not in SENSORS:
            problems.append(f"{name}: sensor must be one of {', '.join(SENSORS)}, got {sensor!r}")
        battery = d.get("battery_pct", 90)
        want(battery, int, f"{name}: battery_pct")
        devices.append(Device(name, kind, d.get("worker"), sensor, battery, dict(d.get("settings", {}))))
    names = [d.name for d in devices]
    if not devices:
        problems.append("no [[devices]]")
    if len(set(names)) != len(names):
        problems.append("two devices with the same name")

    timeline = []
    for n, s in enumerate(raw.get("timeline", []), 1):
        s = dict(s)
        where = f"timeline #{n}"
        at, action, device = s.pop("at", None), s.pop("do", None), s.get("device")
        if not want(at, float, f"{where}: at"):
            continue
        if action in DEVICE_ACTIONS:
            s.pop("device", None)
            allowed = DEVICE_ACTIONS[action]
            if device not in names:
                problems.append(f"{where} ({action}): device must be one of the [[devices]], got {device!r}")
        elif action in WORLD_ACTIONS:
            allowed = WORLD_ACTIONS[action]
            if "device" in allowed and s.get("device") not in names:
                problems.append(f"{where} ({action}): device must be one of the [[devices]], got {device!r}")
        else:
            problems.append(f"{where}: do must be one of {', '.join([*DEVICE_ACTIONS, *WORLD_ACTIONS])}, "
                            f"got {action!r}")
            continue
        for key, value in s.items():
            if key not in allowed:
                problems.append(f"{where} ({action}): unknown parameter {key!r}")
            else:
                want(value, allowed[key], f"{where} ({action}): {key}")
        timeline.append(Step(float(at), action, device if action in DEVICE_ACTIONS else None, s))
    timeline.sort(key=lambda step: step.at)

    expect = []
    for n, e in enumerate(raw.get("expect", []), 1):
        where = f"expect #{n}"
        for key in sorted(set(e) - set(INCIDENT_KEYS)):
            problems.append(f"{where}: unknown key {key!r} (known: {', '.join(INCIDENT_KEYS)})")
        for key, value in e.items():
            if key in INCIDENT_KEYS:
                want(value, INCIDENT_KEYS[key], f"{where}: {key}")
        if e.get("device") not in names:
            problems.append(f"{where}: device must be one of the [[devices]], got {e.get('device')!r}")
        if e.get("type") not in vocabulary.ALARM_TYPES:
            problems.append(f"{where}: type must be one of {', '.join(vocabulary.ALARM_TYPES)}, got {e.get('type')!r}")
        if e.get("state") not in (None, *vocabulary.INCIDENT_STATES):
            problems.append(f"{where}: state must be one of {', '.join(vocabulary.INCIDENT_STATES)}")
        expect.append(Expected(e.get("device"), e.get("type"), e.get("cause"), e.get("at"),
                               float(e.get("within", DEFAULT_WITHIN_S)), e.get("state")))

    felt = raw.get("felt", {})
    if want(felt, dict, "[felt]"):
        for name, patterns in felt.items():
            if name not in names:
                problems.append(f"[felt]: {name!r} is not one of the [[devices]]")
            if not (isinstance(patterns, list) and all(isinstance(p, str) for p in patterns)):
                problems.append(f"[felt] {name}: must be a list of pattern names")

    if problems:
        raise ScenarioError(f"{path}:\n  " + "\n  ".join(problems))
    return Scenario(path, raw.get("name", path.stem), raw.get("description", ""), float(duration), site,
                    settings, gateway, devices, timeline, expect, felt)


async def play(scenario: Scenario, world, started: float, log=print) -> None:
    """Carry out the timeline; `started` is the scenario's time 0 (time.monotonic())."""
    for step in scenario.timeline:
        delay = started + step.at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        target = f" {step.device}" if step.device else ""
        log(f"[{step.at:6.1f} s] {step.action}{target} {step.params or ''}".rstrip())
        if step.device is not None:
            await world.device_action(step.device, step.action, step.params)
        else:
            await world.action(step.action, step.params)
    left = started + scenario.duration_s - time.monotonic()
    if left > 0:
        await asyncio.sleep(left)


def compare(scenario: Scenario, incidents: list[dict], felt: dict[str, list[str]], wall_start: float,
            problems: list[str]) -> list[str]:
    """What differed from the expectations; empty when everything was met and
    nothing else happened. incidents: the gateway's rows (device, type, cause,
    event_time, state); felt: device -> patterns in the order felt;
    problems: anything else that went wrong on the way."""
    differences = list(problems)
    left = sorted(incidents, key=lambda i: i["event_time"])
    for e in scenario.expect:
        def fits(i):
            if (i["device"], i["type"], i.get("cause")) != (e.device, e.type, e.cause):
                return False
            if e.at is not None and abs(i["event_time"] - wall_start - e.at) > e.within:
                return False
            return e.state is None or i["state"] == e.state
        match = next((i for i in left if fits(i)), None)
        if match is not None:
            left.remove(match)
            continue
        near = [i for i in left if (i["device"], i["type"], i.get("cause")) == (e.device, e.type, e.cause)]
        seen = "; seen " + ", ".join(_describe(i, wall_start) for i in near) if near else ""
        differences.append(f"missing: {e.describe()}{seen}")
    for i in left:
        differences.append(f"unexpected: {_describe(i, wall_start)}")
    for name, want in scenario.felt.items():
        got = felt.get(name, [])
        if got != want:
            differences.append(f"felt on {name}: expected {want}, got {got}")
    return differences


def _describe(incident: dict, wall_start: float) -> str:
    at = incident["event_time"] - wall_start
    return (f"{vocabulary.label_of(incident['type'], incident.get('cause'))} on {incident['device']} "
            f"at {at:.1f} s, {incident['state']}")


def shipped() -> list[Path]:
    return sorted(SCENARIOS.glob("*.toml"))
