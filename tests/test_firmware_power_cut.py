"""Firmware in the loop, power cuts: the device is killed (SIGKILL: nothing
flushes) with alarms in its flash outbox and delivers them after restart, in
order, with alarm ids that stay unique across boots. A torn record from a
cut mid-write leaves a readable outbox; a full outbox sheds events, never an
alarm."""

import io
import json
import sys
import time
from pathlib import Path

from firmware_harness import DEVICE, desk_for, device_for  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "firmware"))
import outbox as device_outbox  # noqa: E402  the firmware's own module writes the seeded flash
import protocol as device_protocol  # noqa: E402


def seed_outbox(dev, records, boot=1):
    """Flash contents left by an earlier boot (written by the firmware's own
    outbox module) and that boot's counter."""
    box = device_outbox.Outbox(str(dev.flash / "outbox.log"))
    for kind, body in records:
        box.add(kind, json.dumps(body), body["id"], body["uptime_ms"])
    (dev.flash / "boot.txt").write_text(str(boot))


def old_alarm(n):
    return "alarm", device_protocol.alarm(DEVICE, "%s:1:%d" % (DEVICE, n), "panic", 1000 * n)


def old_event(n):
    return "event", device_protocol.event(DEVICE, "%s:1:%d" % (DEVICE, n), "check_in", 1000 * n)


def test_alarms_in_the_outbox_survive_a_power_cut_and_arrive_after_restart(any_broker, desk_for,
                                                                          device_for):
    desk = desk_for(any_broker, auto_deliver=True)
    dev = device_for(any_broker)
    desk.wait_for("status", state="online")
    mark = dev.mark()
    dev.cut_link()
    dev.wait_console("link: offline", after=mark)
    dev.presses(3, ms=100, gap_ms=200)
    dev.wait_console("queued alarm %s:1:1 panic" % DEVICE, after=mark)
    dev.press(2300)
    dev.wait_console("queued alarm %s:1:2 panic" % DEVICE, after=mark)
    dev.kill()                      # power cut, alarms only on flash
    dev.restore_link()
    dev.start()                     # power back
    desk.wait_for("alarm", count=2, timeout=15)
    dev.press(2300)
    third = desk.wait_for("alarm", count=3)
    ids = [a.body["id"] for a in desk.of("alarm")]
    assert ids[:2] == ["%s:1:1" % DEVICE, "%s:1:2" % DEVICE]
    assert third.body["id"].startswith("%s:2:" % DEVICE)  # new boot, new ids
    assert len(set(ids)) == 3
    assert desk.invalid == []


def test_torn_outbox_record_from_a_cut_mid_write_leaves_the_rest_deliverable(mosquitto, desk_for,
                                                                            device_for):
    desk = desk_for(mosquitto, auto_deliver=True)
    dev = device_for(mosquitto, start=False)
    seed_outbox(dev, [old_alarm(1), old_alarm(2)])
    log = dev.flash / "outbox.log"
    alarm = old_alarm(3)[1]
    line = io.StringIO()
    device_outbox._added(line, 3, "alarm", alarm["id"], alarm["uptime_ms"], json.dumps(alarm))
    torn = line.getvalue()
    log.write_text(log.read_text() + torn[:len(torn) // 2])  # the cut came mid-append
    dev.start()
    dev.wait_console("outbox: skipped 1 torn/corrupt record")
    desk.wait_for("alarm", count=2)
    dev.press(2300)
    desk.wait_for("alarm", count=3)
    ids = [a.body["id"] for a in desk.of("alarm")]
    assert ids[:2] == ["%s:1:1" % DEVICE, "%s:1:2" % DEVICE] and ids[2].startswith(DEVICE + ":2:")
    assert desk.invalid == []


def test_full_outbox_sheds_events_never_an_alarm(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto, auto_deliver=True)
    dev = device_for(mosquitto, start=False, outbox_max=4)
    seed_outbox(dev, [old_event(1), old_alarm(2), old_event(3), old_alarm(4)])
    dev.cut_link()
    dev.start(wait_online=False)
    dev.wait_console("4 record\\(s\\) in the outbox")
    mark = dev.mark()
    dev.presses(3, ms=100, gap_ms=200)      # a new alarm into a full outbox
    dev.wait_console("queued alarm", after=mark)
    dev.press(2300)
    dev.wait_console("queued alarm .* panic", after=mark + 2)
    time.sleep(0.5)
    dev.restore_link()
    desk.wait_for("alarm", count=4, timeout=15)
    time.sleep(1.0)
    assert [a.body["id"] for a in desk.of("alarm")][:2] == ["%s:1:2" % DEVICE, "%s:1:4" % DEVICE]
    assert len(desk.of("alarm")) == 4
    assert desk.of("event", type="check_in") == []  # both events were shed for alarms
    assert "outbox: full, dropped event" in "\n".join(dev.console)


def test_alarm_left_on_flash_by_the_previous_firmware_is_delivered_after_the_update(
        mosquitto, desk_for, device_for):
    # The previous firmware wrote `+KEY KIND JSON`; the id and uptime were
    # only inside the JSON.
    desk = desk_for(mosquitto, auto_deliver=True)
    dev = device_for(mosquitto, start=False)
    _, alarm = old_alarm(1)
    (dev.flash / "outbox.log").write_text(device_outbox._line("+1 alarm " + json.dumps(alarm)))
    (dev.flash / "boot.txt").write_text("1")
    dev.start()
    got = desk.wait_for("alarm", type="panic")
    assert got.body["id"] == alarm["id"] and got.body["sent_uptime_ms"] == alarm["uptime_ms"]
    dev.wait_console("outbox: alarm %s confirmed, removed" % alarm["id"])
    assert desk.invalid == []
