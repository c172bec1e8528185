# Feedback patterns the wearer feels, hears and sees. Pure data: each pattern
# is a tuple of steps (buzzer_hz, vibration, led, duration_ms); 0 Hz is
# silence. One-shot patterns play once; REPEATING ones loop while their state
# lasts (pre-alarm, no connection, bad config).
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

_BEEP = 2700  # piezo resonance; loudest for the least current
_LOW = 1800

PATTERNS = {
    # long buzz + vibration: "your alarm is raised and saved"
    ALARM_QUEUED: ((_BEEP, 1, 1, 800), (0, 0, 0, 200)),
    # two short pulses: "the desk has it"
    DELIVERED: ((0, 1, 1, 150), (0, 0, 0, 150), (0, 1, 1, 150), (0, 0, 0, 100)),
    # three long pulses with rising tone: "help is coming"
    HELP_COMING: ((_LOW, 1, 1, 400), (0, 0, 1, 200), (_BEEP, 1, 1, 400), (0, 0, 1, 200),
                  (_BEEP, 1, 1, 600), (0, 0, 0, 100)),
    RESOLVED: ((0, 1, 0, 300), (0, 0, 0, 100)),
    # urgent: beep + vibration every second until pressed or timed out
    PRE_ALARM: ((_BEEP, 1, 1, 300), (0, 0, 0, 200), (_BEEP, 1, 1, 300), (0, 0, 0, 200)),
    CANCELLED: ((_LOW, 0, 1, 100), (0, 0, 0, 100)),
    CHECK_IN: ((0, 1, 1, 100), (0, 0, 0, 100)),
    SESSION_DUE: ((0, 1, 0, 500), (0, 0, 0, 300), (0, 1, 0, 500), (0, 0, 0, 100)),
    # gentle and rare: a short LED blink every 3 s, no sound
    NO_CONNECTION: ((0, 0, 1, 50), (0, 0, 0, 2950)),
    LOW_BATTERY: ((_LOW, 0, 1, 80), (0, 0, 0, 120), (_LOW, 0, 1, 80), (0, 0, 0, 100)),
    PING: ((0, 0, 1, 100), (0, 0, 0, 100)),
    # fast LED blink and short chirp: the device will not run until fixed
    BAD_CONFIG: ((_BEEP, 0, 1, 100), (0, 0, 0, 100), (0, 0, 1, 100), (0, 0, 0, 700)),
}
REPEATING = (PRE_ALARM, NO_CONNECTION, BAD_CONFIG)


def steps(name, silent=False):
    """The steps of a pattern; silent mode keeps vibration and LED only."""
    pattern = PATTERNS[name]
    if not silent:
        return pattern
    return tuple((0, vib, led, ms) for _, vib, led, ms in pattern)
