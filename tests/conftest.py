"""Shared fixtures: real brokers on free ports, the repository layout."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from simulator.paths import FIRMWARE, MICROPYTHON, MPY_CROSS  # noqa: F401  (tests import them from here)
from simulator.ports import free_port, wait_for_port  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SISFALL = SHARED / "datasets" / "sisfall-50hz"
EXAMPLES = ROOT / "docs" / "protocol" / "examples"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def example_payload(example: dict) -> bytes:
    """The bytes of a docs/protocol/examples file: `payload` is the JSON text or
    the object, `payload_hex` bytes that are not UTF-8 text."""
    if "payload_hex" in example:
        return bytes.fromhex(example["payload_hex"])
    payload = example["payload"]
    return payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else json.dumps(payload).encode()


def require_mosquitto() -> None:
    if not os.path.exists(MOSQUITTO):
        message = "mosquitto is not installed (apt-get install mosquitto mosquitto-clients)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it; missing there is a broken set-up
        pytest.skip(message)


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM, and SIGKILL if it has not ended within timeout."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class MosquittoBroker:
    """A real mosquitto process with a config the test writes."""

    def __init__(self, workdir: Path, extra_config: str = ""):
        self.host = "127.0.0.1"
        self.port = free_port()
        self.workdir = workdir
        self.config_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self.config_path.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"persistence false\n"
            f"log_dest file {self.log_path}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"{extra_config}"
        )
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.proc.kill()
            raise RuntimeError(f"mosquitto did not start: {self.proc.stderr.read().decode()}")

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def mosquitto(tmp_path):
    require_mosquitto()
    broker = MosquittoBroker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


class AmqttBroker:
    """The embedded amqtt broker, on its own event loop in a thread so that
    synchronous and asynchronous tests can both use it."""

    def __init__(self):
        from gateway.broker import EmbeddedBroker

        self.host = "127.0.0.1"
        self.port = free_port()
        self._embedded = EmbeddedBroker(self.port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._embedded.start(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._embedded.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def amqtt_broker():
    broker = AmqttBroker()
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def persistent_mosquitto(tmp_path):
    """mosquitto keeping sessions and queued QoS 1 messages across its own
    restart, as deploy/mosquitto.conf does (saved when it stops)."""
    require_mosquitto()
    data = tmp_path / "broker-data"
    data.mkdir()
    # As root, mosquitto would drop to the mosquitto user, who cannot write here.
    broker = MosquittoBroker(tmp_path, f"persistence true\npersistence_location {data}/\nuser {getpass.getuser()}\n")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(params=["mosquitto", "amqtt_broker"], ids=["mosquitto", "amqtt"])
def any_broker(request):
    """Run a scenario once against each broker the project supports."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def scratch(tmp_path):
    """The one argument of the pure firmware tests, which also run under
    MicroPython (tests/micropython_cases.py): a directory, as a string."""
    return str(tmp_path)


@pytest.fixture
def sisfall_dir():
    if not (SISFALL / "manifest.csv").exists():
        pytest.skip(f"SisFall data not found at {SISFALL} (../shared beside the repo)")
    return SISFALL
