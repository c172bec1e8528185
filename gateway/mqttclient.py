"""The gateway's paho client, reading the socket in large chunks.

paho reads each packet with at least three `recv` calls: the type byte, the
length byte(s), then the body. Every call is a system call that also lets go
of the GIL, and in the gateway the writer thread and the event loop are
waiting for it: each hand-over is a context switch. In an alarm burst that was
about six `recv` per alarm on paho's thread. Reading up to 64 KiB at a time
and handing paho its bytes from that buffer made the gateway about 11 % faster
with 13 % less CPU per alarm (docs/gateway.md, Benchmark).

Two things keep it correct: paho only reads after select() says the socket
is readable, so loop_read() goes on while whole packets are still in the
buffer rather than leave them waiting for the next byte from the network; and
every new connection starts with an empty buffer, so no byte of a broken
connection is read as part of the next.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt

READ_CHUNK = 65536


class BufferedClient(mqtt.Client):
    _buffer = b""
    _at = 0

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

    def reconnect(self) -> mqtt.MQTTErrorCode:
        self._buffer, self._at = b"", 0
        return super().reconnect()
