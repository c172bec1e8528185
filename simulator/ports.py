"""Loopback ports for the things the simulator and benchmarks start."""

from __future__ import annotations

import fcntl
import random
import socket
import tempfile
import time
from pathlib import Path


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_claimed_ports: list = []  # lock files held for this process's life


def claimed_port() -> int:
    """A free port for the broker or the gateway's desk, below Linux's
    ephemeral range (32768-60999). A port there, as bind(0) gives, may be
    taken by any outgoing connection of a busy machine between the choice
    and the bind, or between a gateway's kill and its restart; one below it
    only by someone who chose the same number. Simulators started together
    (a test runs a score of them) would now and then choose the same one:
    each claims its number with a lock on a file named after it, which the
    others respect and the system drops when the process ends. The empty
    file stays: removing it would let a third claim the number anew."""
    for _ in range(100):
        port = random.randrange(20000, 32768)
        try:
            claim = open(Path(tempfile.gettempdir()) / f"lonewatch-port-{port}.lock", "a")
        except OSError:  # another user's claim file
            continue
        try:
            fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            claim.close()
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                claim.close()
                continue
        _claimed_ports.append(claim)
        return port
    raise RuntimeError("no free port between 20000 and 32767 on 127.0.0.1")


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")
