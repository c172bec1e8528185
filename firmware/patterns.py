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

PATTERNS = {
    # long buzz + vibration: "your alarm is raised and saved"
    ALARM_QUEUED: bytes([_HI, _BOTH, 80, _, 0, 20]),
    # two short pulses: "the desk has it"
    DELIVERED: bytes([_, _BOTH, 15, _, 0, 15, _, _BOTH, 15, _, 0, 10]),
    # three long pulses, rising tone: "help is coming"
    HELP_COMING: bytes([_LO, _BOTH, 40, _, _LED, 20, _HI, _BOTH, 40, _, _LED, 20, _HI, _BOTH, 60, _, 0, 10]),
    RESOLVED: bytes([_, _VIB, 30, _, 0, 10]),
    # urgent: beep + vibration twice a second until pressed or timed out
    PRE_ALARM: bytes([_HI, _BOTH, 30, _, 0, 20]),
    CANCELLED: bytes([_LO, _LED, 10, _, 0, 10]),
    CHECK_IN: bytes([_, _BOTH, 10, _, 0, 10]),
    SESSION_DUE: bytes([_, _VIB, 50, _, 0, 30, _, _VIB, 50, _, 0, 10]),
    # Lone-work sessions. A pattern named after an event is felt when that
    # event is queued; the names are the event types, which the firmware
    # holds anyway, so no name is added for them.
    # rising pair: "your lone work is registered"
    "session_start": bytes([_LO, _BOTH, 15, _, 0, 10, _HI, _BOTH, 30, _, 0, 10]),
    # three quick pulses: "more time"
    "session_extend": bytes([_HI, _BOTH, 10, _, 0, 8, _HI, _BOTH, 10, _, 0, 8, _HI, _BOTH, 10, _, 0, 10]),
    # falling pair: "checked out, nobody waits for you now"
    "session_end": bytes([_HI, _BOTH, 30, _, 0, 10, _LO, _BOTH, 15, _, 0, 10]),
    # short then long, no sound: "the desk registered lone work for you"
    "session": bytes([_, _VIB, 15, _, 0, 15, _, _VIB, 60, _, 0, 10]),
    # slow and low, until answered: "the desk is missing you, press"
    "overdue": bytes([_LO, _BOTH, 60, _, 0, 20, _LO, _BOTH, 60, _, 0, 100]),
    # gentle and rare: a short LED blink every 3 s, no sound
    NO_CONNECTION: bytes([_, _LED, 5, _, 0, 250, _, 0, 45]),
    LOW_BATTERY: bytes([_LO, _LED, 8, _, 0, 12, _LO, _LED, 8, _, 0, 10]),
    PING: bytes([_, _LED, 10, _, 0, 10]),
    # fast LED blink and a chirp: the device will not run until fixed
    BAD_CONFIG: bytes([_HI, _LED, 10, _, 0, 10, _, _LED, 10, _, 0, 70]),
}


def steps(name, silent=False):
    """Yield (buzzer_hz, vibration, led, ms); silent mode drops the buzzer."""
    p = PATTERNS[name]
    for i in range(0, len(p), 3):
        yield (0 if silent else _TONE_HZ[p[i]]), p[i + 1] >> 1, p[i + 1] & 1, p[i + 2] * 10
