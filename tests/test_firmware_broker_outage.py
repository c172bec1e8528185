"""Firmware in the loop: the broker itself is down for 60 s (its process
stopped, not a cut link) while the device runs the shipped network timings
(keepalive 30 s, reconnect backoff up to 30 s). Alarms raised meanwhile wait
in the flash outbox and arrive once each, in order, when the broker is back."""

import time

from firmware_harness import DEVICE, desk_for, device_for  # noqa: F401

OUTAGE_S = 60
SHIPPED_NETWORK_TIMINGS = {"keepalive_s": 30, "connect_timeout_s": 10, "backoff_max_s": 30,
                           "puback_timeout_s": 10}


def test_broker_down_60_s_then_back_delivers_every_queued_alarm_once_in_order(
        persistent_mosquitto, desk_for, device_for):
    broker = persistent_mosquitto
    desk = desk_for(broker, persistent=True, auto_deliver=True)
    dev = device_for(broker, **SHIPPED_NETWORK_TIMINGS)
    desk.wait_for("status", state="online")

    mark = dev.mark()
    broker.stop()
    down_at = time.monotonic()
    dev.wait_console("link: offline", after=mark)
    dev.presses(3, ms=100, gap_ms=200)      # panic by three presses
    dev.press(2300)                         # panic by holding
    time.sleep(0.2)
    dev.presses(3, ms=100, gap_ms=200)
    dev.wait_console("queued alarm %s:1:3 panic" % DEVICE, after=mark)
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
    assert desk.of("alarm") == []

    broker.start()
    # Back within one backoff period (30 s) plus the connect.
    desk.wait_for("alarm", count=3, timeout=45)
    time.sleep(2)  # a duplicate would have arrived by now
    alarms = desk.of("alarm")
    assert [a.body["id"] for a in alarms] == ["%s:1:%d" % (DEVICE, n) for n in (1, 2, 3)]
    assert all(a.body["type"] == "panic" for a in alarms)
    # Dated when raised: each waited out the outage in the outbox.
    assert all(a.body["sent_uptime_ms"] - a.body["uptime_ms"] >= 50_000 for a in alarms)
    assert desk.invalid == []
