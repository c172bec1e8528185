"""`lonewatch bench gateway`: how fast the gateway stores a burst, compared
with a bare MQTT subscriber on the same broker in the same run, and how long an
alarm takes from publish to the desk's live feed while 1,000 devices heartbeat.

Everything runs on this machine: a mosquitto broker (or the embedded amqtt
one), the gateway as its own process (`lonewatch gateway`), and the load
generators of simulator.loadgen as further processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import paho.mqtt.client as mqtt

from contract import protocol
from gateway.accounts import hash_password
from simulator.loadgen import MIXES
from simulator.ports import free_port, wait_for_port

PYTHON = sys.executable
LONEWATCH = str(Path(sys.executable).parent / "lonewatch")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def add_arguments(parser) -> None:
    parser.add_argument("--count", type=int, default=10000, help="messages in the burst (default 10000)")
    parser.add_argument("--probes", type=int, default=200, help="alarms timed to the live feed (default 200)")
    parser.add_argument("--probe-rate", type=float, default=20.0, help="probe alarms per second (default 20)")
    parser.add_argument("--background-devices", type=int, default=1000,
                        help="devices heartbeating every 30 s during the run (default 1000)")
    parser.add_argument("--broker", choices=("mosquitto", "amqtt"), default="mosquitto",
                        help="broker to measure through (default mosquitto)")


DEPLOY_CONF = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto.conf"
# What decides how fast and how safely messages reach the gateway; auth, TLS,
# listeners, paths and logging are left out.
DELIVERY_SETTINGS = ("set_tcp_nodelay", "max_packet_size", "max_inflight_messages", "max_queued_messages",
                     "max_queued_bytes", "queue_qos0_messages", "persistence", "autosave_interval",
                     "autosave_on_changes")


def production_delivery_settings() -> str:
    """The delivery and persistence lines of deploy/mosquitto.conf, so the
    benchmark measures what production runs and cannot drift from it."""
    if not DEPLOY_CONF.exists():
        raise RuntimeError(f"{DEPLOY_CONF} is missing: run the benchmark from a lonewatch checkout")
    lines = [line for line in DEPLOY_CONF.read_text().splitlines()
             if line.split(" ", 1)[0] in DELIVERY_SETTINGS]
    return "".join(line + "\n" for line in lines)


def start_broker(kind: str, tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    if kind == "mosquitto":
        if not os.path.exists(MOSQUITTO):
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto), or use --broker amqtt")
        conf = tmp / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{production_delivery_settings()}"
                        f"persistence_location {tmp}/\nlog_dest none\n")
        proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        code = ("import asyncio; from gateway.broker import EmbeddedBroker\n"
                "async def main():\n    b = EmbeddedBroker(%d); await b.start(); await asyncio.Event().wait()\n"
                "asyncio.run(main())" % port)
        proc = subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return proc, port


def start_gateway(tmp: Path, mqtt_port: int, db: Path, gateway_id: str,
                  extra_toml: str = "") -> tuple[subprocess.Popen, int, Path]:
    """`lonewatch gateway` in its own process on the broker, its desk on a free
    port: (the process, the desk's port, its log file). extra_toml: more
    tables ([dashboard.operators], [devices], ...)."""
    http_port = free_port()
    config = tmp / "gateway.toml"
    config.write_text(f'[gateway]\nid = "{gateway_id}"\ndb = "{db}"\n[mqtt]\nurl = "mqtt://127.0.0.1:{mqtt_port}"\n'
                      f'[dashboard]\nport = {http_port}\n{extra_toml}')
    log_path = tmp / "gateway.log"
    proc = subprocess.Popen([LONEWATCH, "gateway", "--config", str(config)], stdout=subprocess.DEVNULL,
                            stderr=open(log_path, "w"))
    return proc, http_port, log_path


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


BURST_DEVICES = 100


def _burst(port: int, count: int, run: int, mix: str) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "simulator.loadgen", "burst", "--port", str(port), "--count",
                             str(count), "--devices", str(BURST_DEVICES), "--run", str(run), "--mix", mix])


def measure_bare(port: int, count: int, run: int, mix: str) -> float:
    """Messages per second a bare paho subscriber receives from the burst."""
    times: list[float] = []
    done = threading.Event()

    def on_message(client, userdata, message):
        times.append(time.perf_counter())
        if len(times) == count:
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bare")
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe([(protocol.topic("bench", "+", kind), 1) for kind in ("alarm", "event")])
    client.loop_start()
    time.sleep(0.5)
    publisher = _burst(port, count, run, mix)
    finished = done.wait(300)
    publisher.wait(60)
    client.loop_stop()
    client.disconnect()
    if not finished:
        raise RuntimeError(f"bare subscriber received {len(times)} of {count} messages")
    return (count - 1) / (times[-1] - times[0])


class _StoredBurst:
    """Counts the burst's rows as the gateway commits them. One read-only
    connection, and each look scans only the rows committed since the last:
    the observer must not take the CPU the gateway is being measured on.
    (The ingest writer is the only one inserting messages and commits one
    batch at a time, so ids only grow.)"""

    def __init__(self, db: Path):
        self.conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        self.after = self.conn.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
        self.stored = 0

    def count(self) -> int:
        try:
            new, last = self.conn.execute(
                "SELECT count(*) FILTER (WHERE device LIKE 'burst-%'), max(id) FROM messages WHERE id > ?",
                (self.after,)).fetchone()
        except sqlite3.OperationalError:
            return self.stored
        if last is not None:
            self.stored += new
            self.after = last
        return self.stored


def measure_gateway(port: int, db: Path, count: int, run: int, mix: str) -> float:
    """Messages per second the gateway stores (and deduplicates) from the same burst."""
    observer = _StoredBurst(db)
    publisher = _burst(port, count, run, mix)
    first = last = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        stored = observer.count()
        now = time.perf_counter()
        if stored > 0 and first is None:
            first = (now, stored)
        if stored >= count:
            last = now
            break
        time.sleep(0.02)
    observer.conn.close()
    publisher.wait(60)
    if last is None:
        raise RuntimeError(f"the gateway stored {stored} of {count} messages in 10 minutes")
    return (count - first[1]) / (last - first[0])


async def measure_latency(mqtt_port: int, http_port: int, password: str, probes: int, rate: float) -> list[float]:
    """Publish -> incident on the desk's WebSocket feed, in milliseconds."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-probe")
    client.connect("127.0.0.1", mqtt_port)
    client.loop_start()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        base = f"http://127.0.0.1:{http_port}"
        async with session.post(f"{base}/login", data={"name": "bench", "password": password},
                                headers={"Origin": base}, allow_redirects=False) as r:
            if r.status != 302 or r.headers.get("Location") != "/":
                raise RuntimeError("could not log in to the dashboard")
        async with session.ws_connect(f"{base}/ws") as ws:
            await ws.receive_json()  # snapshot
            all_seen = asyncio.Event()

            async def read():
                async for msg in ws:
                    item = json.loads(msg.data)
                    if item.get("type") != "incident":
                        continue
                    alarm_id = item["incident"].get("alarm_id")
                    if alarm_id in sent:
                        latencies.append((time.perf_counter() - sent.pop(alarm_id)) * 1000)
                        if len(latencies) == probes:
                            all_seen.set()

            reader = asyncio.create_task(read())
            for n in range(probes):
                device = f"probe-{n:04d}"
                body = {"v": 1, "device": device, "id": f"{device}:1:1", "type": "panic",
                        "uptime_ms": 5, "sent_uptime_ms": 5}
                sent[body["id"]] = time.perf_counter()
                client.publish(protocol.topic("bench", device, "alarm"), protocol.encode(body), qos=1)
                await asyncio.sleep(1 / rate)
            try:
                await asyncio.wait_for(all_seen.wait(), 30)
            except asyncio.TimeoutError:
                raise RuntimeError(f"only {len(latencies)} of {probes} probe alarms reached the live feed")
            finally:
                reader.cancel()
    client.loop_stop()
    client.disconnect()
    return latencies


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run(args) -> int:
    with tempfile.TemporaryDirectory(prefix="lonewatch-bench-") as tmpdir:
        tmp = Path(tmpdir)
        broker, mqtt_port = start_broker(args.broker, tmp)
        procs = [broker]
        try:
            print(f"broker: {args.broker} on 127.0.0.1:{mqtt_port}", flush=True)
            bare = {}
            for run_id, mix in enumerate(MIXES, start=1):
                bare[mix] = measure_bare(mqtt_port, args.count, run_id, mix)
                print(f"bare subscriber, {mix} burst: {bare[mix]:,.0f} msg/s", flush=True)

            password = "bench-password"
            db = tmp / "bench.db"
            gateway, http_port, _ = start_gateway(
                tmp, mqtt_port, db, "gw-bench",
                f'[dashboard.operators]\nbench = "{hash_password(password)}"\n'
                f'[devices]\nregistered = {json.dumps([f"burst-{n:04d}" for n in range(BURST_DEVICES)])}\n')
            procs.append(gateway)
            wait_for_port(http_port, 30)

            background = subprocess.Popen(
                [PYTHON, "-m", "simulator.loadgen", "heartbeats", "--port", str(mqtt_port),
                 "--devices", str(args.background_devices), "--seconds", "3600"],
                stdout=subprocess.PIPE, text=True)
            procs.append(background)
            background.stdout.readline()  # {"connected": N}
            print(f"background: {args.background_devices} devices connected, heartbeating every 30 s", flush=True)

            stored = {}
            for run_id, mix in enumerate(MIXES, start=len(MIXES) + 1):
                stored[mix] = measure_gateway(mqtt_port, db, args.count, run_id, mix)
                print(f"gateway, {mix} burst: {stored[mix]:,.0f} msg/s stored", flush=True)
            latencies = asyncio.run(measure_latency(mqtt_port, http_port, password, args.probes, args.probe_rate))
        finally:
            for proc in reversed(procs):
                stop(proc)

    result = {
        "broker": args.broker,
        "count": args.count,
        "background_devices": args.background_devices,
        "bare_rate": round(bare["fleet"], 1),
        "gateway_rate": round(stored["fleet"], 1),
        "ratio": round(stored["fleet"] / bare["fleet"], 3),
        "alarm_bare_rate": round(bare["alarms"], 1),
        "alarm_gateway_rate": round(stored["alarms"], 1),
        "alarm_ratio": round(stored["alarms"] / bare["alarms"], 3),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_percentile(latencies, 99), 2),
        "probes": len(latencies),
    }
    print()
    print(f"{'measure':<40} {'fleet mix':>10} {'alarms only':>12}")
    print(f"{'bare subscriber rate (msg/s)':<40} {bare['fleet']:>10,.0f} {bare['alarms']:>12,.0f}")
    print(f"{'gateway store rate (msg/s)':<40} {stored['fleet']:>10,.0f} {stored['alarms']:>12,.0f}")
    print(f"{'ratio (target >= 0.5)':<40} {result['ratio']:>10.3f} {result['alarm_ratio']:>12.3f}")
    print(f"{'publish -> live feed p50 (ms)':<40} {result['p50_ms']:>10.2f}")
    print(f"{'publish -> live feed p99 (ms, target <= 50)':<40} {result['p99_ms']:>10.2f}")
    print(json.dumps(result))
    return 0
