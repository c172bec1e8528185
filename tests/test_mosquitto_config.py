"""The shipped production mosquitto config (deploy/mosquitto.conf), run for real.

The test copy changes only ports and file paths; every other line is the
shipped one, so these tests prove what production gets: a burst to a gateway
that is away is delivered in full (the default config drops most of it),
survives a broker crash, and the ACL keeps each device to its own topics.
"""

from __future__ import annotations

import getpass
import queue
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from conftest import MOSQUITTO, free_port, require_mosquitto, wait_for_port
from lonewatch import brokerfiles
from lonewatch.commands import certs

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PASSWORD = {"gateway": "gw-pass-1", "dev-001": "dev1-pass", "dev-002": "dev2-pass"}
SITE = {"dev-001": "hq", "dev-002": "hq"}
BURST = 5000


def lab_certs(directory: Path) -> tuple[Path, Path, Path]:
    """What `lonewatch certs --out DIR --host 127.0.0.1` makes: CA, broker certificate and key."""
    files = certs.make(directory, ["127.0.0.1"])
    return files["broker.crt"], files["broker.key"], files["ca.crt"]


class Broker:
    """mosquitto started from a config text; restartable, killable."""

    def __init__(self, workdir: Path, config: str, port: int, tls_port: int | None = None, ca: Path | None = None):
        self.workdir, self.port, self.tls_port, self.ca = workdir, port, tls_port, ca
        self.config_path = workdir / "mosquitto.conf"
        self.config_path.write_text(config)
        self.log_path = workdir / "mosquitto.log"
        self.proc = None

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config_path)], stdout=log, stderr=log)
        log.close()
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.proc.kill()
            raise RuntimeError(f"mosquitto did not start:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text()


def shipped_broker(tmp_path: Path) -> Broker:
    """deploy/mosquitto.conf with its ports and paths moved into tmp_path."""
    crt, key, ca = lab_certs(tmp_path)
    passwd = tmp_path / "lonewatch.passwd"
    # The gateway's line from mosquitto's own tool, the devices' as provisioning writes them.
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "gateway", PASSWORD["gateway"]],
                   check=True, capture_output=True)
    acl = tmp_path / "lonewatch.acl"
    shutil.copy(DEPLOY / "mosquitto.acl", acl)
    for device, site in SITE.items():
        brokerfiles.set_password(passwd, device, PASSWORD[device])
        brokerfiles.set_acl(acl, site, device)
    (tmp_path / "data").mkdir()
    port, tls_port = free_port(), free_port()
    replacements = {
        r"listener 1883 127\.0\.0\.1": f"listener {port} 127.0.0.1",
        r"listener 8883": f"listener {tls_port} 127.0.0.1",
        r"certfile \S+": f"certfile {crt}",
        r"keyfile \S+": f"keyfile {key}",
        r"password_file \S+": f"password_file {passwd}",
        r"acl_file \S+": f"acl_file {acl}",
        r"persistence_location \S+": f"persistence_location {tmp_path / 'data'}/",
    }
    lines = (DEPLOY / "mosquitto.conf").read_text().splitlines()
    for pattern, replacement in replacements.items():
        hits = [i for i, line in enumerate(lines) if re.fullmatch(pattern, line)]
        assert len(hits) == 1, f"deploy/mosquitto.conf should have one line matching {pattern!r}"
        lines[hits[0]] = replacement
    # Started as root, mosquitto would drop to the `mosquitto` user, which
    # cannot read this test's private tmp_path; as anyone else this is a no-op.
    lines.append(f"user {getpass.getuser()}")
    return Broker(tmp_path, "\n".join(lines) + "\n", port, tls_port, ca=ca)


def default_broker(tmp_path: Path) -> Broker:
    """mosquitto's defaults, only opened to anonymous test clients."""
    port = free_port()
    return Broker(tmp_path, f"listener {port} 127.0.0.1\nallow_anonymous true\n", port)


@pytest.fixture
def shipped(tmp_path):
    require_mosquitto()
    broker = shipped_broker(tmp_path)
    broker.start()
    yield broker
    close_all_clients()
    broker.stop()


class Client:
    """A paho client with a queue of what it receives."""

    opened: list["Client"] = []

    def __init__(self, broker: Broker, user: str | None, client_id: str | None = None,
                 clean_session: bool = True, tls: bool = False, password: str | None = None):
        Client.opened.append(self)
        self.messages: queue.Queue = queue.Queue()
        self.connected: queue.Queue = queue.Queue()
        self.subacks: queue.Queue = queue.Queue()
        self.disconnected: queue.Queue = queue.Queue()
        self.mqtt = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or user or "anon",
                                clean_session=clean_session, protocol=mqtt.MQTTv311)
        if user is not None:
            self.mqtt.username_pw_set(user, password or PASSWORD[user])
        if tls:
            self.mqtt.tls_set(ca_certs=str(broker.ca))
        self.mqtt.max_inflight_messages_set(100)
        self.mqtt.reconnect_delay_set(0.05, 0.2)  # so close() never waits long
        self.mqtt.on_connect = lambda c, u, flags, rc, props: self.connected.put(rc)
        self.mqtt.on_disconnect = lambda c, u, flags, rc, props: self.disconnected.put(rc)
        self.mqtt.on_message = lambda c, u, msg: self.messages.put((msg.topic, msg.payload))
        self.mqtt.on_subscribe = lambda c, u, mid, rcs, props: self.subacks.put([rc.value for rc in rcs])
        self.mqtt.connect("127.0.0.1", broker.tls_port if tls else broker.port, keepalive=30)
        self.mqtt.loop_start()
        self.rc = self.connected.get(timeout=10)

    def subscribe(self, topic: str) -> int:
        self.mqtt.subscribe(topic, qos=1)
        return self.subacks.get(timeout=10)[0]

    def publish_all(self, topic: str, payloads) -> None:
        infos = [self.mqtt.publish(topic, p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(30)

    def drain(self, expected: int, idle_s: float = 2.0) -> list:
        """Receive until `expected` messages arrived or none came for idle_s."""
        got = []
        while len(got) < expected:
            try:
                got.append(self.messages.get(timeout=idle_s))
            except queue.Empty:
                break
        return got

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


@pytest.fixture(autouse=True)
def close_clients():
    """Stop every client's network thread, or paho would keep reconnecting."""
    yield
    close_all_clients()


def close_all_clients():
    while Client.opened:
        Client.opened.pop().close()


def burst_to_absent_subscriber(broker: Broker, sub_user, pub_user, tls: bool, restart=None) -> set[int]:
    """The gateway subscribes with a persistent session and goes away; a device
    publishes BURST QoS 1 messages; the gateway comes back. Returns what it got."""
    topic = "lonewatch/v1/hq/dev-001/event"
    gateway = Client(broker, sub_user, client_id="gateway", clean_session=False)
    assert gateway.subscribe("lonewatch/v1/#") == 1
    gateway.close()

    device = Client(broker, pub_user, client_id="dev-001", tls=tls)
    device.publish_all(topic, (str(i).encode() for i in range(BURST)))
    device.close()
    if restart:
        restart()

    gateway = Client(broker, sub_user, client_id="gateway", clean_session=False)
    got = gateway.drain(BURST)
    gateway.close()
    return {int(payload) for t, payload in got if t == topic}


def test_the_shipped_config_starts_and_refuses_strangers(shipped):
    assert Client(shipped, "gateway").rc == 0
    assert Client(shipped, "dev-001", tls=True).rc == 0
    assert Client(shipped, None).rc == mqtt.ReasonCode(mqtt.PacketTypes.CONNACK, identifier=135)  # not authorized
    assert Client(shipped, "dev-001", password="guess", tls=True).rc != 0
    assert Client(shipped, "dev-001", password=PASSWORD["dev-002"], tls=True).rc != 0  # another device's


def test_a_burst_to_an_absent_gateway_is_kept_in_full_unlike_mosquittos_default(tmp_path):
    require_mosquitto()
    (tmp_path / "default").mkdir()
    (tmp_path / "shipped").mkdir()

    default = default_broker(tmp_path / "default")
    default.start()
    try:
        with_defaults = burst_to_absent_subscriber(default, None, None, tls=False)
    finally:
        default.stop()

    shipped = shipped_broker(tmp_path / "shipped")
    shipped.start()
    try:
        with_shipped = burst_to_absent_subscriber(shipped, "gateway", "dev-001", tls=True)
    finally:
        shipped.stop()

    print(f"burst of {BURST} QoS 1 messages to an absent persistent subscriber: "
          f"default config delivered {len(with_defaults)}, shipped config {len(with_shipped)}")
    assert len(with_defaults) <= 1100  # max_queued_messages 1000 (+ the in-flight window)
    assert "Outgoing messages are being dropped" in default.log()
    assert with_shipped == set(range(BURST))


def test_queued_messages_survive_a_broker_crash_after_the_autosave(tmp_path):
    require_mosquitto()
    broker = shipped_broker(tmp_path)
    snapshot = tmp_path / "data" / "mosquitto.db"
    interval = int(re.search(r"^autosave_interval (\d+)$", broker.config_path.read_text(), re.M).group(1))
    broker.start()

    def crash_after_autosave():
        published = time.time()
        deadline = time.monotonic() + interval + 5
        while not (snapshot.exists() and snapshot.stat().st_mtime > published):
            assert time.monotonic() < deadline, f"no snapshot within autosave_interval {interval} s"
            time.sleep(0.1)
        broker.stop(signal.SIGKILL)  # no shutdown save: only the autosave counts
        broker.start()

    try:
        got = burst_to_absent_subscriber(broker, "gateway", "dev-001", tls=True, restart=crash_after_autosave)
    finally:
        broker.stop()
    assert got == set(range(BURST))


def forged_publish_is_dropped_and_cut_off(broker: Broker, user: str, topic: str) -> None:
    intruder = Client(broker, user, tls=True)
    intruder.publish_all(topic, [b"forged"])
    # MQTT 3.1.1 has no way to refuse a publish: mosquitto acknowledges it,
    # drops it and closes the connection.
    intruder.disconnected.get(timeout=5)
    intruder.close()  # before paho reconnects and takes the session back


def test_the_acl_keeps_each_device_to_its_own_site_id_and_commands(shipped):
    gateway = Client(shipped, "gateway")
    assert gateway.subscribe("lonewatch/v1/#") == 1

    forged_publish_is_dropped_and_cut_off(shipped, "dev-002", "lonewatch/v1/hq/dev-001/alarm")  # as another device
    forged_publish_is_dropped_and_cut_off(shipped, "dev-002", "lonewatch/v1/north/dev-002/alarm")  # under another site
    forged_publish_is_dropped_and_cut_off(shipped, "dev-002", "lonewatch/v1/hq/dev-002/cmd")  # a command to itself

    device = Client(shipped, "dev-002", tls=True)
    device.publish_all("lonewatch/v1/hq/dev-002/alarm", [b"own"])
    assert gateway.drain(4, idle_s=0.5) == [("lonewatch/v1/hq/dev-002/alarm", b"own")]

    # A device reads its own commands only (mosquitto 2.0 grants the
    # subscription and applies the ACL to each message).
    device.subscribe("lonewatch/v1/hq/dev-001/cmd")
    device.subscribe("lonewatch/v1/hq/dev-002/cmd")
    device.subscribe("lonewatch/v1/north/dev-002/cmd")
    gateway.publish_all("lonewatch/v1/hq/dev-001/cmd", [b"for dev-001"])
    gateway.publish_all("lonewatch/v1/north/dev-002/cmd", [b"for dev-002 elsewhere"])
    gateway.publish_all("lonewatch/v1/hq/dev-002/cmd", [b"for dev-002"])
    assert device.drain(3, idle_s=0.5) == [("lonewatch/v1/hq/dev-002/cmd", b"for dev-002")]


def test_a_device_cannot_take_over_another_devices_session(shipped):
    victim = Client(shipped, "dev-001", tls=True)
    Client(shipped, "dev-002", client_id="dev-001", tls=True)  # claims the victim's client id
    time.sleep(0.3)
    assert victim.mqtt.is_connected()
    assert "as dev-002" in shipped.log()
