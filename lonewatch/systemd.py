"""systemd's notify protocol, for deploy/lonewatch-gateway.service (Type=notify,
WatchdogSec): READY=1 once the gateway has subscribed and the desk page is
served, STOPPING=1 when it stops, and WATCHDOG=1 while the event loop runs and
the gateway's timers (escalation, overdue sessions, lost devices) run. A hung
gateway is then restarted; one waiting for its database or broker is not,
since a restart would not help and /healthz already says what is wrong.

Written here rather than taken from a library: it is one datagram to the
socket systemd names, and does nothing when not run by systemd."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

log = logging.getLogger("lonewatch.systemd")


class Notifier:
    def __init__(self, address: str | None, watchdog_s: float | None):
        # An address starting with "@" is in the abstract namespace.
        self._address = "\0" + address[1:] if address and address.startswith("@") else address
        self.watchdog_s = watchdog_s

    @classmethod
    def from_environment(cls) -> "Notifier":
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        watchdog = int(usec) / 1e6 if usec and usec.isdigit() and (not pid or pid == str(os.getpid())) else None
        return cls(os.environ.get("NOTIFY_SOCKET"), watchdog)

    def send(self, state: str) -> None:
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(state.encode(), self._address)
        except OSError as exc:
            log.warning("cannot tell systemd %s: %s", state, exc)

    async def keep_alive(self, healthy) -> None:
        """Ping at half the watchdog period while healthy() is true."""
        if not self.watchdog_s:
            return
        while True:
            await asyncio.sleep(self.watchdog_s / 2)
            if healthy():
                self.send("WATCHDOG=1")
