"""What `lonewatch sim` runs (SimWorld): simulated devices, and unless it
joins an existing broker, the embedded broker and the real gateway on a
database of its own; a scenario's timeline acts on it and is checked
against what reached the gateway and what the wearers felt. Its control
endpoint on 127.0.0.1 lets a person press, drop or cut a device by hand."""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from lonewatch.stack import stop_within


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


ONLINE_TIMEOUT_S = 60.0


class SimWorld:
    """What `lonewatch sim` runs: devices, and unless it joins a broker, the
    embedded broker and the real gateway on a database in `workdir`. A
    scenario's timeline acts on it (device_action, action) and is checked
    against its incidents() and felt()."""

    def __init__(self, workdir, *, broker_url=None, mqtt_port=None, devices=None, firmware=0, site=None,
                 seed=None, heap_kb=None, scenario=None, control_port=None):
        from gateway.broker import EmbeddedBroker
        from simulator.fleet import Fleet
        from simulator.ports import free_port

        self.workdir = workdir
        self.scenario = scenario
        self.site = site or (scenario.site if scenario else "sim")
        self.broker = None if broker_url else EmbeddedBroker(mqtt_port or free_port())
        self.mqtt_url = broker_url or self.broker.url
        self.gateway = None
        self.config = None
        self.problems: list[str] = []
        self.control_port = control_port or free_port()
        self._control = None
        self.fleet = Fleet(self.mqtt_url, 0, site=self.site, seed=seed, incident_every_s=None,
                           flash=str(workdir / "fleet"))
        self.firmware: dict = {}  # name -> simulator.firmware_devices.FirmwareDevice
        self._heap_kb = heap_kb
        self._seed = seed or 0
        if scenario is not None:
            # A bare --firmware runs every device of the scenario as firmware; --firmware N the first N.
            as_firmware = len(scenario.devices) if firmware == -1 else firmware
            for n, d in enumerate(scenario.devices):
                settings = {**scenario.settings, **d.settings}
                if d.kind == "firmware" or n < as_firmware:
                    self._add_firmware(d.name, settings, d.sensor, d.battery_pct)
                else:
                    self.fleet.add(d.name, worker=d.worker, battery_pct=d.battery_pct, **settings)
        else:
            for n in range(1, max(firmware, 0) + 1):
                self._add_firmware(f"fw-{n:03d}", {}, "lis3dh", 90)
        for n in range(1, (3 if devices is None and scenario is None and firmware == 0 else devices or 0) + 1):
            self.fleet.add(f"sim-{n:03d}")
        self._connected_ever: set[str] = set()

    def _add_firmware(self, name, settings, sensor, battery_pct) -> None:
        from contract.protocol import parse_mqtt_url
        from simulator.firmware_devices import FirmwareDevice

        self.firmware[name] = FirmwareDevice(self.workdir / "firmware" / name, name, self.site,
                                             parse_mqtt_url(self.mqtt_url), settings=settings, sensor=sensor,
                                             battery_pct=battery_pct, heap_kb=self._heap_kb,
                                             seed=self._seed + len(self.firmware))

    # ---- lifecycle ----------------------------------------------------------

    def _gateway_config(self):
        from gateway.config import load_config

        tables = {name: dict(values) for name, values in (self.scenario.gateway if self.scenario else {}).items()}
        tables.setdefault("gateway", {})["db"] = str(self.workdir / "gateway.db")
        tables.setdefault("mqtt", {})["url"] = self.mqtt_url
        tables.setdefault("devices", {})["registered"] = self.device_names()
        path = self.workdir / "gateway.toml"
        path.write_text(_toml(tables))
        return load_config(str(path))

    async def start(self) -> None:
        if self.broker is not None:
            self.config = self._gateway_config()
            await self.broker.start()
            await self._start_gateway()
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

    async def _start_gateway(self) -> None:
        from gateway.service import Gateway

        gateway = Gateway(self.config)
        await gateway.start()
        self.gateway = gateway

    async def stop(self) -> None:
        if self._control is not None:
            await stop_within("control endpoint", self._control.cleanup)
        await stop_within("simulated devices", self.fleet.stop)
        if self.firmware:
            await stop_within("firmware devices", lambda: asyncio.gather(
                *(asyncio.to_thread(d.stop) for d in self.firmware.values())))
        if self.gateway is not None:
            await stop_within("gateway", self.gateway.stop)
            self.gateway = None
        if self.broker is not None:
            await stop_within("broker", self.broker.stop)

    # ---- what happens -------------------------------------------------------

    def device_names(self) -> list[str]:
        return [d.device for d in self.fleet.devices] + list(self.firmware)

    async def device_action(self, name: str, action: str, params: dict) -> None:
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

    async def action(self, action: str, params: dict) -> None:
        if action in ("broker_down", "broker_up", "gateway_kill", "gateway_start", "acknowledge", "resolve") \
                and self.broker is None:
            raise RuntimeError(f"{action} needs the simulator's own broker and gateway (run without --broker)")
        if action == "broker_down":
            await self.broker.stop()
        elif action == "broker_up":
            await self.broker.start()
        elif action == "gateway_kill":
            await self.gateway.stop()
            self.gateway = None
        elif action == "gateway_start":
            await self._start_gateway()
        elif action in ("acknowledge", "resolve"):
            await self._desk(action, params)
        else:
            raise ValueError(f"unknown action {action!r}")

    async def _desk(self, action: str, params: dict) -> None:
        device = params["device"]
        if self.gateway is None:
            self.problems.append(f"{action} {device}: the gateway is not running")
            return
        open_ = [i for i in self.gateway.store.list_incidents(state="open") if i["device"] == device]
        if not open_:
            self.problems.append(f"{action} {device}: the desk found no open incident")
            return
        if action == "acknowledge":
            await self.gateway.acknowledge(open_[0]["id"], "sim-desk")
        else:
            await self.gateway.resolve(open_[0]["id"], "sim-desk", params.get("reason", "test"))

    def _read(self, what):
        if self.gateway is not None:
            return what(self.gateway.store)
        if self.config is None:
            return []
        from gateway.store import Store
        store = Store(self.config.db)
        try:
            return what(store)
        finally:
            store.close()

    def incidents(self) -> list[dict]:
        return self._read(lambda store: store.list_incidents(limit=100000))

    def rejects(self) -> list[str]:
        """What the gateway refused, one line each: a simulated device must never send such a thing."""
        return self._read(lambda store: [f"the gateway rejected a message on {r['topic']}: {r['reason']} ({r['detail']})"
                                         for r in reversed(store.list_rejects(limit=100000))])

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
        gateway = self.gateway
        return {
            "devices": len(devices) + len(self.firmware),
            "online": len(online),
            "connected_ever": len(self._connected_ever),
            "messages_sent": sum(sum(d.sent.values()) for d in devices) + sum(d.sent() for d in self.firmware.values()),
            "alarms_raised": felt.count("alarm_queued"),
            "alarms_delivered": felt.count("delivered"),
            "alarms_acknowledged": felt.count("help_coming"),
            "incidents": len(gateway.store.list_incidents(limit=100000)) if gateway else None,
            "rejected": sum(gateway.ingest.counters.rejected.values()) if gateway else None,
            "problems": list(self.problems),
        }

    def banner(self) -> str:
        kinds = f"{len(self.fleet.devices)} fleet device(s)"
        if self.firmware:
            heap = f", {self._heap_kb} KB heap" if self._heap_kb else ""
            kinds += f" and {len(self.firmware)} running the firmware under micropython{heap}"
        kinds += f" on site {self.site!r}"
        lines = ["lonewatch sim is running", f"  devices:  {kinds}",
                 f"  broker:   {self.mqtt_url}{' (embedded amqtt)' if self.broker else ''}"]
        if self.config is not None:
            lines.append(f"  gateway:  database {self.config.db} (temporary)")
        lines.append(f"  control:  http://127.0.0.1:{self.control_port}/devices")
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
        site = web.TCPSite(runner, "127.0.0.1", self.control_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise RuntimeError(f"cannot serve the control endpoint on 127.0.0.1:{self.control_port} "
                               f"({exc.strerror}); choose another with --control-port") from exc
        self._control = runner


def control_routes(world, prefix: str = "") -> list[web.RouteDef]:
    """Driving devices by hand over HTTP: GET {prefix}/devices lists them with
    their state; POST {prefix}/devices/NAME/ACTION?KEY=VALUE does one of a
    scenario's device actions (simulator.scenario.DEVICE_ACTIONS), 404 for a
    device it does not have, 400 for an action or parameter it does not know.
    `world` has describe(), device_names() and async device_action(): the
    simulator's control endpoint, and the demo's simulator page at the desk."""
    from simulator.scenario import DEVICE_ACTIONS

    async def list_devices(request):
        return web.json_response(world.describe())

    async def act(request):
        name, action = request.match_info["name"], request.match_info["action"]
        if name not in world.device_names():
            return web.json_response({"error": f"no device {name!r}"}, status=404)
        if action not in DEVICE_ACTIONS:
            return web.json_response({"error": f"unknown action {action!r}; known: {', '.join(DEVICE_ACTIONS)}"},
                                     status=400)
        params = dict(request.query)
        for key, value in list(params.items()):
            kind = DEVICE_ACTIONS[action].get(key)
            if kind is None:
                return web.json_response({"error": f"{action}: unknown parameter {key!r}"}, status=400)
            try:
                params[key] = kind(value)
            except ValueError:
                return web.json_response({"error": f"{action}: {key} must be {kind.__name__}"}, status=400)
        await world.device_action(name, action, params)
        return web.json_response({"device": name, "action": action, "params": params})

    return [web.get(prefix + "/devices", list_devices), web.post(prefix + "/devices/{name}/{action}", act)]
