# Feedback patterns the wearer feels, hears and sees. Each pattern is a run
# of 3-byte steps (tone, outputs, duration in 10 ms), kept as bytes because
# tuples of tuples cost kilobytes of the ESP32's heap. One-shot patterns play
# once; the background ones (pre_alarm, overdue, no_connection, bad_config)
# loop while their state lasts.
from ticks import const

ALARM_QUEUED = "alarm_queued"
DELIVERED = "delivered"
HELP_COMING = "help_coming"
RESOLVED = "resolved"
PRE_ALARM = "pre_alarm"
CANCELLED = "cancelled"
CHECK_IN = "check_in"
SESSION_DUE = "session_due"
NO_CONNECTION = "no_connection"
LOW_BATTERY = "low_battery"
PING = "ping"
BAD_CONFIG = "bad_config"

# Tones and outputs are private constants: compiled in, no names kept.
# tones
_ = const(0)     # silent
_LO = const(1)   # 1800 Hz
_HI = const(2)   # 2700 Hz, the piezo's resonance: loudest for the least current
_TONE_HZ = const((0, 1800, 2700))
# outputs
_LED = const(1)
_VIB = const(2)
_BOTH = const(3)

# Every pattern's steps in one bytes object, in the order of PATTERNS, each
# run led by its number of steps: one allocation where a dict of bytes took
# one per pattern and the dict's own table.
PATTERNS = (
    ALARM_QUEUED, DELIVERED, HELP_COMING, RESOLVED, PRE_ALARM, CANCELLED, CHECK_IN, SESSION_DUE,
    "session_start", "session_extend", "session_end", "session", "overdue", NO_CONNECTION,
    LOW_BATTERY, PING, BAD_CONFIG,
)
_STEPS = bytes([
    # long buzz + vibration: "your alarm is raised and saved"
    2, _HI, _BOTH, 80, _, 0, 20,  # ALARM_QUEUED
    # two short pulses: "the desk has it"
    4, _, _BOTH, 15, _, 0, 15, _, _BOTH, 15, _, 0, 10,  # DELIVERED
    # three long pulses, rising tone: "help is coming"
    6, _LO, _BOTH, 40, _, _LED, 20, _HI, _BOTH, 40, _, _LED, 20, _HI, _BOTH, 60, _, 0, 10,  # HELP_COMING
    2, _, _VIB, 30, _, 0, 10,  # RESOLVED
    # urgent: beep + vibration twice a second until pressed or timed out
    2, _HI, _BOTH, 30, _, 0, 20,  # PRE_ALARM
    2, _LO, _LED, 10, _, 0, 10,  # CANCELLED
    2, _, _BOTH, 10, _, 0, 10,  # CHECK_IN
    4, _, _VIB, 50, _, 0, 30, _, _VIB, 50, _, 0, 10,  # SESSION_DUE
    # Lone-work sessions. A pattern named after an event is felt when that
    # event is queued; the names are the event types, which the firmware
    # holds anyway, so no name is added for them.
    # rising pair: "your lone work is registered"
    4, _LO, _BOTH, 15, _, 0, 10, _HI, _BOTH, 30, _, 0, 10,  # session_start
    # three quick pulses: "more time"
    6, _HI, _BOTH, 10, _, 0, 8, _HI, _BOTH, 10, _, 0, 8, _HI, _BOTH, 10, _, 0, 10,  # session_extend
    # falling pair: "checked out, nobody waits for you now"
    4, _HI, _BOTH, 30, _, 0, 10, _LO, _BOTH, 15, _, 0, 10,  # session_end
    # short then long, no sound: "the desk registered lone work for you"
    4, _, _VIB, 15, _, 0, 15, _, _VIB, 60, _, 0, 10,  # session
    # slow and low, until answered: "the desk is missing you, press"
    4, _LO, _BOTH, 60, _, 0, 20, _LO, _BOTH, 60, _, 0, 100,  # overdue
    # gentle and rare: a short LED blink every 3 s, no sound
    3, _, _LED, 5, _, 0, 250, _, 0, 45,  # NO_CONNECTION
    4, _LO, _LED, 8, _, 0, 12, _LO, _LED, 8, _, 0, 10,  # LOW_BATTERY
    2, _, _LED, 10, _, 0, 10,  # PING
    # fast LED blink and a chirp: the device will not run until fixed
    4, _HI, _LED, 10, _, 0, 10, _, _LED, 10, _, 0, 70,  # BAD_CONFIG
])


def steps(name, silent=False):
    """Yield (buzzer_hz, vibration, led, ms); silent mode drops the buzzer."""
    p = _STEPS
    i = 0
    for skip in range(PATTERNS.index(name)):
        i += 1 + 3 * p[i]
    for i in range(i + 1, i + 1 + 3 * p[i], 3):
        yield (0 if silent else _TONE_HZ[p[i]]), p[i + 1] >> 1, p[i + 1] & 1, p[i + 2] * 10
