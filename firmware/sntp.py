# Wall-clock time from an SNTP server without blocking the event loop
# (ntptime.settime() blocks for up to a second waiting on its socket).
import asyncio
import socket
import struct
import time
from micropython import const

_NTP_PORT = const(123)
_TIMEOUT_MS = const(2000)
NTP_TO_UNIX = 2208988800
# MicroPython ports differ in epoch: unix uses 1970, the ESP32 port 2000.
EPOCH_OFFSET = 0 if time.gmtime(0)[0] == 1970 else 946684800


def unix_time():
    """Seconds since 1970 by the device clock (unsynced clocks start in 2000)."""
    return time.time() + EPOCH_OFFSET


async def query(host):
    """Unix time from `host`, or None. DNS still blocks: prefer an IP."""
    addr = socket.getaddrinfo(host, _NTP_PORT)[0][-1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setblocking(False)
        request = bytearray(48)
        request[0] = 0x1B  # LI 0, version 3, client mode
        s.sendto(request, addr)
        waited = 0
        while waited < _TIMEOUT_MS:
            try:
                data = s.recv(48)
            except OSError:
                await asyncio.sleep_ms(50)
                waited += 50
                continue
            if len(data) >= 44:
                return struct.unpack("!I", data[40:44])[0] - NTP_TO_UNIX
            return None
        return None
    finally:
        s.close()


def set_clock(rtc, unix_seconds):
    t = time.gmtime(unix_seconds - EPOCH_OFFSET)
    rtc.datetime((t[0], t[1], t[2], t[6] + 1, t[3], t[4], t[5], 0))
