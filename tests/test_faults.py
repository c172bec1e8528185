"""Trying hard to lose an alarm: the real gateway process and mosquitto with
the shipped delivery and persistence settings, killed in the middle of a
burst. Devices behave as the firmware does: an alarm is sent again until the
gateway's `delivered` for it arrives."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import resource
import sqlite3
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.gateway import production_delivery_settings
from conftest import MosquittoBroker, free_port, require_mosquitto
from contract import protocol
from gateway_harness import GatewayProcess, http_get, wait_for, write_config

DEVICES = 100
ALARMS_EACH = 10
RESEND_S = 3.0  # the firmware's delivered_timeout_s, shortened


@pytest.fixture
def shipped_mosquitto(tmp_path):
    """mosquitto with deploy/mosquitto.conf's delivery and persistence lines."""
    require_mosquitto()
    data = tmp_path / "broker-data"
    data.mkdir()
    settings = production_delivery_settings()
    broker = MosquittoBroker(tmp_path, f"{settings}persistence_location {data}/\nuser {getpass.getuser()}\n")
    broker.start()
    yield broker
    broker.stop()


class ResendingDevices:
    """DEVICES wearables on a few MQTT connections. Each alarm is published
    (QoS 1) and published again every RESEND_S until its `delivered` arrives,
    as firmware/link.py does; `delivered` is seen on a persistent
    subscription to every device's command topic."""

    def __init__(self, broker, site: str = "hq"):
        self.site = site
        self.pending: dict[str, tuple[str, bytes]] = {}  # alarm id -> (topic, payload)
        self.delivered: set[str] = set()
        self.lock = threading.Lock()
        self.listener = self._client(broker, "fault-listener")
        self.listener.on_connect = lambda c, *a: c.subscribe(f"{protocol.TOPIC_ROOT}/{site}/+/cmd", qos=1)
        self.listener.on_message = self._on_command
        self.senders = [self._client(broker, f"fault-sender-{n}") for n in range(4)]
        for client in (self.listener, *self.senders):
            client.connect(broker.host, broker.port, keepalive=10)
            client.loop_start()
        self._stop = threading.Event()
        self._resender = threading.Thread(target=self._resend_forever, daemon=True)
        self._resender.start()

    @staticmethod
    def _client(broker, client_id: str) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        client.reconnect_delay_set(min_delay=0.2, max_delay=1)
        client.max_queued_messages_set(0)
        return client

    def _on_command(self, client, userdata, message):
        body = json.loads(message.payload)
        if body.get("cmd") == "delivered":
            with self.lock:
                self.delivered.add(body["ref"])
                self.pending.pop(body["ref"], None)

    def raise_alarm(self, n: int) -> str:
        device = f"dev-{n % DEVICES:03d}"
        alarm_id = f"{device}:1:{n // DEVICES + 1}"
        body = {"v": 1, "device": device, "id": alarm_id, "type": "panic", "uptime_ms": 1000 + n,
                "sent_uptime_ms": 1000 + n}
        topic = protocol.topic(self.site, device, "alarm")
        payload = protocol.encode(body)
        with self.lock:
            self.pending[alarm_id] = (topic, payload)
        self.senders[n % len(self.senders)].publish(topic, payload, qos=1)
        return alarm_id

    def _resend_forever(self) -> None:
        while not self._stop.wait(RESEND_S):
            with self.lock:
                waiting = list(self.pending.values())
            for n, (topic, payload) in enumerate(waiting):
                self.senders[n % len(self.senders)].publish(topic, payload, qos=1)

    def close(self) -> None:
        self._stop.set()
        for client in (self.listener, *self.senders):
            client.disconnect()
            client.loop_stop()


def stored_alarms(db_path) -> int:
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM messages WHERE kind = 'alarm'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # not created yet


def outcome(db_path) -> tuple[int, int, list[int]]:
    with sqlite3.connect(db_path) as db:
        messages = db.execute("SELECT count(*), count(DISTINCT msg_id) FROM messages WHERE kind = 'alarm'").fetchone()
        counts = [row[0] for row in db.execute("SELECT alarm_count FROM incidents ORDER BY device")]
    return messages[0], messages[1], counts


async def burst(devices: ResendingDevices, per_second: float) -> list[str]:
    ids = []
    for n in range(DEVICES * ALARMS_EACH):
        ids.append(devices.raise_alarm(n))
        await asyncio.sleep(1 / per_second)
    return ids


@contextlib.asynccontextmanager
async def gateway_and_devices(tmp_path, broker, http_port: int | None = None):
    """The gateway process (every DEVICES enrolled; its desk on http_port when
    given) once it serves, and the resending devices; both stopped after."""
    registered = [f"dev-{n:03d}" for n in range(DEVICES)]
    config_path = write_config(tmp_path, broker, devices={"registered": registered},
                               **({"dashboard": {"port": http_port}} if http_port else {}))
    gateway = GatewayProcess(config_path)
    gateway.start()
    devices = None
    try:
        await gateway.ready()
        devices = ResendingDevices(broker)
        yield gateway, str(tmp_path / "lonewatch.db"), devices
    finally:
        if devices:
            devices.close()
        gateway.stop()


def assert_every_alarm_stored_once_and_delivered(db_path, devices: ResendingDevices, ids: list[str]) -> None:
    total, distinct, per_incident = outcome(db_path)
    assert total == distinct == DEVICES * ALARMS_EACH
    # One incident per device: its later panics attach to the open one, each counted once.
    assert per_incident == [ALARMS_EACH] * DEVICES
    assert devices.delivered >= set(ids)


async def test_alarms_survive_the_gateway_killed_twice_in_a_burst(tmp_path, shipped_mosquitto):
    async with gateway_and_devices(tmp_path, shipped_mosquitto) as (gateway, db_path, devices):
        sending = asyncio.ensure_future(burst(devices, per_second=250))
        for at_least in (250, 600):
            await wait_for(lambda: stored_alarms(db_path) >= at_least, timeout=30, what=f"{at_least} stored")
            gateway.kill()
            gateway.start()
            await gateway.ready(timeout=20)
        ids = await sending
        await wait_for(lambda: devices.delivered >= set(ids), timeout=60,
                       what=f"delivered for every alarm ({len(devices.delivered)} of {len(ids)})")
        assert_every_alarm_stored_once_and_delivered(db_path, devices, ids)


async def test_alarms_survive_the_broker_killed_in_a_burst(tmp_path, shipped_mosquitto):
    """SIGKILL: the broker loses what it had not saved (autosave every 10 s);
    what the gateway did not answer with `delivered`, the devices send again."""
    async with gateway_and_devices(tmp_path, shipped_mosquitto) as (gateway, db_path, devices):
        sending = asyncio.ensure_future(burst(devices, per_second=250))
        await wait_for(lambda: stored_alarms(db_path) >= 400, timeout=30, what="400 stored")
        shipped_mosquitto.proc.kill()
        shipped_mosquitto.proc.wait()
        shipped_mosquitto.start()
        ids = await sending
        await wait_for(lambda: devices.delivered >= set(ids), timeout=90,
                       what=f"delivered for every alarm ({len(devices.delivered)} of {len(ids)})")
        assert_every_alarm_stored_once_and_delivered(db_path, devices, ids)


async def test_a_device_clock_an_hour_off_is_dated_by_the_gateway_and_the_skew_kept(tmp_path, shipped_mosquitto):
    async with gateway_and_devices(tmp_path, shipped_mosquitto) as (gateway, db_path, devices):
        body = {"v": 1, "device": "dev-001", "id": "dev-001:7:1", "type": "panic", "uptime_ms": 5000,
                "sent_uptime_ms": 5000, "time": round(time.time() + 3600, 3)}
        devices.listener.publish(protocol.topic("hq", "dev-001", "alarm"), protocol.encode(body), qos=1)
        await wait_for(lambda: "dev-001:7:1" in devices.delivered, timeout=10, what="delivered")
        with sqlite3.connect(db_path) as db:
            event_time, received_at, skew = db.execute(
                "SELECT event_time, received_at, skew_s FROM incidents WHERE alarm_id = 'dev-001:7:1'").fetchone()
        assert abs(event_time - received_at) < 1.0  # dated by the gateway's clock
        assert 3598 < skew < 3602  # and the device's error kept beside it


async def test_a_full_disk_stops_the_acknowledging_loudly_and_recovers_by_itself(tmp_path, shipped_mosquitto):
    """The gateway may write no more to any file (the limit a full disk sets):
    nothing is acknowledged that was not stored, the log and /healthz say so,
    and when space returns the waiting alarm is stored once and delivered."""
    http_port = free_port()
    async with gateway_and_devices(tmp_path, shipped_mosquitto, http_port) as (gateway, db_path, devices):
        first = devices.raise_alarm(1)
        await wait_for(lambda: first in devices.delivered, timeout=10, what="the first alarm delivered")

        resource.prlimit(gateway.proc.pid, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
        second = devices.raise_alarm(2 + DEVICES)
        await wait_for(lambda: gateway.logged("cannot commit"), timeout=10, what="the failed commit logged")
        status, body = http_get(http_port, "/healthz")
        health = json.loads(body)
        assert status == 503 and health["ok"] is False and health["db_writable"] is False
        assert any("refuses writes" in problem for problem in health["problems"])
        await asyncio.sleep(2 * RESEND_S)  # resent meanwhile: still nothing acknowledged, nothing stored
        assert second not in devices.delivered and stored_alarms(db_path) == 1

        resource.prlimit(gateway.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        await wait_for(lambda: second in devices.delivered, timeout=15, what="the waiting alarm delivered")
        total, distinct, _ = outcome(db_path)
        assert total == distinct == 2
        assert http_get(http_port, "/healthz")[0] == 200

