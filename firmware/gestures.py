# Button gestures from raw press/release edges. Pure logic (no hardware): the
# caller samples the pin and passes ticks_ms, so CPython tests can drive it.
#
#   PRESS  - every press, at once (cancels a pre-alarm without waiting)
#   PANIC  - held >= hold_ms, or `presses` presses within window_ms
#   and, once the window from the first press has passed, what the presses
#   in it meant. A press is short, or LONG when released after _LONG_MS and
#   before hold_ms:
#   SINGLE - one press, short or long: nothing (never an alarm)
#   two presses: short+short check_in, long+short session_start,
#                long+long session_extend, short+long session_end
#   more presses, fewer than `presses`: all short check_in, else nothing
# A sequence that sends an event is reported as that event's type (a str,
# which the app sends as it is: a name per gesture would cost the firmware's
# table of names a slot each); the others are ints.
from ticks import const, ticks_diff

PRESS = 1
SINGLE = 2
PANIC = 3
DOUBLE = "check_in"
# Shorter is a short press: a tap, however firm, lasts well under this, and
# a long press is still far from the hold that raises panic.
_LONG_MS = const(600)
# Two presses, by bit: 1 the first was long, 2 the second was long.
_PAIRS = const(("check_in", "session_start", "session_end", "session_extend"))
# Returned while the button is idle (100 times a second): nothing allocated.
# Shared, so callers only read it.
NOTHING = []


class Gestures:
    def __init__(self, hold_ms=2000, presses=3, window_ms=2000):
        self.hold_ms = hold_ms
        self.presses = presses
        self.window_ms = window_ms
        self.down = False
        self.down_at = 0
        self.held = False  # this press already raised PANIC
        self.count = 0
        self.first_at = 0
        self.longs = 0  # bit n: press n of the sequence was long

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
                self.longs = 0
            self.count += 1
            if self.count >= self.presses:
                self.count = 0
                self.held = True  # the release of this press starts nothing
                out.append(PANIC)
        elif not pressed and self.down:
            self.down = False
            if not self.held and ticks_diff(now, self.down_at) >= _LONG_MS:
                self.longs |= 1 << (self.count - 1)
        if self.down and not self.held and ticks_diff(now, self.down_at) >= self.hold_ms:
            self.held = True
            self.count = 0
            out.append(PANIC)
        if self.count and not self.down and ticks_diff(now, self.first_at) >= self.window_ms:
            if self.count == 2:
                out.append(_PAIRS[self.longs])
            elif self.count == 1 or self.longs:
                out.append(SINGLE)
            else:
                out.append(DOUBLE)
            self.count = 0
        return out
