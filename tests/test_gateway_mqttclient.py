"""The gateway's paho client reads the socket in large chunks, sends what one
write pass collected in one call, and wakes paho's thread once per pass
(gateway.mqttclient). Each scenario runs it against a scripted broker on a
real TCP socket, where the test decides exactly which bytes arrive together
and reads exactly which bytes the client sent."""

from __future__ import annotations

import socket
import struct
import threading
import time

import paho.mqtt.client as mqtt

from gateway.mqttclient import BufferedClient

CONNACK = b"\x20\x02\x00\x00"


def publish(topic: str, payload: bytes) -> bytes:
    """A QoS 0 PUBLISH of any size (the remaining length in as many bytes as it needs)."""
    body = struct.pack("!H", len(topic)) + topic.encode() + payload
    length, encoded = len(body), b""
    while True:
        digit, length = length % 128, length // 128
        encoded += bytes([digit | (0x80 if length else 0)])
        if not length:
            return b"\x30" + encoded + body


def read_connect(conn: socket.socket) -> None:
    header = conn.recv(2)
    assert header[0] == 0x10 and header[1] < 128, header
    remaining = header[1]
    while remaining:
        remaining -= len(conn.recv(remaining))


class ListeningBroker:
    """Accepts one connection at a time, answers CONNECT with CONNACK; the
    test then reads every byte the client sends after its CONNECT."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]

    def accept(self, timeout: float = 5.0) -> socket.socket:
        self.server.settimeout(timeout)
        conn, _ = self.server.accept()
        read_connect(conn)
        conn.sendall(CONNACK)
        return conn

    def close(self):
        self.server.close()


class ScriptedBroker(ListeningBroker):
    """Accepts connections one after another; for each, answers CONNECT with
    CONNACK and then sends that connection's bytes in one write."""

    def __init__(self, scripts: list[tuple[bytes, bool]]):
        super().__init__()
        self.scripts = scripts
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        held = []
        for data, close in self.scripts:
            conn = self.accept(timeout=None)
            self.connections += 1
            conn.sendall(data)
            if close:
                conn.close()
            else:
                held.append(conn)  # stays open, and silent: nothing more arrives
        time.sleep(30)


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


# ---- writes ------------------------------------------------------------------

PUBACK = 0x40
DISCONNECT = b"\xe0\x00"
BIG_TOPIC = "lonewatch/v1/_bench/big"


def puback(mid: int) -> bytes:
    return bytes([PUBACK, 2]) + struct.pack("!H", mid)


def read_exactly(conn: socket.socket, size: int, timeout: float) -> bytes:
    """size bytes, or fewer if they do not come within timeout."""
    conn.settimeout(timeout)
    data = b""
    try:
        while len(data) < size:
            chunk = conn.recv(min(65536, size - len(data)))
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    return data


def read_until_closed_or_quiet(conn: socket.socket, quiet: float) -> bytes:
    """Everything until the client closes, or nothing more comes for `quiet` seconds."""
    conn.settimeout(quiet)
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except socket.timeout:
        pass
    return data


def connected_client(broker: ListeningBroker) -> tuple[BufferedClient, socket.socket]:
    client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id="gw-test", manual_ack=True)
    client.reconnect_delay_set(min_delay=1, max_delay=1)
    client.connect("127.0.0.1", broker.port, keepalive=60)
    client.loop_start()
    return client, broker.accept()


def fill_the_socket(client: BufferedClient) -> list[bytes]:
    """Queue 8 MB while the broker reads nothing: more than loopback's socket
    buffers take, so the client is left holding the rest."""
    packets = []
    for n in range(80):
        client.publish(BIG_TOPIC, bytes([n]) * 100_000, qos=0)
        packets.append(publish(BIG_TOPIC, bytes([n]) * 100_000))
    time.sleep(0.5)  # paho's thread has written what the socket takes
    assert client.want_write(), "the test needs bytes the socket did not take"
    return packets


def test_an_acknowledgement_queued_while_paho_sleeps_leaves_at_once():
    # The writer thread acks while paho's thread waits in select(). Only the
    # first packet of a write pass wakes it. Were a wake-up lost, each ack
    # here would wait for select()'s one-second timeout: 30 of them, about
    # 15 s. Woken properly, they take milliseconds.
    broker = ListeningBroker()
    client, conn = connected_client(broker)
    started = time.monotonic()
    received = b""
    for mid in range(1, 31):
        time.sleep(0.01)  # paho's thread is back in select()
        client.ack(mid, 1)
        received += read_exactly(conn, 4, timeout=2.0)
    took = time.monotonic() - started
    client.loop_stop()
    client.disconnect()
    conn.close()
    broker.close()
    assert received == b"".join(puback(mid) for mid in range(1, 31))
    assert took < 5.0, f"30 acks took {took:.1f} s: wake-ups were lost"


def test_every_acknowledgement_queued_from_another_thread_arrives_in_order():
    broker = ListeningBroker()
    client, conn = connected_client(broker)

    def writer():
        for mid in range(1, 3001):
            client.ack(mid, 1)
            if mid % 7 == 0:
                time.sleep(0.0002)  # paho's thread runs in between, as beside the real writer

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join()
    received = read_exactly(conn, 4 * 3000, timeout=5.0)
    client.loop_stop()
    client.disconnect()
    conn.close()
    broker.close()
    assert received == b"".join(puback(mid) for mid in range(1, 3001))


def test_what_the_socket_cannot_take_yet_is_sent_later_and_in_order():
    # A write pass sends only part of what it collected; the rest goes out
    # once the broker reads again, whole and in order, and so does what is
    # queued after it.
    broker = ListeningBroker()
    client, conn = connected_client(broker)
    packets = fill_the_socket(client)
    client.ack(7, 1)
    expected = b"".join(packets) + puback(7)
    received = read_exactly(conn, len(expected), timeout=10.0)
    client.loop_stop()
    client.disconnect()
    conn.close()
    broker.close()
    assert len(received) == len(expected)
    assert received == expected


def test_acknowledgements_queued_just_before_a_disconnect_still_leave_before_it():
    # paho closes the socket right after it has written DISCONNECT; what the
    # same pass collected must be on the wire by then.
    broker = ListeningBroker()
    client, conn = connected_client(broker)
    for mid in range(1, 51):
        client.ack(mid, 1)
    client.disconnect()
    received = read_until_closed_or_quiet(conn, quiet=5.0)
    client.loop_stop()
    conn.close()
    broker.close()
    assert received == b"".join(puback(mid) for mid in range(1, 51)) + DISCONNECT


def test_bytes_held_for_a_broken_connection_never_reach_the_next():
    # The client holds bytes the socket would not take; then the connection
    # breaks. Packet ids belong to one connection: a PUBACK held from the old
    # one would acknowledge the wrong message on the new one. After the
    # reconnect the broker must receive nothing stale.
    broker = ListeningBroker()
    client, first = connected_client(broker)
    fill_the_socket(client)
    first.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    first.close()  # a reset, not an orderly close
    second = broker.accept(timeout=10.0)
    after = read_until_closed_or_quiet(second, quiet=1.0)
    client.loop_stop()
    client.disconnect()
    second.close()
    broker.close()
    assert after == b""
