"""What `lonewatch sim` runs (SimWorld): simulated devices, and unless it
joins an existing broker, the embedded broker and the real gateway (a
`lonewatch gateway` process, GatewayProcess) on a database of its own; a
scenario's timeline acts on it and is checked
against what reached the gateway and what the wearers felt. Its control
endpoint on 127.0.0.1 lets a person press, drop or cut a device by hand."""

from __future__ import annotations

import asyncio
import ctypes
import json
import secrets
import signal
import subprocess
import sys
import time

import aiohttp
from aiohttp import web

from lonewatch.simcontrols import control_routes
from lonewatch.stack import stop_within
from simulator.ports import claimed_port


def _toml(tables: dict) -> str:
    """The gateway config the simulator writes: tables of scalars and lists."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise ValueError(f"cannot write {v!r} into the gateway config")
    return "".join(f"[{name}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in table.items())
                   for name, table in tables.items())


if sys.platform == "linux":
    _prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it

    def _end_with_parent() -> None:
        # The gateway of a simulator that was itself killed (kill -9, a test's
        # timeout) would otherwise stay behind, holding on to a dead broker.
        PR_SET_PDEATHSIG = 1
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
else:
    _end_with_parent = None


ONLINE_TIMEOUT_S = 60.0
GATEWAY_START_TIMEOUT_S = 60.0
GATEWAY_STOP_S = 0.9
DESK_TIMEOUT_S = 10.0
# The embedded broker's stop waits on every client's session; a stop that
# takes longer than this is reported rather than waited for.
BROKER_STOP_S = 10.0
DESK_OPERATOR = "sim-desk"


class GatewayProcess:
    """`lonewatch gateway` in a process of its own, so that a scenario can
    kill it as a power cut or an OOM killer would (SIGKILL: no clean stop),
    and start it again on the same database. The desk's actions go through
    its HTTP interface, logged in as DESK_OPERATOR."""

    def __init__(self, config_path, http_port: int, password: str):
        self.config_path = config_path
        self.url = f"http://127.0.0.1:{http_port}"
        self.password = password
        self.proc: subprocess.Popen | None = None
        self.desk: aiohttp.ClientSession | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def start(self) -> None:
        """Start it and wait until it is connected to the broker and the desk is logged in."""
        if self.running:
            raise RuntimeError("the gateway is running already: a second one could not bind its ports")
        self.proc = subprocess.Popen([sys.executable, "-m", "lonewatch.cli", "gateway", "--config",
                                      str(self.config_path)], stdin=subprocess.DEVNULL,
                                     preexec_fn=_end_with_parent)
        # Its desk sessions live in its memory: a new process, a new login.
        await self._close_desk()
        self.desk = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Origin": self.url},
                                          timeout=aiohttp.ClientTimeout(total=DESK_TIMEOUT_S))
        deadline = time.monotonic() + GATEWAY_START_TIMEOUT_S
        health = "its desk did not answer"
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with status {self.proc.returncode} while starting "
                                   "(its log is above)")
            try:
                async with self.desk.get(self.url + "/healthz") as answer:
                    if answer.status == 200:
                        break
                    health = "; ".join((await answer.json()).get("problems", [])) or f"/healthz {answer.status}"
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway was not ready {GATEWAY_START_TIMEOUT_S:g} s after its start: "
                                   f"{health}")
            await asyncio.sleep(0.1)
        async with self.desk.post(self.url + "/login", data={"name": DESK_OPERATOR, "password": self.password},
                                  allow_redirects=False) as answer:
            if answer.headers.get("Location") != "/":
                raise RuntimeError(f"the simulator's desk could not log in to the gateway ({answer.status}, "
                                   f"{answer.headers.get('Location')})")

    async def kill(self) -> None:
        """SIGKILL: whatever it was doing stops mid-way."""
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(self.proc.wait)

    async def stop(self) -> None:
        await self._close_desk()
        if self.running:
            await asyncio.to_thread(self._end)

    def _end(self) -> None:
        # Within the simulator's own stop budget (lonewatch.stack.PART_STOP_TIMEOUT_S):
        # a clean stop if it comes in time, else SIGKILL, never a gateway left behind.
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(GATEWAY_STOP_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    async def _close_desk(self) -> None:
        if self.desk is not None:
            await self.desk.close()
            self.desk = None

    async def post(self, path: str, body: dict) -> tuple[int, str]:
        async with self.desk.post(self.url + path, json=body) as answer:
            return answer.status, await answer.text()


class SimWorld:
    """What `lonewatch sim` runs: devices, and unless it joins a broker, the
    embedded broker and a gateway process on a database in `workdir`. A
    scenario's timeline acts on it (device_action, action) and is checked
    against its incidents() and felt()."""

    def __init__(self, workdir, *, broker_url=None, mqtt_port=None, devices=None, firmware=0, site=None,
                 seed=None, heap_kb=None, scenario=None, control_port=None, falls=None):
        from gateway.broker import EmbeddedBroker
        from simulator.fleet import Fleet

        self.workdir = workdir
        self.scenario = scenario
        self.site = site or (scenario.site if scenario else "sim")
        self.broker = None if broker_url else EmbeddedBroker(mqtt_port or claimed_port())
        self.mqtt_url = broker_url or self.broker.url
        self.gateway: GatewayProcess | None = None
        self.config = None
        self._store = None  # the gateway's database, read as the desk would
        self.problems: list[str] = []
        self.control_port = control_port  # None: the system picks a free one when it is bound
        self._control = None
        self.fleet = Fleet(self.mqtt_url, 0, site=self.site, seed=seed, incident_every_s=None,
                           flash=str(workdir / "fleet"))
        self.firmware: dict = {}  # name -> simulator.firmware_devices.FirmwareDevice
        self._heap_kb = heap_kb
        self._seed = seed or 0
        self.falls = falls  # SisFall-format folder, or None: synthetic falls
        self._bodies: dict[str, tuple[int, dict]] = {}  # name -> seed, man-down detector config
        self.motions: list[str] = []  # the man-down traces played, what the detector made of them
        self._verdicts: list[asyncio.TimerHandle] = []
        if scenario is not None:
            # A bare --firmware runs every device of the scenario as firmware; --firmware N the first N.
            as_firmware = len(scenario.devices) if firmware == -1 else firmware
            for n, d in enumerate(scenario.devices):
                settings = {**scenario.settings, **d.settings}
                if d.kind == "firmware" or n < as_firmware:
                    self._add_firmware(d.name, settings, d.sensor, d.battery_pct)
                else:
                    self._add_fleet(d.name, settings, worker=d.worker, battery_pct=d.battery_pct)
        else:
            for n in range(1, max(firmware, 0) + 1):
                self._add_firmware(f"fw-{n:03d}", {}, "lis3dh", 90)
        for n in range(1, (3 if devices is None and scenario is None and firmware == 0 else devices or 0) + 1):
            self._add_fleet(f"sim-{n:03d}", {})
        self._connected_ever: set[str] = set()

    def _body(self, name, mandown_config) -> int:
        """A device's seed, and the config of the detector that judges its motions."""
        seed = self._seed + len(self._bodies)
        self._bodies[name] = (seed, mandown_config)
        return seed

    def _add_firmware(self, name, settings, sensor, battery_pct) -> None:
        from contract.protocol import parse_mqtt_url
        from simulator.board import device_config
        from simulator.firmware_devices import FirmwareDevice

        # The wearable's start gesture starts a session of its config's
        # session_s: the length the scenario asks of this device's sessions.
        lengths = {step.params.get("duration_s", 3600) for step in (self.scenario.timeline if self.scenario else ())
                   if step.action == "session_start" and step.device == name}
        if len(lengths) > 1:
            raise ValueError(f"{name}: a firmware device starts every session with the same length "
                             f"(its session_s); the scenario asks for {sorted(lengths)}")
        if lengths and "session_s" not in settings:
            settings = dict(settings, session_s=int(lengths.pop()))
        self.firmware[name] = FirmwareDevice(self.workdir / "firmware" / name, name, self.site,
                                             parse_mqtt_url(self.mqtt_url), settings=settings, sensor=sensor,
                                             battery_pct=battery_pct, heap_kb=self._heap_kb,
                                             seed=self._body(name, device_config(0, **settings)["mandown"]))

    def _add_fleet(self, name, settings, **options) -> None:
        # The firmware's detector as it ships: a fleet device has no idle
        # trace for the long rules to mistake for a wearer down (board.device_config).
        self._body(name, settings.get("mandown"))
        # A fleet device has no detector of its own: its settings (firmware
        # config keys) go to it, all but the detector's.
        self.fleet.add(name, **options, **{k: v for k, v in settings.items() if k != "mandown"})

    # ---- lifecycle ----------------------------------------------------------

    def _gateway_config(self):
        from gateway.accounts import hash_password
        from gateway.config import load_config

        tables = {name: dict(values) for name, values in (self.scenario.gateway if self.scenario else {}).items()}
        tables.setdefault("gateway", {})["db"] = str(self.workdir / "gateway.db")
        tables.setdefault("mqtt", {})["url"] = self.mqtt_url
        tables.setdefault("devices", {})["registered"] = self.device_names()
        tables.setdefault("dashboard", {}).update(host="127.0.0.1", port=claimed_port())
        password = secrets.token_urlsafe(16)
        tables["dashboard.operators"] = {DESK_OPERATOR: hash_password(password)}
        path = self.workdir / "gateway.toml"
        path.write_text(_toml(tables))
        config = load_config(str(path))  # a mistake in the scenario's [gateway] tables shows here, not in a child
        return config, GatewayProcess(path, config.dashboard.port, password)

    async def start(self) -> None:
        from gateway.store import Store

        if self.broker is not None:
            self.config, self.gateway = self._gateway_config()
            await self.broker.start()
            await self.gateway.start()
            self._store = Store(self.config.db)
        await self.fleet.start()
        await asyncio.gather(*(asyncio.to_thread(d.start) for d in self.firmware.values()))
        await self._start_control()
        # A scenario's time 0 is when every device is online: a busy machine
        # must not shift its timeline against devices still connecting.
        deadline = time.monotonic() + ONLINE_TIMEOUT_S
        while (online := self._online()) < len(self.device_names()):
            if time.monotonic() > deadline:
                self.problems.append(f"only {online} of {len(self.device_names())} devices online "
                                     f"{ONLINE_TIMEOUT_S:g} s after the start")
                break
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        for verdict in self._verdicts:
            verdict.cancel()
        if self._control is not None:
            await stop_within("control endpoint", self._control.cleanup)
        await stop_within("simulated devices", self.fleet.stop)
        if self.firmware:
            await stop_within("firmware devices", lambda: asyncio.gather(
                *(asyncio.to_thread(d.stop) for d in self.firmware.values())))
        if self.gateway is not None:
            await stop_within("gateway", self.gateway.stop)
        if self._store is not None:
            self._store.close()
        if self.broker is not None:
            await stop_within("broker", self.broker.stop)

    # ---- what happens -------------------------------------------------------

    def device_names(self) -> list[str]:
        return [d.device for d in self.fleet.devices] + list(self.firmware)

    async def device_action(self, name: str, action: str, params: dict) -> None:
        from simulator import wearer

        if action in wearer.MAN_DOWN:
            await self._man_down(name, action)
            return
        if name in self.firmware:
            # Pressing and holding take as long on a board as by hand; the
            # timeline does not wait for them, as it does not for a fleet device.
            task = asyncio.create_task(asyncio.to_thread(self.firmware[name].act, action, params))
            task.add_done_callback(lambda t: t.cancelled() or t.exception() is None or self.problems.append(
                f"{action} {name}: {t.exception()}"))
            return
        if name not in self.fleet.by_name:
            raise ValueError(f"no device {name!r}")
        await self.fleet.device_action(name, action, params)

    async def _man_down(self, name: str, action: str) -> None:
        """The wearer's body does what the action says; the detector decides
        what it was and when (simulator.wearer)."""
        from simulator import wearer

        if name not in self.firmware and name not in self.fleet.by_name:
            raise ValueError(f"no device {name!r}")
        seed, config = self._bodies[name]
        motion = await asyncio.to_thread(wearer.motion, action, seed, config, self.falls)
        self.motions.append(f"{name} {motion.describe()}")
        if name in self.firmware:
            await asyncio.to_thread(self.firmware[name].move, motion)
        elif motion.verdict is not None:
            self._verdicts.append(asyncio.get_running_loop().call_later(
                motion.after_s, self._verdict, name, motion.verdict))

    def _verdict(self, name: str, verdict: str) -> None:
        """What the fleet device's detector decided, done on it; a failure is one of the run's problems."""
        done = self.fleet.act(name, verdict, {})
        done.add_done_callback(lambda f: f.cancelled() or f.exception() is None or self.problems.append(
            f"{verdict} {name}: {f.exception()}"))

    async def action(self, action: str, params: dict) -> None:
        if action in ("broker_down", "broker_up", "gateway_kill", "gateway_start", "acknowledge", "resolve") \
                and self.broker is None:
            raise RuntimeError(f"{action} needs the simulator's own broker and gateway (run without --broker)")
        if action == "broker_down":
            try:
                await asyncio.wait_for(self.broker.stop(), BROKER_STOP_S)
            except TimeoutError:
                self.problems.append(f"broker_down: the embedded broker had not stopped after {BROKER_STOP_S:g} s")
        elif action == "broker_up":
            await self.broker.start()
        elif action == "gateway_kill":
            await self.gateway.kill()
        elif action == "gateway_start":
            await self.gateway.start()
        elif action in ("acknowledge", "resolve"):
            await self._desk(action, params)
        else:
            raise ValueError(f"unknown action {action!r}")

    async def _desk(self, action: str, params: dict) -> None:
        """What an operator does on the desk page, through the gateway's HTTP interface."""
        device = params["device"]
        if not self.gateway.running:
            self.problems.append(f"{action} {device}: the gateway is not running")
            return
        open_ = [i for i in self._store.list_incidents(state="open") if i["device"] == device]
        if not open_:
            self.problems.append(f"{action} {device}: the desk found no open incident")
            return
        path, body = ((f"/api/incidents/{open_[0]['id']}/ack", {}) if action == "acknowledge" else
                      (f"/api/incidents/{open_[0]['id']}/resolve", {"reason": params.get("reason", "test")}))
        try:
            status, text = await self.gateway.post(path, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.problems.append(f"{action} {device}: the desk got no answer ({exc or type(exc).__name__})")
            return
        if status != 200:
            self.problems.append(f"{action} {device}: the desk answered {status}: {text}")

    def incidents(self) -> list[dict]:
        return self._store.list_incidents(limit=100000) if self._store else []

    def rejects(self) -> list[str]:
        """What the gateway refused, one line each: a simulated device must never send such a thing."""
        if self._store is None:
            return []
        return [f"the gateway rejected a message on {r['topic']}: {r['reason']} ({r['detail']})"
                for r in reversed(self._store.list_rejects(limit=100000))]

    def felt(self) -> dict[str, list[str]]:
        felt = {d.device: [p for _, p in d.felt] for d in self.fleet.devices}
        felt.update({name: d.felt() for name, d in self.firmware.items()})
        return felt

    def describe(self) -> list[dict]:
        return self.fleet.describe() + [d.describe() for d in self.firmware.values()]

    def _online(self) -> int:
        return self.fleet.connected() + sum(1 for d in self.firmware.values() if d.online)

    def summary(self) -> dict:
        devices = self.fleet.devices
        online = [d.device for d in devices if d.online] + [n for n, d in self.firmware.items() if d.online]
        self._connected_ever.update(online)
        felt = [p for patterns in self.felt().values() for p in patterns]
        store = self._store
        return {
            "devices": len(devices) + len(self.firmware),
            "online": len(online),
            "connected_ever": len(self._connected_ever),
            "messages_sent": sum(sum(d.sent.values()) for d in devices) + sum(d.sent() for d in self.firmware.values()),
            "alarms_raised": felt.count("alarm_queued"),
            "alarms_delivered": felt.count("delivered"),
            "alarms_acknowledged": felt.count("help_coming"),
            # Counted, not read: the progress line asks every second, on the
            # event loop that also carries the broker.
            "incidents": store.count_incidents() if store else None,
            "rejected": store.count_rejects() if store else None,
            "problems": list(self.problems),
            "man_down": list(self.motions),
        }

    def banner(self) -> str:
        from simulator import wearer

        kinds = f"{len(self.fleet.devices)} fleet device(s)"
        if self.firmware:
            heap = f", {self._heap_kb} KB heap" if self._heap_kb else ""
            kinds += f" and {len(self.firmware)} running the firmware under micropython{heap}"
        kinds += f" on site {self.site!r}"
        lines = ["lonewatch sim is running", f"  devices:  {kinds}",
                 f"  broker:   {self.mqtt_url}{' (embedded amqtt)' if self.broker else ''}"]
        if self.config is not None:
            lines.append(f"  gateway:  database {self.config.db} (temporary)")
            lines.append(f"  desk:     {self.gateway.url}/ (log in as {DESK_OPERATOR} / {self.gateway.password})")
        lines.append(f"  control:  http://127.0.0.1:{self.control_port}/devices")
        if self.falls is not None:
            lines.append(f"  falls:    SisFall recordings in {self.falls}")
        else:
            lines.append(f"  falls:    synthetic (no SisFall recordings at {wearer.DEFAULT_SISFALL}; --data DIR)")
        if self.scenario is not None:
            lines.append(f"  scenario: {self.scenario.name} ({self.scenario.duration_s:g} s)")
        lines.append("Press Ctrl-C to stop.")
        return "\n".join(lines)

    # ---- driving devices by hand --------------------------------------------

    async def _start_control(self) -> None:
        app = web.Application()
        app.add_routes(control_routes(self))
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.control_port or 0)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise RuntimeError(f"cannot serve the control endpoint on 127.0.0.1:{self.control_port} "
                               f"({exc.strerror}); choose another with --control-port") from exc
        self._control = runner
        self.control_port = runner.addresses[0][1]
