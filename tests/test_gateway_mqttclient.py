"""The gateway's paho client reads the socket in large chunks
(gateway.mqttclient). Each scenario runs it against a scripted broker on a
real TCP socket, where the test decides exactly which bytes arrive together."""

from __future__ import annotations

import socket
import struct
import threading
import time

import paho.mqtt.client as mqtt

from gateway.mqttclient import BufferedClient

CONNACK = b"\x20\x02\x00\x00"


def publish(topic: str, payload: bytes) -> bytes:
    body = struct.pack("!H", len(topic)) + topic.encode() + payload
    assert len(body) < 128
    return bytes([0x30, len(body)]) + body


def read_connect(conn: socket.socket) -> None:
    header = conn.recv(2)
    assert header[0] == 0x10 and header[1] < 128, header
    remaining = header[1]
    while remaining:
        remaining -= len(conn.recv(remaining))


class ScriptedBroker:
    """Accepts connections one after another; for each, answers CONNECT with
    CONNACK and then sends that connection's bytes in one write."""

    def __init__(self, scripts: list[tuple[bytes, bool]]):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.scripts = scripts
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        held = []
        for data, close in self.scripts:
            conn, _ = self.server.accept()
            self.connections += 1
            read_connect(conn)
            conn.sendall(CONNACK + data)
            if close:
                conn.close()
            else:
                held.append(conn)  # stays open, and silent: nothing more arrives
        time.sleep(30)

    def close(self):
        self.server.close()


def run_client(broker: ScriptedBroker, expected: int, timeout: float = 5.0) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []
    done = threading.Event()

    def on_message(client, userdata, message):
        got.append((message.topic, message.payload))
        if len(got) >= expected:
            done.set()

    client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id="gw-test")
    client.on_message = on_message
    client.reconnect_delay_set(min_delay=1, max_delay=1)
    client.connect("127.0.0.1", broker.port, keepalive=60)
    client.loop_start()
    done.wait(timeout)
    time.sleep(0.2)  # anything beyond the expected would show up here
    client.loop_stop()
    client.disconnect()
    return got


def test_packets_that_arrive_together_are_all_handled_without_waiting_for_more_bytes():
    # 50 alarms in one TCP write, then silence for longer than the test: if
    # the client left whole packets in its buffer, they would wait for the
    # next byte from the network (the keepalive, a minute away).
    burst = b"".join(publish("lonewatch/v1/hq/dev-%03d/alarm" % n, b'{"n":%d}' % n) for n in range(50))
    broker = ScriptedBroker([(burst, False)])
    got = run_client(broker, expected=50, timeout=3.0)
    broker.close()
    assert got == [("lonewatch/v1/hq/dev-%03d/alarm" % n, b'{"n":%d}' % n) for n in range(50)]


def test_a_new_connection_never_reads_bytes_left_over_from_the_old_one():
    # The first connection sends a good message, a packet paho rejects (so it
    # drops the connection), and a message behind it that is still in the
    # client's buffer when the connection goes. Reconnected, only the new
    # connection's message may arrive.
    first = publish("t/first", b"1") + b"\x00\x00" + publish("t/stale", b"from the broken connection")
    second = publish("t/after", b"2")
    broker = ScriptedBroker([(first, True), (second, False)])
    got = run_client(broker, expected=2, timeout=6.0)
    broker.close()
    assert broker.connections == 2
    assert got == [("t/first", b"1"), ("t/after", b"2")]
