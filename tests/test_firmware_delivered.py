"""Firmware in the loop: an alarm stays in the flash outbox until the
gateway's `delivered` for its id arrives, not merely the broker's PUBACK (a
broker can acknowledge an alarm and then drop it by ACL or lose it in a
crash). Without `delivered` in `delivered_timeout_s` it is sent again with
the same id; it survives a power cut; the wearer feels "delivered" only on
`delivered`. Events still leave on their PUBACK.

The desk here plays the gateway; leaving out auto_deliver is a gateway that
never saw the alarm."""

import time

from firmware_harness import DEVICE, desk_for, device_for, now_ms, pulses, wait_quiet  # noqa: F401


def outbox_length(desk, dev, heartbeats_before):
    """Records waiting on the device's flash, as its heartbeat reports them
    (a `ping` asks for one now)."""
    mark = dev.mark()
    desk.command("ping")
    dev.wait_console("cmd: ping", after=mark)
    return desk.wait_for("heartbeat", count=heartbeats_before + 1).body["outbox"]


def test_alarm_without_delivered_is_sent_again_with_the_same_id_and_kept(mosquitto, desk_for,
                                                                          device_for):
    desk = desk_for(mosquitto)  # the broker takes the alarm; no gateway confirms it
    dev = device_for(mosquitto, delivered_timeout_s=2)
    desk.wait_for("heartbeat")
    t0 = now_ms()
    dev.press(2300)
    alarm_id = desk.wait_for("alarm", type="panic").body["id"]
    dev.wait_console("link: broker has alarm")
    wait_quiet(dev, t0)                                   # the alarm_queued pattern is over
    t_queued = now_ms()

    again = desk.wait_for("alarm", count=3, timeout=10)   # two resends, ~2 s apart
    assert again.body["id"] == alarm_id
    assert {a.body["id"] for a in desk.of("alarm")} == {alarm_id}
    dev.wait_console("link: no delivered for alarm \\d+ within 2 s, sending it again")
    assert outbox_length(desk, dev, heartbeats_before=1) == 1
    # The broker had it three times over, yet the wearer was never told "delivered".
    assert "state alarm -> delivered" not in "\n".join(dev.console)
    assert pulses(dev, "vibration", t_queued) == 0
    assert desk.invalid == []


def test_delivered_removes_the_alarm_and_it_is_not_sent_again(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto, auto_deliver=True)  # answers every alarm as the gateway does
    dev = device_for(mosquitto, delivered_timeout_s=2)
    desk.wait_for("heartbeat")
    t0 = now_ms()
    dev.press(2300)
    alarm_id = desk.wait_for("alarm", type="panic").body["id"]
    dev.wait_console("outbox: alarm %s confirmed, removed" % alarm_id)
    dev.wait_console("state alarm -> delivered")
    wait_quiet(dev, t0, quiet_ms=1500)  # queued, then the two "delivered" pulses
    time.sleep(3)  # past the 2 s timeout: a resend would be here by now
    assert len(desk.of("alarm")) == 1
    assert outbox_length(desk, dev, heartbeats_before=1) == 0
    assert "sending it again" not in "\n".join(dev.console)


def test_alarm_the_broker_has_but_unconfirmed_survives_a_power_cut(mosquitto, desk_for,
                                                                   device_for):
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto, delivered_timeout_s=60)  # no resend before the cut
    desk.wait_for("status", state="online")
    dev.press(2300)
    alarm_id = desk.wait_for("alarm", type="panic").body["id"]
    dev.wait_console("link: broker has alarm")
    dev.kill()                                     # power cut: the alarm is only on flash
    dev.start()
    dev.wait_console("1 record\\(s\\) in the outbox")
    replayed = desk.wait_for("alarm", count=2, timeout=15)
    assert replayed.body["id"] == alarm_id         # same id: one incident at the gateway
    mark = dev.mark()
    desk.command("delivered", ref=alarm_id)
    dev.wait_console("outbox: alarm %s confirmed, removed" % alarm_id, after=mark)
    desk.wait_for("heartbeat", count=2)            # one from each boot
    assert outbox_length(desk, dev, heartbeats_before=2) == 0
    assert desk.invalid == []


def test_events_still_leave_the_outbox_on_their_puback(mosquitto, desk_for, device_for):
    desk = desk_for(mosquitto)  # nothing ever confirms an event
    dev = device_for(mosquitto, delivered_timeout_s=1)
    desk.wait_for("heartbeat")
    dev.presses(2, ms=120, gap_ms=250)             # check-in
    desk.wait_for("event", type="check_in")
    dev.wait_console("link: sent event")
    time.sleep(2)                                  # past the alarms' timeout
    assert len(desk.of("event", type="check_in")) == 1
    assert outbox_length(desk, dev, heartbeats_before=1) == 0


def test_alarm_lost_in_a_broker_crash_after_its_puback_still_reaches_the_gateway(
        persistent_mosquitto, desk_for, device_for):
    broker = persistent_mosquitto
    gateway = desk_for(broker, persistent=True, auto_deliver=True)
    dev = device_for(broker, delivered_timeout_s=3)
    gateway.wait_for("status", state="online")
    gateway.close()                                # the gateway is away (restarting)
    dev.press(2300)
    dev.wait_console("link: broker has alarm")     # PUBACKed, queued for the gateway ...
    broker.proc.kill()                             # ... and the broker crashes before saving
    broker.proc.wait()
    broker.start()
    gateway = desk_for(broker, persistent=True, auto_deliver=True)
    alarm = gateway.wait_for("alarm", type="panic", timeout=20)
    dev.wait_console("outbox: alarm %s confirmed, removed" % alarm.body["id"])
    dev.wait_console("state alarm -> delivered")
