# A small MQTT 3.1.1 client on asyncio streams, written for MicroPython.
# It never blocks the event loop: every socket wait is an asyncio wait, so the
# button and sensor tasks keep running while the network stalls. It knows
# nothing about reconnecting; link.py owns that policy.
import asyncio
import time
from micropython import const

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBSCRIBE = const(0x82)  # the spec requires flags 0010
_SUBACK = const(0x90)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)

# Platform quirks, named so they are found and not rediscovered:
# - DNS (getaddrinfo) blocks the whole VM on the ESP32; configure the broker
#   as an IP address on sites where DNS may be slow.
# - lwIP can sit in a half-open connection for minutes after the AP drops,
#   so the link is declared dead after 1.5 keepalive periods without any
#   packet from the broker, not when TCP notices. In integers: a float is
#   a heap object.
_GRACE_PERCENT = const(150)
# Larger incoming packets are not allocated (about 100 KB heap): a PUBLISH
# is read past in _SKIP_CHUNK pieces and acknowledged unseen, anything else
# ends the session.
_MAX_INCOMING = const(4096)
_SKIP_CHUNK = const(256)

CONNACK_ERRORS = {
    1: "unacceptable protocol version",
    2: "client id rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


class MQTTError(Exception):
    pass


def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    return bytes((len(s) >> 8, len(s) & 0xFF)) + s


def _packet(first, body):
    return bytes((first,)) + _varint(len(body)) + body


class Client:
    def __init__(self, client_id, keepalive_s=30, user="", password="",
                 will=None, clean_session=False, on_message=None):
        self.client_id = client_id
        self.keepalive_s = keepalive_s
        self.user = user
        self.password = password
        self.will = will  # (topic, payload, qos, retain) or None
        self.clean_session = clean_session
        self.on_message = on_message  # called as on_message(topic, payload)
        self.connected = False
        self._reader = None
        self._writer = None
        self._write_lock = asyncio.Lock()
        self._pid = 0
        self._acks = {}  # packet id -> asyncio.Event, set on PUBACK/SUBACK
        self._last_rx = 0
        self._tasks = []

    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    def _connect_packet(self):
        flags = 0x02 if self.clean_session else 0
        payload = _str(self.client_id)
        if self.will:
            topic, message, qos, retain = self.will
            flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
            payload += _str(topic) + _str(message)
        if self.user:
            flags |= 0x80
            payload += _str(self.user)
            if self.password:
                flags |= 0x40
                payload += _str(self.password)
        header = _str("MQTT") + bytes((4, flags, self.keepalive_s >> 8, self.keepalive_s & 0xFF))
        return _packet(_CONNECT, header + payload)

    async def connect(self, host, port, timeout_ms=10000, ssl=None):
        """Open the session (over TLS with an ssl.SSLContext, which checks the
        broker's name against `host`); returns session_present. Raises
        OSError/MQTTError."""
        self.close()
        self._reader, self._writer = await asyncio.wait_for_ms(
            asyncio.open_connection(host, port, ssl), timeout_ms)
        try:
            await self._write(self._connect_packet())
            first, body, _ = await asyncio.wait_for_ms(self._read_packet(), timeout_ms)
        except EOFError:
            # The broker took the TCP connection and closed it before its
            # CONNACK (shutting down, or over its connection limit): a failed
            # connect like any other, not a crash of the link task.
            self.close()
            raise MQTTError("connection closed before CONNACK")
        except Exception:
            self.close()
            raise
        if first != _CONNACK or len(body) != 2:
            self.close()
            raise MQTTError("expected CONNACK, got packet type 0x%02x" % first)
        if body[1]:
            self.close()
            raise MQTTError("broker refused: %s" % CONNACK_ERRORS.get(body[1], body[1]))
        self.connected = True
        self._last_rx = time.ticks_ms()
        self._tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._keepalive())]
        return bool(body[0] & 1)

    def close(self):
        """Drop the connection at once (no DISCONNECT: the broker sends the will)."""
        self.connected = False
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._tasks = []
        if self._writer:
            try:
                self._writer.close()
            except OSError:
                pass
        self._writer = self._reader = None
        for event in self._acks.values():
            event.set()  # wake waiters; they see connected == False
        self._acks = {}

    async def disconnect(self):
        if self.connected:
            try:
                await self._write(bytes((_DISCONNECT, 0)))
            except OSError:
                pass
        self.close()

    async def publish(self, topic, payload, qos=0, retain=False, timeout_ms=10000):
        """QoS 0 returns once written; QoS 1 once the broker's PUBACK arrives.
        Raises MQTTError if the connection is lost or the PUBACK is late."""
        if not self.connected:
            raise MQTTError("not connected")
        first = _PUBLISH | (qos << 1) | (1 if retain else 0)
        body = _str(topic)
        pid = 0
        if qos:
            pid = self._next_pid()
            body += bytes((pid >> 8, pid & 0xFF))
        await self._send_and_wait(_packet(first, body + payload), pid, timeout_ms)

    async def subscribe(self, topic, qos=1, timeout_ms=10000):
        pid = self._next_pid()
        body = bytes((pid >> 8, pid & 0xFF)) + _str(topic) + bytes((qos,))
        await self._send_and_wait(_packet(_SUBSCRIBE, body), pid, timeout_ms)

    async def _send_and_wait(self, packet, pid, timeout_ms):
        if pid:
            event = asyncio.Event()
            self._acks[pid] = event
        try:
            await self._write(packet)
        except OSError as e:
            self.close()
            raise MQTTError("write failed: %s" % e)
        if not pid:
            return
        try:
            await asyncio.wait_for_ms(event.wait(), timeout_ms)
        except asyncio.TimeoutError:
            self.close()
            raise MQTTError("no acknowledgement for packet %d in %d ms" % (pid, timeout_ms))
        finally:
            self._acks.pop(pid, None)
        if not self.connected:
            raise MQTTError("connection lost before acknowledgement of packet %d" % pid)

    async def _write(self, data):
        writer = self._writer
        if writer is None:
            raise OSError("closed")
        async with self._write_lock:
            writer.write(data)
            await writer.drain()

    async def _read_packet(self):
        """(first byte, body, dropped): dropped is the remaining length of a
        PUBLISH too large to hold, whose body is then only its topic and
        packet id."""
        reader = self._reader
        head = await reader.readexactly(1)
        length = 0
        shift = 0
        while True:
            byte = (await reader.readexactly(1))[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
            if shift > 21:
                raise MQTTError("malformed remaining length")
        if length > _MAX_INCOMING:
            if head[0] & 0xF0 != _PUBLISH:
                raise MQTTError("incoming packet of %d bytes is too large" % length)
            # Refusing the session instead would not help: the broker
            # delivers the message again on every reconnect, for ever.
            return head[0], await self._skip_payload(head[0], length), length
        body = await reader.readexactly(length) if length else b""
        return head[0], body, 0

    async def _skip_payload(self, first, length):
        reader = self._reader
        tlen = await reader.readexactly(2)
        header = 2 + ((tlen[0] << 8) | tlen[1]) + (2 if first & 0x06 else 0)
        if header > length:
            raise MQTTError("malformed PUBLISH")
        head = tlen + await reader.readexactly(header - 2)
        left = length - header
        while left:
            n = min(left, _SKIP_CHUNK)
            await reader.readexactly(n)
            left -= n
        return head

    async def _receive(self):
        try:
            while True:
                first, body, dropped = await self._read_packet()
                self._last_rx = time.ticks_ms()
                kind = first & 0xF0
                if kind == _PUBLISH:
                    await self._incoming(first, body, dropped)
                elif kind in (_PUBACK, _SUBACK):
                    event = self._acks.get((body[0] << 8) | body[1])
                    if event:
                        event.set()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # EOF, reset, malformed: the session is over
            print("mqtt: connection lost (%r)" % (e,))
        self.close()

    async def _incoming(self, first, body, dropped):
        qos = (first >> 1) & 3
        tlen = (body[0] << 8) | body[1]
        topic = body[2:2 + tlen].decode()
        pos = 2 + tlen
        if qos:
            pid = body[pos:pos + 2]
            pos += 2
        if dropped:
            print("mqtt: dropped a %d-byte message on %s (limit %d)"
                  % (dropped - len(body), topic, _MAX_INCOMING))
        elif self.on_message:
            try:
                self.on_message(topic, body[pos:])
            except Exception as e:  # a bad command must not end the session
                print("mqtt: handler failed for %s: %r" % (topic, e))
        if qos:
            await self._write(bytes((_PUBACK, 2)) + pid)

    async def _keepalive(self):
        period_ms = self.keepalive_s * 1000
        while self.connected:
            await asyncio.sleep_ms(period_ms // 2)
            if time.ticks_diff(time.ticks_ms(), self._last_rx) > period_ms * _GRACE_PERCENT // 100:
                print("mqtt: broker silent for %d s, dropping the link" % (period_ms * _GRACE_PERCENT // 100000))
                self.close()
                return
            try:
                await self._write(bytes((_PINGREQ, 0)))
            except OSError:
                self.close()
                return
