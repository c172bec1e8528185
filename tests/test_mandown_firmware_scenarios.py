"""False pre-alarms a worn device raised in continuous wear, replayed through
the real firmware under `micropython` on the virtual board: each everyday
movement is followed by a real fall, so the test knows the detector watched
the whole movement and was still armed after it. The fall must be the first
pre-alarm the desk hears of.

The movements (simulator/traces.py) are the classes the continuous-wear
benchmark found (docs/mandown.md): an impact that was not the landing
(a footstep before bending or lying down and turning in bed), and a hard
drop back into a chair from a forward lean; and the one the synthetic
shifts found, bending deep at the last step of a walk."""

import time

from firmware_harness import desk_for, device_for  # noqa: F401
from simulator import traces

RATE = traces.RATE_HZ
WALK_S = 60          # every scenario starts with a minute of walking
# Enough of it for the device to learn the upright, with a margin for a
# busy machine, where a starved VM reads fewer samples of it (walk_s is 3 s).
KEEP_WALK_S = 10


def then_a_fall(samples, seed=1):
    """The movement from the last seconds of its walk, then the wearer walks
    on and falls (walk, fall, lying still)."""
    fall = traces.fall_then_motionless(seed, after_s=8)
    return samples[(WALK_S - KEEP_WALK_S) * RATE:] + fall[(WALK_S - 5) * RATE:]


MOVEMENTS = (
    ("bend_after_walk", {"after_s": 3}),          # a footstep, then bending to the floor
    ("bend_at_the_last_step", {"seed": 3, "after_s": 3}),  # bending to the floor at the last step
    ("lie_down_and_turn", {"after_s": 8}),        # a footstep, then lying down and turning in bed
    ("collapse_into_chair", {"after_s": 8}),      # a hard drop back into the seat
)


def test_everyday_movements_raise_no_pre_alarm_before_the_falls_that_follow(mosquitto, desk_for, device_for):
    # One wearer per movement, all at once: each plays in real time.
    desk = desk_for(mosquitto)
    wearers = []
    for n, (scenario, kwargs) in enumerate(MOVEMENTS, 1):
        movement = traces.SCENARIOS[scenario](**dict({"seed": 0}, **kwargs))
        device = "dev-%03d" % n
        dev = device_for(mosquitto, device=device, prealarm_s=2)
        wearers.append((scenario, device, dev, movement, len(movement) / RATE - (WALK_S - KEEP_WALK_S)))
    for _, device, _, _, _ in wearers:
        desk.wait_for("status", state="online", device=device)

    started_at = time.monotonic()
    for _, _, dev, movement, _ in wearers:
        dev.play(then_a_fall(movement))
    for scenario, device, _, _, movement_s in wearers:
        left = movement_s + 30 - (time.monotonic() - started_at)
        first = desk.wait_for("event", type="pre_alarm_started", device=device, timeout=max(left, 1))
        heard_after_s = desk.arrived[id(first)] - started_at
        assert first.body["cause"] == "fall", scenario
        assert heard_after_s > movement_s, (
            "pre-alarm %.1f s into a %.1f s %s: raised by the movement, not the fall"
            % (heard_after_s, movement_s, scenario))
        assert desk.wait_for("alarm", type="man_down", device=device, timeout=10).body["cause"] == "fall"


def test_a_fall_off_a_reclined_seat_raises_a_pre_alarm(mosquitto, desk_for, device_for):
    # The trunk passes near upright on the way down; the turn counts from the seat.
    samples = traces.fall_from_reclined_seat(0, after_s=5)[(WALK_S - KEEP_WALK_S) * RATE:]
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto, prealarm_s=2)
    desk.wait_for("status", state="online")

    dev.play(samples)
    assert desk.wait_for("event", type="pre_alarm_started", timeout=40).body["cause"] == "fall"
    assert desk.wait_for("alarm", type="man_down", timeout=10).body["cause"] == "fall"


def test_a_wearer_who_cancels_but_stays_down_gets_a_new_pre_alarm(mosquitto, desk_for, device_for):
    # Cancelling says "I'm OK", not "I'm up": the detector watches afresh
    # from the press, so lying on for tilt_s raises the question again.
    samples = traces.fall_then_motionless(0, after_s=40)[(WALK_S - KEEP_WALK_S) * RATE:]
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto, prealarm_s=20,
                     mandown={"tilt_s": 12, "not_worn_s": 10, "no_motion_s": 600})
    desk.wait_for("status", state="online")

    dev.play(samples)
    assert desk.wait_for("event", type="pre_alarm_started", timeout=20).body["cause"] == "fall"
    dev.press()
    desk.wait_for("event", type="pre_alarm_cancelled", timeout=5)
    again = desk.wait_for("event", type="pre_alarm_started", count=2, timeout=25)
    assert again.body["cause"] == "tilt"
    assert not desk.of("alarm")


def test_a_fall_is_caught_while_the_firmware_is_held_up_through_the_impact(mosquitto, desk_for, device_for):
    # Half a second with the core held (a flash erase, a TLS handshake) from
    # just before the impact: the samples wait in the chip's FIFO for the
    # detector, the impact among them.
    samples = traces.fall_then_motionless(0, after_s=8)[(WALK_S - KEEP_WALK_S) * RATE:]
    impact = max(range(len(samples)), key=lambda i: sum(a * a for a in samples[i]))
    desk = desk_for(mosquitto)
    dev = device_for(mosquitto, prealarm_s=2)
    desk.wait_for("status", state="online")

    started_at = time.monotonic()
    dev.play(samples)
    time.sleep(max(0.0, started_at + impact / RATE - 0.2 - time.monotonic()))
    dev.stall(500)
    assert desk.wait_for("event", type="pre_alarm_started", timeout=20).body["cause"] == "fall"
    assert desk.wait_for("alarm", type="man_down", timeout=10).body["cause"] == "fall"
    assert not [line for line in dev.console if "FIFO full" in line]

    # Held up longer than the FIFO holds (0.64 s), the firmware says so.
    dev.stall(1000)
    dev.wait_console("sensor: FIFO full")
