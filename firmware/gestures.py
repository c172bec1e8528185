# Button gestures from raw press/release edges. Pure logic (no hardware): the
# caller samples the pin and passes ticks_ms, so CPython tests can drive it.
#
#   PRESS  - every press, at once (cancels a pre-alarm without waiting)
#   PANIC  - held >= hold_ms, or `presses` presses within window_ms
#   DOUBLE - exactly two presses in the window (check-in)
#   SINGLE - one short press in the window (never an alarm)
from ticks import ticks_diff

NONE = 0
PRESS = 1
SINGLE = 2
DOUBLE = 3
PANIC = 4
NAMES = ("none", "press", "single", "double", "panic")
# Returned while the button is idle (100 times a second): nothing allocated.
# Shared, so callers only read it.
NOTHING = []


class Gestures:
    def __init__(self, hold_ms=2000, presses=3, window_ms=2000):
        self.hold_ms = hold_ms
        self.presses = presses
        self.window_ms = window_ms
        self.reset()

    def reset(self):
        self.down = False
        self.down_at = 0
        self.held = False  # this press already raised PANIC by holding
        self.count = 0
        self.first_at = 0

    def update(self, pressed, now):
        """Feed the debounced button level; returns a list of gestures."""
        if not pressed and not self.down and not self.count:
            return NOTHING
        out = []
        if pressed and not self.down:
            self.down = True
            self.down_at = now
            self.held = False
            out.append(PRESS)
            if self.count == 0:
                self.first_at = now
            self.count += 1
            if self.count >= self.presses:
                self.count = 0
                self.held = True  # the release of this press starts nothing
                out.append(PANIC)
        elif not pressed and self.down:
            self.down = False
        if self.down and not self.held and ticks_diff(now, self.down_at) >= self.hold_ms:
            self.held = True
            self.count = 0
            out.append(PANIC)
        if self.count and not self.down and ticks_diff(now, self.first_at) >= self.window_ms:
            out.append(SINGLE if self.count == 1 else DOUBLE)
            self.count = 0
        return out
