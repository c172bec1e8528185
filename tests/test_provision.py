"""`lonewatch provision` through a real raw REPL: the unix MicroPython VM on
a pseudo-terminal, its working directory standing in for the board's flash;
mpremote, a tool we did not write, reads the result back through a pty."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import pytest

from conftest import ROOT
from lonewatch import brokerfiles
from lonewatch.commands import certs, provision
from simulator.paths import MICROPYTHON, VBOARD

pytest.importorskip("serial")


class PtyBoard:
    """A MicroPython REPL on a pty whose cwd is the flash; `machine.reset()`
    (the virtual board's) ends the process, as a reboot ends a serial session.
    A second pty stands for the USB serial port: a relay joins the two
    masters, and the tools open the second one's path, as they would
    /dev/ttyUSB0."""

    def __init__(self, flash: Path):
        self.flash = flash
        flash.mkdir(parents=True, exist_ok=True)
        self.vm_master, vm_slave = pty.openpty()
        tty.setraw(vm_slave)
        self.port_master, self.port_slave = pty.openpty()
        tty.setraw(self.port_slave)
        self.port = os.ttyname(self.port_slave)
        self.proc = subprocess.Popen([str(MICROPYTHON)], stdin=vm_slave, stdout=vm_slave, stderr=vm_slave, cwd=flash,
                                     env={"MICROPYPATH": "%s:.frozen" % VBOARD, "LW_VBOARD_PORT": "1",
                                          "HOME": str(flash)})
        os.close(vm_slave)
        self.closing = False
        threading.Thread(target=self._relay, daemon=True).start()

    def _relay(self):
        ends = {self.vm_master: self.port_master, self.port_master: self.vm_master}
        while not self.closing:
            ready, _, _ = select.select(list(ends), [], [], 0.1)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # the VM exited (reset): its side is gone
                    return
                os.write(ends[fd], data)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.closing = True
        time.sleep(0.2)
        for fd in (self.vm_master, self.port_master, self.port_slave):
            os.close(fd)


@pytest.fixture
def site(tmp_path):
    """A gateway database, the shipped ACL, a CA; what an installation has before enrolling."""
    from gateway.store import Store
    Store(str(tmp_path / "lonewatch.db")).close()
    shutil.copy(ROOT / "deploy" / "mosquitto.acl", tmp_path / "lonewatch.acl")
    certs.make(tmp_path / "ca", ["127.0.0.1"])
    return tmp_path


def args_for(site: Path, port: str, **changes) -> argparse.Namespace:
    values = dict(port=port, device_id="dev-007", site="hq", wifi_ssid="lab-wifi", wifi_password="wifi-secret-1",
                  broker="mqtts://127.0.0.1:8883", ca=site / "ca" / "ca.crt", db=str(site / "lonewatch.db"),
                  passwd_file=site / "lonewatch.passwd", acl_file=site / "lonewatch.acl",
                  replace=False, insecure_plain_mqtt=False, no_reboot=False)
    values.update(changes)
    return argparse.Namespace(**values)


def mpremote(port: str, *command: str) -> str:
    result = subprocess.run([str(Path(sys.executable).parent / "mpremote"), "connect", port, "resume", *command],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_device_is_provisioned_over_the_raw_repl_and_mpremote_reads_back_the_same(site, tmp_path):
    flash = tmp_path / "flash"
    board = PtyBoard(flash)
    said = []
    try:
        provision.provision(args_for(site, board.port), say=said.append)
        assert board.proc.wait(10) == 75  # the virtual board's reset
    finally:
        board.close()

    config = json.loads((flash / "config.json").read_text())
    assert (config["device"], config["site"], config["mqtt_user"], config["mqtt_tls"]) == ("dev-007", "hq", "dev-007", True)
    assert (config["mqtt_host"], config["mqtt_port"], config["mqtt_ca"]) == ("127.0.0.1", 8883, "ca.der")
    assert (flash / "main.py").exists() and (flash / "app.mpy").exists() and (flash / "ca.der").exists()
    assert not list(flash.glob("*.tmp"))
    # Its own password: in the broker's file as a hash, nowhere in what the tool said.
    line = next(l for l in (site / "lonewatch.passwd").read_text().splitlines() if l.startswith("dev-007:"))
    salt = line.split("$")[3]
    assert line == brokerfiles.password_line("dev-007", config["mqtt_password"], __import__("base64").b64decode(salt))
    assert not any(config["mqtt_password"] in s or "wifi-secret-1" in s for s in said)
    assert brokerfiles.acl_site(site / "lonewatch.acl", "dev-007") == "hq"
    from gateway.store import Store
    store = Store(str(site / "lonewatch.db"))
    assert store.get_device("dev-007")["registered"] and store.get_device("dev-007")["site"] == "hq"
    store.close()

    # The board comes back; mpremote reads the config and hashes the firmware.
    board = PtyBoard(flash)
    try:
        assert json.loads(mpremote(board.port, "fs", "cat", "config.json")) == config
        listing = mpremote(board.port, "fs", "ls")
        assert "app.mpy" in listing and "ca.der" in listing
        sums = mpremote(board.port, "fs", "sha256sum", "app.mpy")
        assert hashlib.sha256((flash / "app.mpy").read_bytes()).hexdigest() in sums
    finally:
        board.close()


def test_enrolling_an_enrolled_id_needs_replace_and_then_rotates_the_password(site, tmp_path):
    flash = tmp_path / "flash"
    for attempt in ("first", "again", "replace"):
        board = PtyBoard(flash)
        try:
            if attempt == "again":
                with pytest.raises(provision.ProvisionError, match="already enrolled.*--replace"):
                    provision.provision(args_for(site, board.port), say=lambda s: None)
            else:
                before = (flash / "config.json").read_text() if attempt == "replace" else None
                provision.provision(args_for(site, board.port, replace=attempt == "replace"), say=lambda s: None)
                if before:
                    assert json.loads(before)["mqtt_password"] != json.loads((flash / "config.json").read_text())["mqtt_password"]
        finally:
            board.close()
    assert [l.split(":")[0] for l in (site / "lonewatch.passwd").read_text().splitlines()] == ["dev-007"]
    assert (site / "lonewatch.acl").read_text().count("user dev-007") == 1


def test_nothing_on_the_port_and_not_a_repl_are_clear_errors(site, tmp_path):
    with pytest.raises(provision.ReplError, match="nothing to open at /nonexistent/tty"):
        provision.provision(args_for(site, "/nonexistent/tty"), say=lambda s: None)
    master, slave = pty.openpty()  # a port where nobody answers
    try:
        with pytest.raises(provision.ReplError, match="no MicroPython raw REPL answered"):
            provision.provision(args_for(site, os.ttyname(slave)), say=lambda s: None)
    finally:
        os.close(master)
        os.close(slave)
    assert not (site / "lonewatch.passwd").exists()  # nothing enrolled


def test_plain_mqtt_needs_saying_so(site):
    with pytest.raises(provision.ProvisionError, match="plain MQTT.*--insecure-plain-mqtt"):
        provision.provision(args_for(site, "unused", broker="mqtt://127.0.0.1:1883"), say=lambda s: None)
