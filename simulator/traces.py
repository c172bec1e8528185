"""Seeded synthetic accelerometer traces for the man-down detector, 50 Hz, milli-g.

Each scenario returns a list of (x, y, z) integer tuples as the device would
read them. `seed` makes a trace reproducible; `orientation` is how the device
is mounted on the body, (yaw, pitch, roll) in degrees, so tests can check that
nothing depends on which axis points up. In the body frame (orientation
(0, 0, 0)) y points down the trunk, as in SisFall: upright reads (0, -1000, 0).

Every scenario starts with a minute of walking, the way a shift starts, so the
detector has learned the wearer's upright before anything happens. What the
detector should make of each trace is in EXPECTED and docs/mandown.md.
"""
import csv
import gzip
import math
import random

RATE_HZ = 50
G = 1000.0

# What the detector must report for each scenario (tests hold it to this).
EXPECTED = {
    "fall_then_motionless": "fall within seconds of the impact",
    "fall_then_recovers": "fall, then cleared once the wearer is up and walking",
    "fall_then_struggles": "no fall (never still), tilt once down for tilt_s",
    "desk_sitting": "nothing for the whole hour",
    "slow_slide": "tilt, then (if not reset) nothing else; never fall",
    "device_dropped": "not_worn, never a man-down event",
    "jump": "nothing",
    "stumble": "nothing",
    "bend_after_walk": "nothing",
    "collapse_into_chair": "nothing",
    "lie_down_and_turn": "nothing",
    "fall_from_reclined_seat": "fall within seconds of the impact",
    "bend_at_the_last_step": "nothing",
}


def rotation(orientation):
    """3x3 rotation matrix (rows) for (yaw, pitch, roll) in degrees, applied z-y-x."""
    yaw, pitch, roll = (math.radians(a) for a in orientation)
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    return (
        (cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr),
        (sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr),
        (-sp, cp * sr, cp * cr),
    )


def rotate(samples, orientation):
    """The same motion seen by a device mounted at another orientation."""
    m = rotation(orientation)
    out = []
    for x, y, z in samples:
        out.append((int(round(m[0][0] * x + m[0][1] * y + m[0][2] * z)),
                    int(round(m[1][0] * x + m[1][1] * y + m[1][2] * z)),
                    int(round(m[2][0] * x + m[2][1] * y + m[2][2] * z))))
    return out


def peak_index(samples):
    """Where |a| is largest: a fall's impact."""
    return max(range(len(samples)), key=lambda i: sum(v * v for v in samples[i]))


def from_before_impact(samples, seconds):
    """The trace from `seconds` before its impact on."""
    return samples[max(0, peak_index(samples) - int(seconds * RATE_HZ)):]


def write_csv(path, samples):
    """Write samples in the dataset's format (gzip when the name ends in .gz)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(("ax_mg", "ay_mg", "az_mg"))
        w.writerows(samples)


class _Body:
    """A wearer's trunk: posture (pitch forward, roll right, degrees) plus motion."""

    def __init__(self, seed, orientation, noise_mg=1.5):
        self.rng = random.Random(seed)
        self.mount = rotation(orientation)
        self.noise = noise_mg
        self.pitch = 0.0
        self.roll = 0.0
        self.samples = []

    def _emit(self, ax, ay, az, pitch=None, roll=None, noise=None):
        """One sample: gravity for the posture plus body-frame acceleration (milli-g)."""
        p = math.radians(self.pitch if pitch is None else pitch)
        r = math.radians(self.roll if roll is None else roll)
        # Upright reads (0, -1 g, 0); pitching forward turns it towards -z,
        # rolling right towards +x.
        gx = G * math.cos(p) * math.sin(r)
        gy = -G * math.cos(p) * math.cos(r)
        gz = -G * math.sin(p)
        bx, by, bz = gx + ax, gy + ay, gz + az
        m = self.mount
        n = self.noise if noise is None else noise
        gauss = self.rng.gauss
        self.samples.append((
            int(round(m[0][0] * bx + m[0][1] * by + m[0][2] * bz + gauss(0, n))),
            int(round(m[1][0] * bx + m[1][1] * by + m[1][2] * bz + gauss(0, n))),
            int(round(m[2][0] * bx + m[2][1] * by + m[2][2] * bz + gauss(0, n))),
        ))

    def walk(self, seconds, intensity=1.0, heel_mg=0.0):
        """heel_mg: a jolt up the trunk at each heel strike; some people's
        steps peak at 2-4.5 g at the waist, well past the impact threshold."""
        rng = self.rng
        step_hz = rng.uniform(1.7, 2.0)
        lean = rng.uniform(2, 8)  # people lean forward a little when walking
        phase = rng.uniform(0, 2 * math.pi)
        step = None
        for i in range(int(seconds * RATE_HZ)):
            t = i / RATE_HZ
            w = 2 * math.pi * step_hz * t + phase
            vertical = intensity * (250 * math.sin(w) + 90 * math.sin(2 * w + 0.7))
            if heel_mg and int(w / (2 * math.pi)) != step:
                step = int(w / (2 * math.pi))
                vertical += heel_mg * rng.uniform(0.8, 1.0)
            forward = intensity * 120 * math.sin(w + 1.2)
            lateral = intensity * 80 * math.sin(w / 2)
            self._emit(lateral + rng.gauss(0, 25), -vertical + rng.gauss(0, 25),
                       -forward + rng.gauss(0, 25), pitch=lean + 2 * math.sin(w), roll=self.roll)
        self.pitch = 0.0

    def turn_to(self, pitch, roll, seconds, jolt_mg=0.0):
        """Change posture smoothly (cosine ramp), with an optional push at the start."""
        n = max(1, int(seconds * RATE_HZ))
        p0, r0 = self.pitch, self.roll
        for i in range(n):
            f = 0.5 - 0.5 * math.cos(math.pi * (i + 1) / n)
            push = jolt_mg * math.sin(math.pi * i / n) if jolt_mg else 0.0
            self._emit(self.rng.gauss(0, 10), push + self.rng.gauss(0, 10), self.rng.gauss(0, 10),
                       pitch=p0 + (pitch - p0) * f, roll=r0 + (roll - r0) * f)
        self.pitch, self.roll = pitch, roll

    def rest(self, seconds, breath_deg=0.6, fidget_every_s=None, fidget_deg=6.0):
        """Still in the current posture: breathing rocks the trunk slightly;
        optional fidgets (shifting in the chair) at random intervals."""
        rng = self.rng
        breath_hz = rng.uniform(0.2, 0.3)
        phase = rng.uniform(0, 2 * math.pi)
        base_pitch, base_roll = self.pitch, self.roll
        next_fidget = rng.uniform(3, fidget_every_s) if fidget_every_s else None
        i = 0
        total = int(seconds * RATE_HZ)
        while i < total:
            t = i / RATE_HZ
            if next_fidget is not None and t >= next_fidget:
                # Shift in the chair: lean a little and settle back.
                self.pitch, self.roll = base_pitch, base_roll
                shift = rng.choice((1, -1)) * rng.uniform(fidget_deg / 3, fidget_deg)
                self.turn_to(base_pitch + shift, base_roll + rng.uniform(-2, 2), 0.6, jolt_mg=250)
                self.turn_to(base_pitch, base_roll, 0.8)
                i += int(0.6 * RATE_HZ) + int(0.8 * RATE_HZ)
                next_fidget = t + 1.4 + rng.uniform(5, fidget_every_s)
                continue
            b = breath_deg * math.sin(2 * math.pi * breath_hz * t + phase)
            self._emit(0.0, 0.0, 0.0, pitch=base_pitch + b, roll=base_roll)
            i += 1
        self.pitch, self.roll = base_pitch, base_roll

    def struggle(self, seconds):
        """Down but moving: rocking and reaching around the current posture."""
        rng = self.rng
        base_pitch, base_roll = self.pitch, self.roll
        hz = rng.uniform(0.4, 0.8)
        for i in range(int(seconds * RATE_HZ)):
            w = 2 * math.pi * hz * i / RATE_HZ
            self._emit(rng.gauss(0, 80), rng.gauss(0, 80), rng.gauss(0, 80),
                       pitch=base_pitch + 8 * math.sin(w), roll=base_roll + 6 * math.sin(0.7 * w))

    def impact(self, peak_mg, samples=3):
        """A short hit, mostly along the trunk, with a bounce after it."""
        rng = self.rng
        direction = [rng.uniform(-0.5, 0.5), rng.uniform(0.6, 1.0), rng.uniform(-0.5, 0.5)]
        norm = math.sqrt(sum(d * d for d in direction))
        for k in range(samples):
            s = peak_mg * (1.0 - abs(k - samples // 2) / samples)
            self._emit(*(s * d / norm for d in direction))
        for k in range(int(0.4 * RATE_HZ)):
            decay = 400 * math.exp(-k / 5.0) * math.sin(k * 1.3)
            self._emit(rng.gauss(0, 30), decay, rng.gauss(0, 30))

    def free_fall(self, seconds, to_pitch, to_roll, residual_g=0.25):
        """Falling: support lost (|a| well below 1 g) while the trunk turns."""
        n = int(seconds * RATE_HZ)
        p0, r0 = self.pitch, self.roll
        for i in range(n):
            f = (i + 1) / n
            p = p0 + (to_pitch - p0) * f
            r = r0 + (to_roll - r0) * f
            # Support gone: the device reads only what still holds it back.
            lift = residual_g
            rad_p, rad_r = math.radians(p), math.radians(r)
            gx = G * math.cos(rad_p) * math.sin(rad_r)
            gy = -G * math.cos(rad_p) * math.cos(rad_r)
            gz = -G * math.sin(rad_p)
            self._emit(gx * (lift - 1), gy * (lift - 1), gz * (lift - 1), pitch=p, roll=r)
        self.pitch, self.roll = to_pitch, to_roll

    def fall_to_floor(self, impact_mg=None):
        """Support lost while the trunk turns towards lying, then the hit
        (impact_mg added to gravity; by default a firm 3-6 g)."""
        rng = self.rng
        self.free_fall(rng.uniform(0.4, 0.6), rng.choice((1, -1)) * rng.uniform(75, 100),
                       rng.uniform(-30, 30))
        self.impact(impact_mg or rng.uniform(3000, 6000))


def fall_then_motionless(seed=0, orientation=(0, 0, 0), after_s=180, impact_mg=None, walk_s=60):
    """Walking, a fall with an impact, then lying motionless (breathing only).
    impact_mg: the hit, added to gravity; by default a firm 3-6 g."""
    b = _Body(seed, orientation)
    rng = b.rng
    b.walk(walk_s)
    b.turn_to(rng.uniform(10, 25), rng.uniform(-10, 10), 0.3, jolt_mg=300)  # trip
    b.fall_to_floor(impact_mg)
    b.rest(after_s, breath_deg=0.8)
    return b.samples


def fall_then_recovers(seed=0, orientation=(0, 0, 0), down_s=15, after_s=30):
    """Walking, a fall, a few seconds on the floor, then getting up and walking on."""
    b = _Body(seed, orientation)
    b.walk(60)
    b.fall_to_floor()
    b.rest(down_s, breath_deg=1.0)
    b.turn_to(30, 0, 1.5, jolt_mg=400)  # onto the knees
    b.turn_to(0, 0, 1.5, jolt_mg=400)   # and up
    b.walk(after_s)
    return b.samples


def fall_then_struggles(seed=0, orientation=(0, 0, 0), struggle_s=90):
    """Walking, a fall, then moving on the floor without getting up (injured)."""
    b = _Body(seed, orientation)
    b.walk(60)
    b.fall_to_floor()
    b.struggle(struggle_s)
    return b.samples


def desk_sitting(seed=0, orientation=(0, 0, 0), hours=1.0):
    """Walking to a desk, sitting down, then an hour of sitting with small movements."""
    b = _Body(seed, orientation)
    rng = b.rng
    b.walk(60)
    b.turn_to(-rng.uniform(10, 25), rng.uniform(-5, 5), 1.2, jolt_mg=250)  # sit, lean back
    b.rest(hours * 3600, breath_deg=0.6, fidget_every_s=40, fidget_deg=9)
    return b.samples


def slow_slide(seed=0, orientation=(0, 0, 0), after_s=120):
    """Walking, then sliding slowly down a wall to the floor: no impact at all."""
    b = _Body(seed, orientation)
    rng = b.rng
    b.walk(60)
    b.rest(3)
    b.turn_to(rng.uniform(20, 35), rng.uniform(-10, 10), 6)       # knees give way
    b.turn_to(rng.uniform(80, 95), rng.uniform(-25, 25), 6)       # slumps over
    b.rest(after_s, breath_deg=0.6)
    return b.samples


def device_dropped(seed=0, orientation=(0, 0, 0), after_s=600):
    """Walking, then the device slips off, falls to the floor and is put on a table."""
    b = _Body(seed, orientation)
    rng = b.rng
    b.walk(60)
    b.free_fall(rng.uniform(0.35, 0.45), rng.uniform(-180, 180), rng.uniform(-90, 90),
                residual_g=0.02)
    b.impact(rng.uniform(6000, 12000), samples=2)
    # Picked up and put down on a table: a face of the case lies flat.
    b.turn_to(rng.choice((90, -90)), 0, 2.0, jolt_mg=200)
    b.rest(after_s, breath_deg=0.0)
    return b.samples


def _jump(b):
    """A jump to reach something high, landing hard, standing still a moment."""
    rng = b.rng
    b.rest(2)
    b.turn_to(rng.uniform(15, 25), 0, 0.4)                           # crouch
    b.turn_to(0, 0, 0.2, jolt_mg=-900)                                # push off
    b.free_fall(rng.uniform(0.25, 0.35), 0, 0, residual_g=0.05)      # in the air
    b.impact(rng.uniform(3000, 5000))
    b.turn_to(rng.uniform(10, 20), 0, 0.3)                            # knees bend
    b.turn_to(0, 0, 0.5)
    b.rest(5)


def _stumble(b):
    """A trip caught with a couple of quick steps."""
    rng = b.rng
    b.impact(rng.uniform(2200, 3200))                                 # toe catches
    b.turn_to(rng.uniform(25, 40), rng.uniform(-10, 10), 0.4, jolt_mg=400)
    b.walk(1.0, intensity=1.8)                                        # quick recovery steps
    b.turn_to(0, 0, 0.5)


def jump(seed=0, orientation=(0, 0, 0), after_s=20):
    """Walking, a jump to reach something high, landing hard, standing, walking on."""
    b = _Body(seed, orientation)
    b.walk(60)
    _jump(b)
    b.walk(after_s)
    return b.samples


def stumble(seed=0, orientation=(0, 0, 0), after_s=30):
    """Walking, a trip that is caught with a couple of quick steps, walking on."""
    b = _Body(seed, orientation)
    b.walk(60)
    _stumble(b)
    b.walk(after_s)
    return b.samples


def bend_after_walk(seed=0, orientation=(0, 0, 0), after_s=10):
    """Walking with hard heel strikes, then, a moment after the last step,
    bending deep to pick something up from the floor, holding it, and
    walking on: no impact after the turn."""
    b = _Body(seed, orientation)
    rng = b.rng
    b.walk(60, heel_mg=rng.uniform(1800, 2600))
    b.rest(rng.uniform(0.8, 1.5))
    b.turn_to(rng.uniform(95, 110), rng.uniform(-10, 10), 1.5)      # bend from the hips
    b.rest(rng.uniform(3, 4), breath_deg=0.5)                       # reaching, still
    b.turn_to(0, 0, 1.5)
    b.walk(after_s)
    return b.samples


def bend_at_the_last_step(seed=0, orientation=(0, 0, 0), after_s=10):
    """Walking with hard heel strikes and bending deep from the hips at the
    last step, without stopping first, to pick something up from the floor;
    holding it a few seconds, walking on."""
    b = _Body(seed, orientation)
    rng = b.rng
    b.walk(60, heel_mg=rng.uniform(2400, 3000))
    b.turn_to(rng.uniform(95, 110), rng.uniform(-10, 10), rng.uniform(1.3, 1.6))
    b.rest(rng.uniform(2, 4), breath_deg=0.5)
    b.turn_to(0, 0, 1.5)
    b.walk(after_s)
    return b.samples


def collapse_into_chair(seed=0, orientation=(0, 0, 0), after_s=20):
    """Walking to a chair, sitting bent forward over the knees for a while,
    trying to get up with a hard push of the feet, and dropping back into
    the seat, leaning back: a hard impact and a large turn from the forward
    lean, but the trunk ends as someone sitting, not lying."""
    b = _Body(seed, orientation)
    rng = b.rng
    b.walk(60)
    b.turn_to(-rng.uniform(10, 15), rng.uniform(-5, 5), 1.2, jolt_mg=250)   # sits down
    b.rest(rng.uniform(2, 3))
    b.turn_to(rng.uniform(22, 28), 0, 1.0)                                # bends forward over the knees
    b.rest(rng.uniform(7, 9))
    b.impact(rng.uniform(4500, 5500))                                     # the push, and back down
    b.turn_to(-rng.uniform(34, 37), rng.uniform(-3, 3), 0.5)
    b.rest(after_s, breath_deg=0.6)
    return b.samples


def lie_down_and_turn(seed=0, orientation=(0, 0, 0), after_s=20):
    """Walking with hard heel strikes to a bed, sitting on its edge, lying
    back and turning onto the side within a few seconds, then lying still."""
    b = _Body(seed, orientation)
    rng = b.rng
    b.walk(60, heel_mg=rng.uniform(1800, 2600))
    b.turn_to(-rng.uniform(10, 20), 0, 1.0, jolt_mg=200)          # sits on the edge
    b.rest(rng.uniform(0.5, 1.0))
    b.turn_to(-rng.uniform(80, 90), 0, 1.5)                        # lies back
    b.rest(rng.uniform(0.5, 1.0))
    b.turn_to(-rng.uniform(80, 90), rng.choice((1, -1)) * rng.uniform(75, 90), 1.2)  # onto the side
    b.rest(after_s, breath_deg=0.8)
    return b.samples


def fall_from_reclined_seat(seed=0, orientation=(0, 0, 0), after_s=20):
    """Walking to a reclining seat and sitting far back in it (the waist
    tilted 50-55 degrees back), then leaning forward to get up and falling
    sideways off it, hard, to lie half on the side (46-48 degrees from
    upright). On the way the trunk passes near upright: the turn through
    the fall counts from the seat, not from there."""
    b = _Body(seed, orientation)
    rng = b.rng
    b.walk(60)
    b.turn_to(-rng.uniform(50, 55), rng.uniform(-5, 5), 1.5, jolt_mg=250)  # sits far back
    b.rest(rng.uniform(5, 8), breath_deg=0.6)
    b.turn_to(-rng.uniform(5, 10), 0, 0.8)                                # leans forward to get up
    b.free_fall(rng.uniform(0.4, 0.5), 0, rng.choice((1, -1)) * rng.uniform(46, 48))
    b.impact(rng.uniform(3500, 4500))
    b.rest(after_s, breath_deg=0.8)
    return b.samples


SCENARIOS = {
    "fall_then_motionless": fall_then_motionless,
    "fall_then_recovers": fall_then_recovers,
    "fall_then_struggles": fall_then_struggles,
    "desk_sitting": desk_sitting,
    "slow_slide": slow_slide,
    "device_dropped": device_dropped,
    "jump": jump,
    "stumble": stumble,
    "bend_after_walk": bend_after_walk,
    "collapse_into_chair": collapse_into_chair,
    "lie_down_and_turn": lie_down_and_turn,
    "fall_from_reclined_seat": fall_from_reclined_seat,
    "bend_at_the_last_step": bend_at_the_last_step,
}


def _recording(seed, start_pitch=0.0, start_roll=0.0):
    b = _Body(seed, (0, 0, 0))
    b.pitch, b.roll = start_pitch, start_roll
    return b


def sisfall_like_subject(seed=0):
    """Synthetic recordings of one subject under SisFall activity codes, each
    starting and ending in the posture the protocol has it start and end in
    (walk D01, sit down and up D07, lie down from sitting and sit up D12,
    collapse into a chair D11, turn in bed D14, bend D16, falls F01 and F13):
    enough to build a continuous-wear chain. {code: samples}."""
    rng = random.Random(seed)
    seat, back = -rng.uniform(12, 18), -rng.uniform(80, 88)
    out = {}
    b = _recording(seed)
    b.walk(40)
    out["D01"] = b.samples
    b = _recording(seed + 1)
    b.rest(2)
    b.turn_to(seat, 0, 1.2, jolt_mg=250)
    b.rest(5)
    b.turn_to(0, 0, 1.2, jolt_mg=200)
    b.rest(2)
    out["D07"] = b.samples
    b = _recording(seed + 2, seat)
    b.rest(3)
    b.turn_to(back, 0, 2.0)
    b.rest(5)
    b.turn_to(seat, 0, 2.0)
    b.rest(2)
    out["D12"] = b.samples
    b = _recording(seed + 3, seat)
    b.rest(3)
    b.turn_to(15, 0, 0.8)
    b.turn_to(seat - 8, 0, 0.6, jolt_mg=500)
    b.rest(6)
    out["D11"] = b.samples
    b = _recording(seed + 4, back)
    b.rest(3)
    b.turn_to(back, 80, 1.5)
    b.rest(4)
    b.turn_to(back, 0, 1.5)
    b.rest(3)
    out["D14"] = b.samples
    b = _recording(seed + 5)
    b.rest(2)
    b.turn_to(100, 0, 1.5)
    b.rest(3)
    b.turn_to(0, 0, 1.5)
    b.rest(2)
    out["D16"] = b.samples
    b = _recording(seed + 6)
    b.walk(4)
    b.fall_to_floor()
    b.rest(10, breath_deg=0.8)
    out["F01"] = b.samples
    b = _recording(seed + 7, seat)
    b.rest(4)
    b.turn_to(seat + 20, 0, 1.5)                                  # slumps forward, asleep
    b.free_fall(0.4, 85, rng.uniform(-20, 20))
    b.impact(rng.uniform(3000, 5000))
    b.rest(10, breath_deg=0.8)
    out["F13"] = b.samples
    return out


# ---- a whole shift -------------------------------------------------------
#
# What a lone worker in a lab or workshop does all day, in a seeded random
# order; every activity starts and ends standing upright, so they chain
# without a jump in posture. Lying down is left out: lying for tilt_s raises
# `tilt` by design (docs/mandown.md), so it would count as false here.


def _walk_on(b):
    b.walk(b.rng.uniform(20, 180), heel_mg=b.heel_mg)


def _stairs(b):
    b.walk(b.rng.uniform(10, 30), intensity=1.4, heel_mg=b.heel_mg)


def _sit_at_desk(b, hard=False):
    rng = b.rng
    if hard:  # drops into the chair
        b.turn_to(-rng.uniform(10, 25), rng.uniform(-5, 5), 0.6)
        b.impact(rng.uniform(1500, 3000))
        b.rest(rng.uniform(5, 120), fidget_every_s=20, fidget_deg=9)
    else:
        b.turn_to(-rng.uniform(10, 25), rng.uniform(-5, 5), 1.2, jolt_mg=250)
        b.rest(rng.uniform(300, 1800), fidget_every_s=40, fidget_deg=9)
    b.turn_to(0, 0, 1.2, jolt_mg=300)                                     # stands up


def _armchair(b):
    """A break in an armchair: dropping into it and leaning far back."""
    rng = b.rng
    b.turn_to(-rng.uniform(10, 20), rng.uniform(-5, 5), 0.6)
    b.impact(rng.uniform(1500, 3000))
    b.turn_to(-rng.uniform(25, 50), rng.uniform(-8, 8), 1.5)
    b.rest(rng.uniform(60, 600), fidget_every_s=30, fidget_deg=8)
    b.turn_to(10, 0, 1.2, jolt_mg=300)                                    # pushes up
    b.turn_to(0, 0, 0.8)


def _bench_work(b):
    """Standing at a bench, bent over it a little, shifting now and then."""
    rng = b.rng
    b.turn_to(rng.uniform(10, 35), rng.uniform(-8, 8), 1.0)
    b.rest(rng.uniform(60, 900), fidget_every_s=30, fidget_deg=8)
    b.turn_to(0, 0, 1.0)


def _kneel(b):
    """Kneeling to work low down, leaning forward."""
    rng = b.rng
    b.turn_to(rng.uniform(30, 45), rng.uniform(-10, 10), 1.5, jolt_mg=300)
    b.rest(rng.uniform(30, 300), fidget_every_s=20, fidget_deg=8)
    b.turn_to(0, 0, 1.5, jolt_mg=300)


def _bend(b):
    """Stopping and bending from the hips to pick something up or reach
    under a bench; as deep as SisFall's bends (D16: 23-106 degrees at the
    waist, 10th-90th percentile)."""
    rng = b.rng
    b.rest(rng.uniform(0, 1.5))
    b.turn_to(rng.uniform(40, 110), rng.uniform(-10, 10), rng.uniform(1.0, 2.0))
    b.rest(rng.uniform(1, 5), breath_deg=0.5)
    b.turn_to(0, 0, 1.5)


def _put_down(b):
    """The device taken off and left on a table for a break, then clipped on again."""
    rng = b.rng
    b.turn_to(rng.choice((90, -90)), 0, 2.0, jolt_mg=200)
    b.rest(rng.uniform(60, 900), breath_deg=0.0)
    b.turn_to(0, 0, 2.0, jolt_mg=200)


SHIFT_ACTIVITIES = (
    # (name, weight, what the body does)
    ("walk", 30, _walk_on),
    ("stairs", 5, _stairs),
    ("desk", 8, _sit_at_desk),
    ("drop into a chair", 4, lambda b: _sit_at_desk(b, hard=True)),
    ("armchair", 2, _armchair),
    ("bench work", 10, _bench_work),
    ("kneel", 3, _kneel),
    ("bend", 8, _bend),
    ("jump", 1, _jump),
    ("stumble", 2, _stumble),
    ("put down", 2, _put_down),
)


def mounting(seed):
    """How wearer `seed` clips the device on: (yaw, pitch, roll) in degrees."""
    rng = random.Random("mounting/%s" % seed)
    return rng.uniform(-180, 180), rng.uniform(-30, 30), rng.uniform(-180, 180)


def shift(seed=0, hours=8.0, orientation=None):
    """One wearer's shift of daily activity, as (name, samples) segments in
    order; together they last `hours`. The wearer (mounting, gait, whether
    their heel strikes read as impacts) is drawn from `seed`; `orientation`
    overrides the mounting. Starts with a walk, as a shift does."""
    rng = random.Random(seed)
    b = _Body(rng.random(), mounting(seed) if orientation is None else orientation)
    b.heel_mg = rng.uniform(0, 2600)  # many wearers' steps read as impacts at the waist
    names = [a[0] for a in SHIFT_ACTIVITIES]
    weights = [a[1] for a in SHIFT_ACTIVITIES]
    doings = dict((a[0], a[2]) for a in SHIFT_ACTIVITIES)
    total = int(hours * 3600 * RATE_HZ)
    done = 0
    name = "walk"
    while done < total:
        b.samples = []
        doings[name](b)
        if name != "walk":
            b.walk(rng.uniform(5, 30), heel_mg=b.heel_mg)  # on to the next thing
        samples = b.samples[:total - done]
        done += len(samples)
        yield name, samples
        name = rng.choices(names, weights)[0]
