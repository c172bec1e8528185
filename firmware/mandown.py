# Man-down detection from a body-worn 3-axis accelerometer, fed one 50 Hz
# sample at a time (integer milli-g). Pure logic: runs under MicroPython and
# CPython. The algorithm, its parameters and its blind spots are explained in
# docs/mandown.md; keep the two in step.
#
# Per sample only a few integer sums are updated (no allocation); everything
# else runs once per 0.5 s block.
import math

NONE = 0
FALL = 1
NO_MOTION = 2
TILT = 3
CLEARED = 4
NOT_WORN = 5
WORN = 6
NAMES = ("none", "fall", "no_motion", "tilt", "cleared", "not_worn", "worn")
# The events that may mean the wearer is down: each starts the pre-alarm.
DOWN = (FALL, NO_MOTION, TILT)

RATE_HZ = 50
BLOCK = 25  # samples per analysis block (0.5 s)
BLOCKS_PER_S = RATE_HZ // BLOCK
# A fall ends in the impact: in the block after the impact's own (ending 0.5-1 s
# after it) the trunk is down. A footstep is an impact too, and someone who
# sits down or bends after walking, even at the last step, or tries to get
# up and drops back, turns later.
LAND_BLOCKS = 1
HISTORY = 10  # blocks of posture kept to find where a fall started (5 s)
# While walking, the posture over walk_s stays within this (about 17 degrees;
# gait moves the 0.5 s means ~90 mg, a slow slide to the floor far more).
WALK_STEADY_MG = 300
# Steady shaking far from the known upright is more likely someone moving on
# the floor than walking; only a long walk there (longer than the tilt alarm
# takes) re-teaches upright, for a device clipped on another way mid-shift.
WALK_NEAR_COS = math.cos(math.radians(35))
WALK_RELEARN_EXTRA_S = 15

DEFAULTS = {
    # Fall: an impact, then the wearer still and down within fall_window_s.
    "impact_g": 1.6,                # peak |a| that counts as an impact
    "fall_window_s": 8,             # impact -> still and down must happen within this
    "fall_still_s": 1.5,            # how long the wearer must be still after a firm impact
    "firm_impact_g": 2.5,           # after a softer impact than this, stillness
    "soft_fall_still_s": 4,         # must last this long instead
    "lying_deg": 45,                # trunk angle from the learned upright that means lying
    "posture_change_deg": 60,       # how far the trunk must have turned in the fall
    "hard_impact_g": 3.0,           # after an impact this hard, turning
    "hard_posture_change_deg": 50,  # this far is enough, even if not lying
    "landing_deg": 30,              # turned this far in the block after the impact's (0.5-1 s after)
    "still_mg": 80,                 # rms motion below this is "still"
    # Long rules for a wearer who goes down without an impact.
    "no_motion_s": 60,
    "tilt_deg": 60,
    "tilt_s": 30,
    # Device put down: stillness finer than a living body produces.
    "not_worn_mg": 6,
    "not_worn_s": 20,
    # Walking teaches the detector which way is up for this mounting.
    "walk_min_mg": 100,
    "walk_max_mg": 900,
    "walk_s": 3,
    # Moving again for this long (and upright, if known) clears an alert.
    "clear_s": 3,
}

# Detector states.
ARMED = 0      # watching for falls, stillness and tilt
ALERT = 1      # an event was reported; waiting for the wearer to recover
PUT_DOWN = 2   # device lying on a surface, not on a body


def validate(config):
    """DEFAULTS overridden by config (the device config's "mandown" object)."""
    params = dict(DEFAULTS)
    if config is None:
        return params
    if not isinstance(config, dict):
        raise ValueError("mandown config must be a JSON object, not %r" % (config,))
    for key in config:
        if key not in DEFAULTS:
            raise ValueError("mandown config: unknown parameter %r (known: %s)"
                             % (key, ", ".join(sorted(DEFAULTS))))
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError("mandown config: %s must be a positive number, not %r" % (key, value))
        params[key] = value
    for key in ("lying_deg", "posture_change_deg", "hard_posture_change_deg", "tilt_deg",
                "landing_deg"):
        if params[key] >= 180:
            raise ValueError("mandown config: %s must be below 180 degrees, not %r"
                             % (key, params[key]))
    for key in ("firm_impact_g", "hard_impact_g"):
        if params[key] < params["impact_g"]:
            raise ValueError("mandown config: %s must not be below impact_g" % key)
    if params["walk_min_mg"] >= params["walk_max_mg"]:
        raise ValueError("mandown config: walk_min_mg must be below walk_max_mg")
    if params["not_worn_mg"] >= params["still_mg"]:
        raise ValueError("mandown config: not_worn_mg must be below still_mg")
    if params["walk_s"] * BLOCKS_PER_S >= HISTORY:
        raise ValueError("mandown config: walk_s must be below %d s" % (HISTORY // BLOCKS_PER_S))
    if params["not_worn_s"] >= min(params["tilt_s"], params["no_motion_s"]):
        raise ValueError("mandown config: not_worn_s must be below tilt_s and no_motion_s,"
                         " or a device put down raises a man-down first")
    if params["fall_still_s"] > params["soft_fall_still_s"]:
        raise ValueError("mandown config: fall_still_s must not exceed soft_fall_still_s")
    if params["soft_fall_still_s"] >= params["fall_window_s"]:
        raise ValueError("mandown config: soft_fall_still_s must be below fall_window_s")
    return params


def _blocks(seconds):
    return max(1, int(seconds * BLOCKS_PER_S + 0.5))


def _cosine(ax, ay, az, bx, by, bz):
    # Square roots taken apart: the product of the two squared norms would not
    # fit a small int on a 32-bit port.
    na = ax * ax + ay * ay + az * az
    nb = bx * bx + by * by + bz * bz
    if na == 0 or nb == 0:
        return 1.0
    return (ax * bx + ay * by + az * bz) / (math.sqrt(na) * math.sqrt(nb))


class Detector:
    def __init__(self, config=None):
        self.configure(config)
        # Gravity with the wearer upright, learned from walking; 0s until then.
        self.up_x = self.up_y = self.up_z = 0
        self._walk_run = 0
        self._away_run = 0
        # Per-sample accumulators of the current block.
        self._n = 0
        self._sx = self._sy = self._sz = 0
        self._ss = 0
        self._peak2 = 0
        # Mean of the previous block: motion is measured against it.
        self._mx = self._my = self._mz = 0
        # Ring of the last HISTORY block means (x, y, z interleaved).
        self._history = [0] * (3 * HISTORY)
        self._history_at = 0
        self._primed = False
        self.reset()

    def configure(self, config=None):
        """DEFAULTS overridden by config, as validate() takes them; ValueError
        if bad. Also for settings changed over the air: the learned upright
        and what the detector has seen are kept, and on a torn heap nothing
        big is allocated (a new detector needs a block for its attributes)."""
        p = validate(config)
        self.params = p
        g = 1000
        self._impact2 = int(p["impact_g"] * g) ** 2
        self._firm2 = int(p["firm_impact_g"] * g) ** 2
        self._hard2 = int(p["hard_impact_g"] * g) ** 2
        self._still2 = p["still_mg"] ** 2
        self._not_worn2 = p["not_worn_mg"] ** 2
        self._walk_min2 = p["walk_min_mg"] ** 2
        self._walk_max2 = p["walk_max_mg"] ** 2
        self._cos_lying = math.cos(math.radians(p["lying_deg"]))
        self._cos_change = math.cos(math.radians(p["posture_change_deg"]))
        self._cos_hard_change = math.cos(math.radians(p["hard_posture_change_deg"]))
        self._cos_tilt = math.cos(math.radians(p["tilt_deg"]))
        self._cos_landing = math.cos(math.radians(p["landing_deg"]))
        self._fall_window = _blocks(p["fall_window_s"])
        self._fall_still = _blocks(p["fall_still_s"])
        self._soft_fall_still = _blocks(p["soft_fall_still_s"])
        self._no_motion = _blocks(p["no_motion_s"])
        self._tilt = _blocks(p["tilt_s"])
        self._not_worn = _blocks(p["not_worn_s"])
        self._walk = _blocks(p["walk_s"])
        self._clear = _blocks(p["clear_s"])
        self._relearn = self._tilt + _blocks(WALK_RELEARN_EXTRA_S)

    def reset(self):
        """Re-arm after an alarm was raised or cancelled. Keeps the learned upright."""
        self.state = ARMED
        self._since_impact = -1
        self._impact_peak2 = 0
        self._ref_x = self._ref_y = self._ref_z = 0
        self._still_run = 0
        self._dead_run = 0
        self._tilt_run = 0
        self._move_run = 0

    @property
    def upright_known(self):
        return self.up_x != 0 or self.up_y != 0 or self.up_z != 0

    @property
    def upright(self):
        """Gravity (milli-g) with the wearer upright, as learned; None until learned."""
        return (self.up_x, self.up_y, self.up_z) if self.upright_known else None

    def assume_upright(self, x, y, z):
        """Start from an upright learned elsewhere, e.g. from the same wearer's walk."""
        self.up_x, self.up_y, self.up_z = int(x), int(y), int(z)

    def feed(self, x, y, z):
        """One 50 Hz sample in milli-g; returns an event code (NONE most of the time)."""
        self._sx += x
        self._sy += y
        self._sz += z
        dx = x - self._mx
        dy = y - self._my
        dz = z - self._mz
        self._ss += dx * dx + dy * dy + dz * dz
        m2 = x * x + y * y + z * z
        if m2 > self._peak2:
            self._peak2 = m2
        self._n += 1
        if self._n < BLOCK:
            return NONE
        return self._end_block()

    def _end_block(self):
        mx = self._sx // BLOCK
        my = self._sy // BLOCK
        mz = self._sz // BLOCK
        # Mean squared deviation from the previous block's mean: vibration
        # within the block plus any change of posture since the last one.
        motion2 = self._ss // BLOCK
        peak2 = self._peak2
        self._n = 0
        self._sx = self._sy = self._sz = 0
        self._ss = 0
        self._peak2 = 0
        self._mx, self._my, self._mz = mx, my, mz
        if not self._primed:
            # The first block has no predecessor to measure motion against.
            self._primed = True
            for _ in range(HISTORY):
                self._remember(mx, my, mz)
            return NONE
        if self.state == ARMED:
            self._learn_upright(mx, my, mz, motion2)
        if self.state == PUT_DOWN:
            event = self._while_put_down(motion2)
        elif self.state == ALERT:
            event = self._while_alert(mx, my, mz, motion2)
        else:
            event = self._while_armed(mx, my, mz, motion2, peak2)
        self._remember(mx, my, mz)
        return event

    def _remember(self, mx, my, mz):
        h = self._history
        i = self._history_at
        h[i] = mx
        h[i + 1] = my
        h[i + 2] = mz
        self._history_at = (i + 3) % len(h)

    def _posture_before(self):
        # Where a fall started: the most upright posture of the last few
        # seconds (a fainting wearer slumps for a while before falling), or
        # with no upright known yet, the oldest one.
        h = self._history
        at = self._history_at
        if self.upright_known:
            best = -2.0
            for i in range(0, len(h), 3):
                c = _cosine(h[i], h[i + 1], h[i + 2], self.up_x, self.up_y, self.up_z)
                if c > best:
                    best, at = c, i
        return h[at], h[at + 1], h[at + 2]

    def _learn_upright(self, mx, my, mz, motion2):
        # Walking shakes the device in a band no sitting or lying person
        # sustains; averaged over a step, the block mean is then gravity with
        # the trunk upright.
        if self._walk_min2 <= motion2 <= self._walk_max2:
            self._walk_run += 1
        else:
            self._walk_run = 0
            self._away_run = 0
            return
        if self._walk_run < self._walk:
            return
        h = self._history
        i = (self._history_at - 3 * self._walk) % len(h)
        dx, dy, dz = mx - h[i], my - h[i + 1], mz - h[i + 2]
        if dx * dx + dy * dy + dz * dz > WALK_STEADY_MG * WALK_STEADY_MG:
            return  # shaking while the posture changes: not walking upright
        if self.upright_known and _cosine(
                mx, my, mz, self.up_x, self.up_y, self.up_z) < WALK_NEAR_COS:
            self._away_run += 1
            if self._away_run >= self._relearn:
                self._away_run = 0
                self.up_x, self.up_y, self.up_z = mx, my, mz
            return
        self._away_run = 0
        if not self.upright_known:
            self.up_x, self.up_y, self.up_z = mx, my, mz
        else:
            self.up_x += (mx - self.up_x) >> 3
            self.up_y += (my - self.up_y) >> 3
            self.up_z += (mz - self.up_z) >> 3

    def _tilted(self, mx, my, mz, cos_limit):
        return self.upright_known and _cosine(
            mx, my, mz, self.up_x, self.up_y, self.up_z) < cos_limit

    def _while_armed(self, mx, my, mz, motion2, peak2):
        still = motion2 < self._still2
        self._still_run = self._still_run + 1 if still else 0
        if motion2 < self._not_worn2:
            self._dead_run += 1
            if self._dead_run >= self._not_worn:
                self.state = PUT_DOWN
                self._since_impact = -1
                return NOT_WORN
        else:
            self._dead_run = 0

        if peak2 >= self._impact2:
            if self._since_impact < 0:
                self._ref_x, self._ref_y, self._ref_z = self._posture_before()
                self._impact_peak2 = 0
            if peak2 > self._impact_peak2:
                self._impact_peak2 = peak2
            self._since_impact = 0
            self._still_run = 0
        elif self._since_impact >= 0:
            self._since_impact += 1
            if self._since_impact == LAND_BLOCKS and _cosine(
                    mx, my, mz, self._ref_x, self._ref_y, self._ref_z) > self._cos_landing:
                # Just after the impact the trunk has not gone down
                # from where it was: not a landing. Forget it, its strength
                # and where it started.
                self._since_impact = -1
            elif self._since_impact > self._fall_window:
                self._since_impact = -1
            elif self._still_run >= self._still_needed() and motion2 >= self._not_worn2:
                # Still, but not the dead stillness of a dropped device.
                if self._fell_over(mx, my, mz):
                    return self._alert(FALL)

        if self._still_run >= self._no_motion:
            return self._alert(NO_MOTION)
        if self._tilted(mx, my, mz, self._cos_tilt):
            self._tilt_run += 1
            if self._tilt_run >= self._tilt:
                return self._alert(TILT)
        else:
            self._tilt_run = 0
        return NONE

    def _still_needed(self):
        # The softer the impact, the more the stillness after it has to show.
        if self._impact_peak2 >= self._firm2:
            return self._fall_still
        return self._soft_fall_still

    def _fell_over(self, mx, my, mz):
        rx, ry, rz = self._ref_x, self._ref_y, self._ref_z
        if self._tilted(rx, ry, rz, self._cos_lying):
            return False  # already lying before the impact: rolling over in bed
        turn = _cosine(mx, my, mz, rx, ry, rz)
        if self.upright_known and self._impact_peak2 >= self._firm2:
            # After a firm impact the turn through the fall counts from the
            # posture of the last few seconds farthest from the present one:
            # a fall from a reclined seat starts there, not from the most
            # upright block, which may be the trunk passing upright on its
            # way down. A soft impact is weaker evidence: only the turn from
            # the posture before counts.
            h = self._history
            for i in range(0, len(h), 3):
                c = _cosine(mx, my, mz, h[i], h[i + 1], h[i + 2])
                if c < turn:
                    turn = c
        if self._impact_peak2 >= self._hard2 and turn < self._cos_hard_change and (
                not self.upright_known or self._tilted(mx, my, mz, self._cos_hard_change)):
            # Thrown down hard, maybe ending up sitting on the floor, leaning
            # back; far from upright too, since dropping back into a chair
            # from a forward lean turns as far but ends sitting.
            return True
        # Turned through the fall (slumping back in a deep chair turns less)
        # and lying now.
        return turn < self._cos_change and (
            not self.upright_known or self._tilted(mx, my, mz, self._cos_lying))

    def _alert(self, event):
        self.state = ALERT
        self._since_impact = -1
        self._move_run = 0
        return event

    def _while_alert(self, mx, my, mz, motion2):
        if motion2 >= self._still2 and not self._tilted(mx, my, mz, self._cos_tilt):
            self._move_run += 1
            if self._move_run >= self._clear:
                self.reset()
                return CLEARED
        else:
            self._move_run = 0
        return NONE

    def _while_put_down(self, motion2):
        if motion2 >= self._still2:
            self.reset()
            return WORN
        return NONE
