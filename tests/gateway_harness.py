"""Shared pieces of the gateway tests: a config on a real broker, a running
gateway, and a device that speaks lonewatch/v1 over a real MQTT connection."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from conftest import stop_process
from prometheus_client.parser import text_string_to_metric_families

from dashboard.metrics import registry_for, render
from contract import protocol
from gateway.config import load_config
from gateway.service import Gateway

ROOT = Path(__file__).resolve().parent.parent


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(value)


def write_config(tmp_path: Path, broker, extra_toml: str = "", **sections) -> Path:
    """A gateway.toml on `broker` with a db in tmp_path; sections as dicts,
    nested tables (routing) as TOML text in extra_toml."""
    tables = {"gateway": {"db": str(tmp_path / "lonewatch.db")}, "mqtt": {"url": broker.url}}
    for name, values in sections.items():
        tables.setdefault(name, {}).update(values)
    text = ""
    for name, values in tables.items():
        text += f"[{name}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items())
    path = tmp_path / "gateway.toml"
    path.write_text(text + extra_toml)
    return path


def make_config(tmp_path: Path, broker, extra_toml: str = "", **sections):
    return load_config(str(write_config(tmp_path, broker, extra_toml, **sections)))


def http_get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of a GET on the desk's port; an error status is returned, not raised."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text as {(sample name, labels): value}."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def metric(gateway, name: str, **labels) -> float:
    """One sample of the gateway's metrics, rendered as the desk's /metrics renders them."""
    return parse_metrics(render(registry_for(gateway)).decode())[(name, frozenset(labels.items()))]


@contextlib.asynccontextmanager
async def running_gateway(config):
    gateway = Gateway(config)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def client_for(app):
    """An aiohttp test client of the desk's `app`."""
    from aiohttp.test_utils import TestClient, TestServer

    client = TestClient(TestServer(app))
    await client.start_server()
    # What a browser sends with every POST from the desk's own pages.
    client.session.headers["Origin"] = str(client.make_url("")).rstrip("/")
    return client


@contextlib.asynccontextmanager
async def desk_logged_in(gateway, password: str = "correct horse"):
    """The desk's web app on `gateway`, and a client logged in to it as `desk`."""
    from dashboard.app import make_app
    from gateway.accounts import pbkdf2_hash

    desk = await client_for(make_app(gateway, {"desk": pbkdf2_hash(password, iterations=1000)}))
    try:
        response = await desk.post("/login", data={"name": "desk", "password": password}, allow_redirects=False)
        assert response.status == 302, await response.text()
        yield desk
    finally:
        await desk.close()


async def wait_for(predicate, timeout: float = 5.0, what: str = "condition"):
    """Poll predicate() until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def next_live(q: asyncio.Queue, match, timeout: float = 5.0) -> dict:
    """The next live update for which match(update) is true."""
    async with asyncio.timeout(timeout):
        while True:
            update = await q.get()
            if match(update):
                return update


class Device:
    """A wearable as the gateway sees it: a real MQTT client on the device's topics."""

    def __init__(self, broker, device: str = "dev-001", site: str = "hq", boot: int = 1, will: bool = True,
                 persistent: bool = False):
        """persistent: a session the broker keeps while we are away, as the firmware's."""
        self.device, self.site, self.boot = device, site, boot
        self._seq = itertools.count(1)
        self.uptime_ms = 1_000_000
        self.commands: queue.Queue = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{site}-{device}",
                                  clean_session=not persistent)
        if will:
            self.client.will_set(self.topic("status"), protocol.encode(
                {"v": 1, "device": device, "state": "offline"}), qos=1, retain=True)
        self.stray: list[str] = []  # amqtt 0.12 also delivers retained messages of other topics
        self.subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_disconnect = lambda *args: self.subscribed.clear()
        self.client.connect(broker.host, broker.port, keepalive=60)
        self.client.loop_start()
        if not self.subscribed.wait(5):
            raise RuntimeError(f"{device} could not subscribe to its commands at {broker.url}")

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        # On every connect, as the firmware does: a restarted broker may have forgotten us.
        client.subscribe(self.topic("cmd"), qos=1)

    def _on_message(self, client, userdata, message):
        if message.topic != self.topic("cmd"):
            self.stray.append(message.topic)
            return
        self.commands.put(protocol.parse_message(message.topic, message.payload))

    def topic(self, kind: str) -> str:
        return protocol.topic(self.site, self.device, kind)

    def next_id(self) -> str:
        return f"{self.device}:{self.boot}:{next(self._seq)}"

    def publish(self, kind: str, body, qos: int = 1, retain: bool = False) -> None:
        payload = body if isinstance(body, (bytes, str)) else protocol.encode(body)
        self.client.publish(self.topic(kind), payload, qos=qos, retain=retain).wait_for_publish(5)

    def alarm(self, alarm_type: str = "panic", alarm_id: str | None = None, waited_ms: int = 40, **extra) -> dict:
        body = {"v": 1, "device": self.device, "id": alarm_id or self.next_id(), "type": alarm_type,
                "uptime_ms": self.uptime_ms, "sent_uptime_ms": self.uptime_ms + waited_ms, **extra}
        self.publish("alarm", body)
        return body

    def event(self, event_type: str, **extra) -> dict:
        body = {"v": 1, "device": self.device, "id": self.next_id(), "type": event_type,
                "uptime_ms": self.uptime_ms, "sent_uptime_ms": self.uptime_ms + 10, **extra}
        self.publish("event", body)
        return body

    def heartbeat(self, battery_pct: int = 80, **extra) -> dict:
        body = {"v": 1, "device": self.device, "uptime_ms": self.uptime_ms, "battery_pct": battery_pct,
                "fw": "0.1.0", **extra}
        self.publish("heartbeat", body, qos=0)
        return body

    def online(self) -> None:
        self.publish("status", {"v": 1, "device": self.device, "state": "online"}, retain=True)

    def command(self, timeout: float = 5.0) -> protocol.Message:
        return self.commands.get(timeout=timeout)

    async def wait_command(self, cmd: str, timeout: float = 5.0) -> protocol.Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.commands.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.02)
                continue
            if message.body["cmd"] == cmd:
                return message
        raise AssertionError(f"{self.device} got no {cmd} command within {timeout} s")

    def vanish(self) -> None:
        """Drop the TCP connection without DISCONNECT, so the broker sends the Last Will."""
        self.client.loop_stop()
        self.client.socket().close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class GatewayProcess:
    """The gateway in its own process, so a test can kill it with SIGKILL."""

    def __init__(self, config_path: Path):
        self.config_path = config_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        lonewatch = str(Path(sys.executable).parent / "lonewatch")
        self.proc = subprocess.Popen([lonewatch, "gateway", "--config", str(self.config_path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        threading.Thread(target=self._read_log, args=(self.proc,), daemon=True).start()

    def _read_log(self, proc) -> None:
        for line in proc.stderr:
            self.log.append(line)

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.log)

    async def ready(self, timeout: float = 10.0) -> None:
        """Until the gateway has subscribed and the desk page listens: the banner
        "desk page on" comes after both. ("connected to" comes at the CONNACK: on
        a first connection a device's alarm sent right after it can reach the
        broker before the gateway's subscription does.)"""
        await wait_for(lambda: self.logged(" desk page on "), timeout=timeout, what="the gateway subscribed and serving")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)


class HoldingProxy:
    """A TCP relay between gateway and broker that can stop passing the
    gateway's packets (its PUBACKs) on, as if it died right after storing."""

    def __init__(self, broker):
        self.broker = broker
        self.hold_upstream = False
        self._server = None
        self._writers = []
        self._relays = set()

    @property
    def url(self):
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self):
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, client_reader, client_writer):
        self._relays.add(asyncio.current_task())
        broker_reader, broker_writer = await asyncio.open_connection(self.broker.host, self.broker.port)
        self._writers += [client_writer, broker_writer]

        async def pipe(reader, writer, upstream):
            try:
                while data := await reader.read(65536):
                    if not (upstream and self.hold_upstream):
                        writer.write(data)
                        await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pipe(client_reader, broker_writer, True), pipe(broker_reader, client_writer, False))

    def drop_connections(self):
        for writer in self._writers:
            writer.transport.abort()
        self._writers = []
        self.hold_upstream = False

    async def stop(self):
        self.drop_connections()
        self._server.close()
        for relay in self._relays:
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
