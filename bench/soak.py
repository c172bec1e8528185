"""`lonewatch bench soak`: a fleet for a long while, to find what only time
shows: memory that grows, file descriptors, threads or tasks that leak, an
alarm lost on the way.

mosquitto with the shipped delivery settings, the real `lonewatch gateway`
process, N devices heartbeating every 30 s on their own connections, a
tenth of them dropping their connection and coming back each minute
(churn), a valid alarm every 2 s from enrolled devices (each sent again
until `delivered`, as the firmware does), and desk pages logged in to the
live feed. The gateway's resident memory, open files, threads and event-loop
tasks are sampled every 5 s; growth is measured from the end of the first
fifth of the run (the warm-up) to the end.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import aiohttp
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.gateway import start_broker, start_gateway, stop
from contract import protocol
from gateway.accounts import hash_password
from simulator.loadgen import connect_packet, publish_qos0_packet
from simulator.ports import wait_for_port

SITE = "soak"
ALARM_EVERY_S = 2.0
RESEND_S = 10.0
HEARTBEAT_S = 30.0
CHURN_SHARE_PER_MINUTE = 0.1
SAMPLE_S = 5.0
ENROLLED = [f"wearer-{n:03d}" for n in range(50)]
PASSWORD = "soak-password"


def add_arguments(parser) -> None:
    parser.add_argument("--minutes", type=float, default=30.0, help="how long (default 30)")
    parser.add_argument("--devices", type=int, default=1000, help="heartbeating devices (default 1,000)")
    parser.add_argument("--pages", type=int, default=5, help="desk pages on the live feed (default 5)")


async def _device(port: int, name: str, until: float, rng: random.Random, counts: dict) -> None:
    """Heartbeats on a raw connection; now and then the connection drops and comes back."""
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(connect_packet(name, keepalive=int(HEARTBEAT_S * 2)))
            await writer.drain()
            await reader.readexactly(4)
            counts["connects"] += 1
            await asyncio.sleep(rng.random() * HEARTBEAT_S)
            drop_at = time.monotonic() + rng.expovariate(CHURN_SHARE_PER_MINUTE / 60)
            while time.monotonic() < min(until, drop_at):
                body = {"v": 1, "device": name, "uptime_ms": 1000, "battery_pct": 80, "fw": "soak-1"}
                writer.write(publish_qos0_packet(protocol.topic(SITE, name, "heartbeat"), protocol.encode(body)))
                await writer.drain()
                counts["heartbeats"] += 1
                await asyncio.sleep(min(HEARTBEAT_S, max(0.0, drop_at - time.monotonic())))
            writer.transport.abort()  # churn: gone without a DISCONNECT
        except (OSError, asyncio.IncompleteReadError):
            counts["connect_failures"] += 1
            await asyncio.sleep(1)


class Alarms:
    """A valid alarm every ALARM_EVERY_S from an enrolled device, sent again until delivered."""

    def __init__(self, port: int):
        self.pending: dict[str, tuple[str, bytes]] = {}
        self.delivered: set[str] = set()
        self.raised: list[str] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="soak-alarms", clean_session=False)
        self.client.on_connect = lambda c, *a: c.subscribe(f"{protocol.TOPIC_ROOT}/{SITE}/+/cmd", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        body = protocol.parse_message(message.topic, message.payload).body
        if body["cmd"] == "delivered":
            self.delivered.add(body["ref"])
            self.pending.pop(body["ref"], None)

    async def run(self, until: float) -> None:
        n, last_resend = 0, time.monotonic()
        while time.monotonic() < until:
            n += 1
            device = ENROLLED[n % len(ENROLLED)]
            alarm_id = f"{device}:1:{n}"
            body = {"v": 1, "device": device, "id": alarm_id, "type": "panic", "uptime_ms": n,
                    "sent_uptime_ms": n}
            topic = protocol.topic(SITE, device, "alarm")
            self.pending[alarm_id] = (topic, protocol.encode(body))
            self.raised.append(alarm_id)
            self.client.publish(topic, protocol.encode(body), qos=1)
            if time.monotonic() - last_resend > RESEND_S:
                for topic, payload in list(self.pending.values()):
                    self.client.publish(topic, payload, qos=1)
                last_resend = time.monotonic()
            await asyncio.sleep(ALARM_EVERY_S)


async def _page(http_port: int, until: float, seen: list[int]) -> None:
    """A desk page: logged in, on the live feed until the end, counting incident updates."""
    base = f"http://127.0.0.1:{http_port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Origin": base}) as session:
        async with session.post(f"{base}/login", data={"name": "soak", "password": PASSWORD},
                                allow_redirects=False) as response:
            if response.status != 302 or response.headers.get("Location") != "/":
                raise RuntimeError(f"a desk page could not log in ({response.status})")
        async with session.ws_connect(f"{base}/ws") as ws:
            while time.monotonic() < until:
                try:
                    message = await ws.receive(timeout=max(0.1, until - time.monotonic()))
                except asyncio.TimeoutError:
                    continue
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"a desk page's live feed ended early ({message.type.name})")
                if json.loads(message.data).get("type") == "incident":
                    seen[0] += 1


def _proc_figures(pid: int) -> dict:
    figures = {"fds": len(list(Path(f"/proc/{pid}/fd").iterdir()))}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            figures["rss_kib"] = int(line.split()[1])
        elif line.startswith("Threads:"):
            figures["threads"] = int(line.split()[1])
    return figures


async def _tasks(session: aiohttp.ClientSession, http_port: int) -> int:
    async with session.get(f"http://127.0.0.1:{http_port}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("lonewatch_event_loop_tasks "):
                return int(float(line.split()[1]))
    return -1


async def _soak(args, mqtt_port: int, http_port: int, pid: int) -> tuple[list[dict], dict, Alarms, list[int]]:
    until = time.monotonic() + args.minutes * 60
    rng = random.Random(1)
    counts = {"connects": 0, "heartbeats": 0, "connect_failures": 0}
    devices = []
    for n in range(args.devices):
        devices.append(asyncio.create_task(_device(mqtt_port, f"hb-{n:04d}", until, random.Random(rng.random()),
                                                   counts)))
        if n % 50 == 49:
            await asyncio.sleep(0.05)
    alarms = Alarms(mqtt_port)
    seen = [0]
    pages = [asyncio.create_task(_page(http_port, until, seen)) for _ in range(args.pages)]
    sender = asyncio.create_task(alarms.run(until))
    samples = []
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < until:
            samples.append({"t": round(args.minutes * 60 - (until - time.monotonic()), 1), **_proc_figures(pid),
                            "tasks": await _tasks(session, http_port)})
            await asyncio.sleep(SAMPLE_S)
        await asyncio.gather(sender, *pages, *devices)
        deadline = time.monotonic() + 60
        while alarms.pending and time.monotonic() < deadline:
            for topic, payload in list(alarms.pending.values()):
                alarms.client.publish(topic, payload, qos=1)
            await asyncio.sleep(2)
        samples.append({"t": "end", **_proc_figures(pid), "tasks": await _tasks(session, http_port)})
    alarms.client.loop_stop()
    alarms.client.disconnect()
    return samples, counts, alarms, seen


def run(args) -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lonewatch-soak-") as tmpdir:
        tmp = Path(tmpdir)
        broker, mqtt_port = start_broker("mosquitto", tmp)
        procs = [broker]
        try:
            db = tmp / "soak.db"
            gateway, http_port, log_path = start_gateway(
                tmp, mqtt_port, db, "gw-soak", f'[dashboard.operators]\nsoak = "{hash_password(PASSWORD)}"\n'
                                               f'[devices]\nregistered = {json.dumps(ENROLLED)}\n')
            procs.append(gateway)
            wait_for_port(http_port, 30)
            samples, counts, alarms, seen = asyncio.run(_soak(args, mqtt_port, http_port, gateway.pid))
            alive = gateway.poll() is None
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                stored = dict(conn.execute("SELECT msg_id, count(*) FROM messages WHERE kind = 'alarm' GROUP BY msg_id"))
        finally:
            for proc in reversed(procs):
                stop(proc)
        tracebacks = sum("Traceback" in line for line in log_path.read_text().splitlines())

    warm = samples[max(1, len(samples) // 5)] if len(samples) > 2 else samples[0]
    last = samples[-1]
    growth = {key: round((last[key] - warm[key]) / warm[key] * 100, 1) if warm[key] else 0.0
              for key in ("rss_kib", "fds", "threads", "tasks")}
    lost = [a for a in alarms.raised if stored.get(a) != 1]
    undelivered = [a for a in alarms.raised if a not in alarms.delivered]
    result = {
        "minutes": args.minutes, "devices": args.devices, "pages": args.pages, **counts,
        "alarms": len(alarms.raised), "alarms_stored_once": len(alarms.raised) - len(lost),
        "alarms_delivered": len(alarms.raised) - len(undelivered), "page_updates": seen[0],
        "warm": {k: warm[k] for k in ("rss_kib", "fds", "threads", "tasks")},
        "end": {k: last[k] for k in ("rss_kib", "fds", "threads", "tasks")},
        "growth_pct": growth, "gateway_alive": alive, "tracebacks_logged": tracebacks,
        "seconds": round(time.monotonic() - started, 1),
    }
    # Memory may settle a little after warm-up; descriptors, threads and tasks must come back where they were.
    result["ok"] = bool(alive and not lost and not undelivered and not tracebacks and growth["rss_kib"] < 10
                        and last["fds"] <= warm["fds"] + 5 and last["threads"] <= warm["threads"]
                        and last["tasks"] <= warm["tasks"] + 5)
    print(f"{'gateway':<12} {'warm':>10} {'end':>10} {'growth %':>9}")
    for key in ("rss_kib", "fds", "threads", "tasks"):
        print(f"{key:<12} {warm[key]:>10,} {last[key]:>10,} {growth[key]:>9}")
    print(f"alarms {len(alarms.raised)}: stored once {result['alarms_stored_once']}, delivered "
          f"{result['alarms_delivered']}; heartbeats {counts['heartbeats']:,}, connects {counts['connects']:,} "
          f"(churn), page updates {seen[0]:,}; gateway alive {alive}, tracebacks {tracebacks}")
    print(json.dumps(result))
    return 0 if result["ok"] else 1
