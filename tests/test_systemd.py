"""The gateway under systemd's notify protocol, with a real datagram socket in
place of systemd: READY once subscribed, watchdog pings while the timers run,
STOPPING at SIGTERM. And the shipped unit runs a command that exists."""

from __future__ import annotations

import configparser
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, free_port, stop_process
from gateway_harness import write_config

LONEWATCH = str(Path(sys.executable).parent / "lonewatch")


def test_the_gateway_says_ready_pings_the_watchdog_and_says_stopping(tmp_path, mosquitto):
    address = str(tmp_path / "notify")
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(address)
    systemd.settimeout(20)
    config = write_config(tmp_path, mosquitto, dashboard={"port": free_port()})
    env = dict(os.environ, NOTIFY_SOCKET=address, WATCHDOG_USEC="1000000")
    proc = subprocess.Popen([LONEWATCH, "gateway", "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert systemd.recv(64) == b"READY=1"
        pings = [systemd.recv(64) for _ in range(3)]  # every 0.5 s for a 1 s watchdog
        assert pings == [b"WATCHDOG=1"] * 3
        proc.terminate()
        deadline = time.monotonic() + 10
        while (said := systemd.recv(64)) == b"WATCHDOG=1" and time.monotonic() < deadline:
            pass
        assert said == b"STOPPING=1"
        assert proc.wait(10) == 0
    finally:
        stop_process(proc)
        systemd.close()


def test_the_shipped_unit_runs_the_gateway_command_with_a_watchdog():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(ROOT / "deploy" / "lonewatch-gateway.service")
    service = unit["Service"]
    assert service["Type"] == "notify" and int(service["WatchdogSec"]) > 0 and service["Restart"] == "always"
    command = shlex.split(service["ExecStart"])
    assert Path(command[0]).name == "lonewatch" and command[1:3] == ["gateway", "--config"]
    result = subprocess.run([LONEWATCH, *command[1:2], "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "--config" in result.stdout
