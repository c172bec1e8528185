"""One thread that carries the network of many paho MQTT clients, with timers.

paho's own loop_start() gives every client a thread; a fleet of 1,000 devices
would need 1,000 threads and stop one join at a time. Here the clients run in
paho's external-loop mode instead: their sockets sit in one selector (epoll,
no 1,024-descriptor limit), and this thread calls loop_read / loop_write when
a socket is ready and loop_misc (keep-alive) once a second. Everything a
client does happens on this thread; other threads hand work over with
call_soon_threadsafe().
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time

log = logging.getLogger(__name__)

MISC_EVERY_S = 1.0


class Timer:
    __slots__ = ("when", "fn", "cancelled")

    def __init__(self, when: float, fn):
        self.when, self.fn, self.cancelled = when, fn, False

    def cancel(self) -> None:
        self.cancelled = True


class NetLoop:
    def __init__(self, name: str = "fleet"):
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._calls: collections.deque = collections.deque()
        self._timers: list = []
        self._order = itertools.count()
        self._clients: set = set()
        self._stopping: float | None = None  # monotonic deadline once stopping
        self._on_stop = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.stopped = threading.Event()

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def on_thread(self) -> bool:
        return threading.current_thread() is self._thread

    # ---- clients ------------------------------------------------------------

    def attach(self, client) -> None:
        """Drive this paho client from the loop (call before it connects)."""
        client.on_socket_open = self._opened
        client.on_socket_close = self._closed
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._done_writing

    def detach(self, client):
        """Stop serving this client without closing its socket (a link that
        went silent); returns the socket, or None."""
        sock = client.socket()
        if sock is not None:
            self._closed(client, None, sock)
        return sock

    def _opened(self, client, userdata, sock) -> None:
        self._selector.register(sock, selectors.EVENT_READ, client)
        self._clients.add(client)

    def _closed(self, client, userdata, sock) -> None:
        self._clients.discard(client)
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass

    def _want_write(self, client, userdata, sock) -> None:
        self._selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def _done_writing(self, client, userdata, sock) -> None:
        try:
            self._selector.modify(sock, selectors.EVENT_READ, client)
        except (KeyError, ValueError):
            pass  # already closed

    # ---- scheduling ---------------------------------------------------------

    def call_at(self, when: float, fn) -> Timer:
        timer = Timer(when, fn)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    def call_later(self, delay: float, fn) -> Timer:
        return self.call_at(self.now() + delay, fn)

    def call_soon_threadsafe(self, fn) -> None:
        self._calls.append(fn)
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already woken, or closed at stop

    # ---- running ------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, goodbye=None, grace_s: float = 1.0) -> None:
        """From any thread: run goodbye() on the loop, give the clients grace_s
        to write what it queued, then close every socket. `stopped` is set when
        the thread is done."""
        def begin():
            self._stopping = self.now() + grace_s
            if goodbye is not None:
                self._guard(goodbye)
        if self._thread.is_alive():
            self.call_soon_threadsafe(begin)
        else:
            self.stopped.set()

    def _guard(self, fn) -> None:
        try:
            fn()
        except Exception:
            log.exception("fleet: %r failed", fn)

    def _run(self) -> None:
        next_misc = self.now() + MISC_EVERY_S
        try:
            while True:
                now = self.now()
                if self._stopping is not None and (now >= self._stopping or not any(
                        c.want_write() for c in self._clients)):
                    break
                timeout = MISC_EVERY_S
                if self._calls:
                    timeout = 0
                elif self._timers:
                    timeout = min(timeout, max(0.0, self._timers[0][0] - now))
                for key, mask in self._selector.select(timeout):
                    client = key.data
                    if client is None:
                        try:
                            self._wake_r.recv(4096)
                        except BlockingIOError:
                            pass
                        continue
                    if mask & selectors.EVENT_READ:
                        self._guard(client.loop_read)
                    if mask & selectors.EVENT_WRITE and client.socket() is not None:
                        self._guard(client.loop_write)
                while self._calls:
                    self._guard(self._calls.popleft())
                now = self.now()
                while self._timers and self._timers[0][0] <= now:
                    timer = heapq.heappop(self._timers)[2]
                    if not timer.cancelled:
                        self._guard(timer.fn)
                if now >= next_misc:
                    next_misc = now + MISC_EVERY_S
                    for client in list(self._clients):
                        self._guard(client.loop_misc)
        finally:
            for key in list(self._selector.get_map().values()):
                if key.data is not None:
                    try:
                        key.fileobj.close()
                    except OSError:
                        pass
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()
            self.stopped.set()
