"""Firmware in the loop, lost link: alarms raised while the broker is out of
reach wait in the flash outbox and arrive once each, in order, when it is
back; the wearer sees the gentle no-connection pattern meanwhile.

The outage is a cut TCP link between device and broker (the proxy resets
every connection and refuses new ones). Default timings here are scaled
down (keepalive 5 s, backoff cap 2 s), so a 12 s outage spans several
keepalive periods and reconnect attempts, as 60 s does with the shipped
defaults; LW_FIRMWARE_OUTAGE_S=60 runs the full-length version."""

import os
import time

from firmware_harness import DEVICE, desk_for, device_for, now_ms, pulses  # noqa: F401

OUTAGE_S = float(os.environ.get("LW_FIRMWARE_OUTAGE_S", "12"))


def seq(message):
    device, boot, n = message.body["id"].split(":")
    return int(boot), int(n)


def test_alarms_queued_while_broker_unreachable_arrive_once_in_order(any_broker, desk_for, device_for):
    desk = desk_for(any_broker, auto_deliver=True)
    dev = device_for(any_broker)
    desk.wait_for("status", state="online")
    cut_at = time.monotonic()
    mark = dev.mark()
    dev.cut_link()
    dev.wait_console("link: offline", after=mark)
    t_offline = now_ms()
    dev.presses(2, ms=100, gap_ms=200)            # check-in (an event)
    dev.wait_console("queued event .* check_in", after=mark)
    dev.presses(3, ms=100, gap_ms=200)            # panic 1
    dev.press(2300)                               # panic 2, by holding
    time.sleep(0.2)
    dev.presses(3, ms=100, gap_ms=200)            # panic 3
    dev.wait_console("queued alarm %s:1:4 panic" % DEVICE, after=mark)
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut_at)))
    assert desk.of("alarm") == []
    # No connection: a short LED blink every 3 s, no sound.
    assert pulses(dev, "led", t_offline) >= 2

    dev.restore_link()
    third = desk.wait_for("alarm", count=3, timeout=20)
    time.sleep(1.5)  # anything duplicated would arrive by now
    alarms = desk.of("alarm")
    assert len(alarms) == 3 and len({a.body["id"] for a in alarms}) == 3
    assert [seq(a) for a in alarms] == sorted(seq(a) for a in alarms)
    assert len(desk.of("event", type="check_in")) == 1
    # In order across kinds too: the check-in was raised first.
    check_in = desk.of("event", type="check_in")[0]
    assert seq(check_in) < seq(alarms[0])
    assert desk.messages.index(check_in) < desk.messages.index(alarms[0])
    # Stamped when raised and again when sent: the desk sees how long it waited.
    assert third.body["sent_uptime_ms"] - alarms[0].body["uptime_ms"] >= 3000
    assert desk.invalid == []
