"""The firmware's own asyncio MQTT client, run by the real MicroPython VM
against real brokers: QoS 0/1 publish with PUBACK, retained messages,
subscription and downlink, keepalive pings, and the Last Will when the device
vanishes."""

import queue
import socket
import subprocess
import threading
import time

import paho.mqtt.client as paho

from conftest import FIRMWARE, MICROPYTHON


DEVICE_SCRIPT = """
import asyncio, sys, time
import mqtt

got = []

async def main():
    c = mqtt.Client("dev-9", keepalive_s=1, clean_session=False,
                    will=("t/dev-9/status", b"offline", 1, True),
                    on_message=lambda t, p: got.append((t, p)))
    present = await c.connect("127.0.0.1", %(port)d, 5000)
    print("session_present", present)
    await c.subscribe("t/dev-9/cmd", 1)
    await c.publish("t/dev-9/status", b"online", 1, True)
    await c.publish("t/dev-9/alarm", b"qos1", 1)
    await c.publish("t/dev-9/heartbeat", b"qos0", 0)
    print("published")
    while not got:
        await asyncio.sleep_ms(20)
    print("got", got[0][0], got[0][1].decode())
    await asyncio.sleep_ms(2500)  # 2.5 keepalive periods: pings must keep us up
    print("still connected", c.connected)
    await c.publish("t/dev-9/alarm", b"after-pings", 1)
    sys.exit(0)  # vanish without DISCONNECT: the broker sends the will

asyncio.run(main())
"""


def subscriber(broker, got):
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="desk")
    client.on_message = lambda c, u, m: got.put((m.topic, m.payload, m.retain))
    client.connect(broker.host, broker.port, keepalive=10)
    client.subscribe("t/#", qos=1)
    client.loop_start()
    time.sleep(0.3)
    return client


def test_firmware_mqtt_client_against_real_broker(any_broker):
    got = queue.Queue()
    desk = subscriber(any_broker, got)
    device = subprocess.Popen(
        [str(MICROPYTHON), "-X", "heapsize=96k", "-c", DEVICE_SCRIPT % {"port": any_broker.port}],
        env={"MICROPYPATH": str(FIRMWARE) + ":.frozen"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        received = [got.get(timeout=10)[:2] for _ in range(3)]
        assert received == [("t/dev-9/status", b"online"), ("t/dev-9/alarm", b"qos1"),
                            ("t/dev-9/heartbeat", b"qos0")]
        desk.publish("t/dev-9/cmd", b'{"cmd":"ping"}', qos=1)
        assert got.get(timeout=5)[:2] == ("t/dev-9/cmd", b'{"cmd":"ping"}')
        assert got.get(timeout=10)[:2] == ("t/dev-9/alarm", b"after-pings")
        assert got.get(timeout=10)[:2] == ("t/dev-9/status", b"offline")
        out, _ = device.communicate(timeout=10)
    finally:
        device.kill()
        desk.loop_stop()
        desk.disconnect()
    assert "got t/dev-9/cmd {\"cmd\":\"ping\"}" in out, out
    assert "still connected True" in out, out


CLOSING_BROKER_SCRIPT = """
import asyncio
import mqtt

async def main():
    c = mqtt.Client("dev-9")
    for attempt in range(2):
        try:
            await c.connect("127.0.0.1", %(port)d, 3000)
            print("connected")
        except mqtt.MQTTError as e:
            print("failed:", e)
    print("connected flag", c.connected)

asyncio.run(main())
"""


def test_broker_closing_before_connack_is_a_failed_connect_not_a_crash():
    """A broker that is shutting down (or over its connection limit) takes the
    TCP connection and closes it without a CONNACK. The link task treats
    connect failures as a reason to back off and retry; an EOFError escaping
    instead once killed the task and reset the device."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]

        def accept_and_close():
            for _ in range(2):
                conn, _ = server.accept()
                conn.recv(1024)  # the CONNECT
                conn.close()

        closer = threading.Thread(target=accept_and_close, daemon=True)
        closer.start()
        device = subprocess.run(
            [str(MICROPYTHON), "-X", "heapsize=96k", "-c", CLOSING_BROKER_SCRIPT % {"port": port}],
            env={"MICROPYPATH": str(FIRMWARE) + ":.frozen"},
            capture_output=True, text=True, timeout=30)
        closer.join(5)
    assert device.returncode == 0, device.stdout + device.stderr
    assert device.stdout.splitlines() == ["failed: connection closed before CONNACK"] * 2 + ["connected flag False"]
