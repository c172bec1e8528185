"""Firmware in the loop, a full flash: the device's flash folder is a small
filesystem of its own that the test fills, so the firmware's writes fail as
they do on a full LittleFS (ENOSPC). A panic still reaches the desk, the
device stays up and says why with a technical alarm, a config it cannot
save is refused, and after a reboot on the full flash its alarm ids do not
repeat the earlier boot's."""

import errno
import shutil
import subprocess
import tempfile
from contextlib import contextmanager

import pytest

from firmware_harness import DEVICE, desk_for, device_for  # noqa: F401


@contextmanager
def small_flash(folder, size="64k"):
    """`folder` (with what is in it) on a filesystem of `size`; yields a
    function that fills it to the last byte."""
    keep = tempfile.mkdtemp()
    shutil.copytree(folder, keep, dirs_exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        shutil.rmtree(keep)
        pytest.skip("a full flash needs a small filesystem, and mounting one was refused"
                    " (run as root): %s" % mounted.stderr.strip())
    try:
        shutil.copytree(keep, folder, dirs_exist_ok=True)

        def fill():
            with open(folder / "filler", "wb", buffering=0) as f:
                for chunk in (b"\0" * 4096, b"\0"):  # pages, then the last bytes
                    try:
                        while True:
                            f.write(chunk)
                    except OSError as e:
                        assert e.errno == errno.ENOSPC
        yield fill
    finally:
        # Lazily: the device's VM may still have its working folder here.
        subprocess.run(["umount", "-l", str(folder)], check=True)
        shutil.rmtree(keep)


def boot_of(alarm):
    return int(alarm.body["id"].split(":")[1])


@pytest.mark.parametrize("heap_kb", [None, 96], ids=["host-heap", "device-heap-96k"])
def test_a_panic_on_a_full_flash_reaches_the_desk_and_the_device_says_why(mosquitto, desk_for,
                                                                          device_for, heap_kb):
    desk = desk_for(mosquitto, auto_deliver=True)
    dev = device_for(mosquitto, start=False, device_heap_kb=heap_kb)
    with small_flash(dev.flash) as fill:
        dev.start()
        desk.wait_for("status", state="online")
        fill()
        mark = dev.mark()
        dev.presses(1, ms=2300)  # a hold, then let go
        panic = desk.wait_for("alarm", type="panic")
        assert panic.body["id"] == "%s:1:1" % DEVICE
        technical = desk.wait_for("alarm", type="technical")
        assert technical.body["cause"] == "flash_failed"
        dev.wait_console(r"outbox: flash write failed \(errno %d\)" % errno.ENOSPC, after=mark)
        dev.wait_console("queued alarm %s:1:1 panic" % DEVICE, after=mark)
        # The next alarm goes the same way.
        dev.press(2300)
        desk.wait_for("alarm", type="panic", count=2)
        assert [a.body["id"] for a in desk.of("alarm", type="panic")] == [
            "%s:1:1" % DEVICE, "%s:1:3" % DEVICE]
        assert len(desk.of("alarm", type="technical")) == 1  # said once, not per record
        assert dev.alive() and dev.boots == 1  # no reset on the way
        assert desk.invalid == []


def test_a_config_that_cannot_be_saved_on_a_full_flash_is_refused(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto, start=False)
    with small_flash(dev.flash) as fill:
        dev.start()
        desk.wait_for("status", state="online")
        saved = (dev.flash / "config.json").read_text()
        fill()
        mark = dev.mark()
        desk.command("config", config={"prealarm_s": 7})
        dev.wait_console(r"cmd: config rejected: cannot save it to flash \(errno %d\)" % errno.ENOSPC,
                         after=mark)
        desk.command("ping")
        desk.wait_for("heartbeat", count=2)  # still answering: one at boot, one for the ping
        assert (dev.flash / "config.json").read_text() == saved
        assert not any("config applied" in line for line in dev.console[mark:])


def test_a_reboot_on_a_full_flash_does_not_repeat_the_alarm_ids_of_the_boot_before(
        mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto, auto_deliver=True)
    dev = device_for(mosquitto, start=False)
    with small_flash(dev.flash) as fill:
        dev.start()
        desk.wait_for("status", state="online")
        dev.press(2300)
        first = desk.wait_for("alarm", type="panic")
        assert boot_of(first) == 1
        fill()
        dev.kill()
        mark = dev.mark()
        dev.start()
        line = dev.wait_console(r"boot: cannot save the boot counter \(errno %d\)" % errno.ENOSPC, after=mark)
        dev.press(2300)
        second = desk.wait_for("alarm", type="panic", count=2)
        # Boot 2 again at the next reboot would give "DEVICE:2:1" twice over.
        assert boot_of(second) >= 1000000000 and ("boot %d is random" % boot_of(second)) in line
        assert second.body["id"] != first.body["id"]
        assert desk.invalid == []
