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
    all_queued_by = time.monotonic()
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
    assert desk.of("alarm") == []

    back_at = time.monotonic()
    broker.start()
    # Back within one backoff period (30 s) plus the connect.
    desk.wait_for("alarm", count=3, timeout=45)
    time.sleep(2)  # a duplicate would have arrived by now
    alarms = desk.of("alarm")
    assert [a.body["id"] for a in alarms] == ["%s:1:%d" % (DEVICE, n) for n in (1, 2, 3)]
    assert all(a.body["type"] == "panic" for a in alarms)
    # Dated when raised: each says it waited in the outbox at least from the
    # moment the last one was queued until the broker came back (measured
    # here, as a slow machine may take seconds to see the link go and to
    # read the presses).
    waited_ms = [a.body["sent_uptime_ms"] - a.body["uptime_ms"] for a in alarms]
    at_least_ms = int((back_at - all_queued_by) * 1000) - 100
    assert at_least_ms > 40_000
    assert all(w >= at_least_ms for w in waited_ms), (waited_ms, at_least_ms)
    assert desk.invalid == []
