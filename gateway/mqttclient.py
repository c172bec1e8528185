"""The gateway's paho client: fewer system calls per message, same bytes.

paho makes several system calls per packet, and each one lets go of the GIL
while the writer thread and the event loop are waiting for it, so each is a
hand-over between threads. In an alarm burst the gateway spends its time on
those hand-overs (docs/gateway.md, Benchmark). This client changes three
things and nothing else:

- Reads: paho reads a packet with at least three `recv` calls (type byte,
  length, body). This client reads up to 64 KiB at once and hands paho its
  bytes from that buffer. paho only reads after select() says the socket is
  readable, so loop_read() goes on while whole packets are still buffered
  rather than leave them waiting for the next byte from the network.
- Writes: paho sends every queued packet (each PUBACK, each command) with its
  own `send`. This client collects what one loop_write() has queued and sends
  it in one call; what the socket does not take yet is kept and sent first
  next time, and want_write() says so, so paho's select() waits for it.
- Wake-ups: every packet queued from another thread (the writer's PUBACKs,
  the event loop's commands) also writes a byte to paho's internal socket
  pair to wake its select(). One byte is enough until paho has read it: the
  write that follows drains the whole queue.

Every new connection starts with both buffers empty, so no byte of a broken
connection is read as part of the next one, and no PUBACK meant for a packet
id of the old connection reaches the new one, where that id may be reused.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt

READ_CHUNK = 65536


class _WakeEnd:
    """One end of the socket pair paho uses to interrupt its select(). Both
    ends share the client's flag. The sending end writes a byte only if the
    last one is still unread. The receiving end clears the flag before it
    reads, so a packet queued after that sends a new byte, and one queued
    before it is written by the loop_write() paho runs right after the read."""

    def __init__(self, sock, client: "BufferedClient"):
        self.sock = sock
        self.client = client

    def send(self, data: bytes) -> int:
        if self.client._wake_pending:
            return 0
        self.client._wake_pending = True  # before the byte: a reader clearing it after will drain our packet
        return self.sock.send(data)

    def recv(self, bufsize: int) -> bytes:
        self.client._wake_pending = False
        return self.sock.recv(bufsize)

    def close(self) -> None:
        self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()


def _wake_end(name: str) -> property:
    """paho's attribute for one end of its socket pair, holding a _WakeEnd.
    A new pair holds no byte, so whatever was pending is no longer."""

    def get(self):
        return self.__dict__.get(name)

    def set(self, sock) -> None:
        self._wake_pending = False
        self.__dict__[name] = None if sock is None else _WakeEnd(sock, self)

    return property(get, set)


class BufferedClient(mqtt.Client):
    _buffer = b""
    _at = 0
    _unsent = b""
    _collecting = None  # list of bytes while a loop_write() runs
    _wake_pending = False

    # ---- reads ----------------------------------------------------------

    def _sock_recv(self, bufsize: int) -> bytes:
        # paho's one read primitive (paho-mqtt 2.x); it raises BlockingIOError
        # when there is nothing to read and returns b"" at end of stream.
        if self._at >= len(self._buffer):
            data = super()._sock_recv(READ_CHUNK)
            if not data:
                return data
            self._buffer, self._at = data, 0
        chunk = self._buffer[self._at:self._at + bufsize]
        self._at += len(chunk)
        return chunk

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == mqtt.MQTT_ERR_SUCCESS and self._sock is not None and self._at < len(self._buffer):
            rc = super().loop_read(max_packets)
        return rc

    # ---- writes ---------------------------------------------------------

    def _sock_send(self, buf) -> int:
        # paho's one write primitive. While _packet_write() runs, it takes the
        # bytes into one buffer, sent in a single call when it returns.
        if self._collecting is None:
            return super()._sock_send(buf)
        self._collecting.append(bytes(buf))
        return len(buf)

    def _packet_write(self) -> mqtt.MQTTErrorCode:
        if self._unsent:
            rc = self._send_unsent()
            if rc != mqtt.MQTT_ERR_SUCCESS or self._unsent:
                return rc
        self._collecting = []
        try:
            rc = super()._packet_write()
        finally:
            collected, self._collecting = self._collecting, None
        if collected:
            self._unsent = b"".join(collected)
            sent_rc = self._send_unsent()
            if rc == mqtt.MQTT_ERR_SUCCESS:
                rc = sent_rc
        return rc

    def _send_unsent(self) -> mqtt.MQTTErrorCode:
        if self._sock is None:
            self._unsent = b""  # paho closed it (a DISCONNECT it wrote): nowhere to send
            return mqtt.MQTT_ERR_NO_CONN
        try:
            sent = super()._sock_send(self._unsent)
        except BlockingIOError:
            return mqtt.MQTT_ERR_AGAIN
        except OSError:
            return mqtt.MQTT_ERR_CONN_LOST
        self._unsent = self._unsent[sent:]
        return mqtt.MQTT_ERR_AGAIN if self._unsent else mqtt.MQTT_ERR_SUCCESS

    def _sock_close(self) -> None:
        # paho closes the socket right after "writing" a DISCONNECT: send what
        # is collected first, as far as the socket takes it without waiting.
        if self._collecting and self._sock is not None:
            try:
                self._sock.send(b"".join(self._collecting))
            except OSError:
                pass
            self._collecting = []
        super()._sock_close()

    def want_write(self) -> bool:
        return bool(self._unsent) or super().want_write()

    # ---- wake-ups -------------------------------------------------------

    _sockpairR = _wake_end("_wake_r")
    _sockpairW = _wake_end("_wake_w")

    # ---- connections ----------------------------------------------------

    def reconnect(self) -> mqtt.MQTTErrorCode:
        self._buffer, self._at, self._unsent = b"", 0, b""
        return super().reconnect()
