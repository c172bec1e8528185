# Feedback patterns the wearer feels, hears and sees. Each pattern is a run
# of 3-byte steps (tone, outputs, duration in 10 ms), kept as bytes because
# tuples of tuples cost kilobytes of the ESP32's heap. One-shot patterns play
# once; REPEATING ones loop while their state lasts.
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

# tones
_ = 0     # silent
LO = 1    # 1800 Hz
HI = 2    # 2700 Hz, the piezo's resonance: loudest for the least current
TONE_HZ = (0, 1800, 2700)
# outputs
LED = 1
VIB = 2
BOTH = 3

PATTERNS = {
    # long buzz + vibration: "your alarm is raised and saved"
    ALARM_QUEUED: bytes((HI, BOTH, 80, _, 0, 20)),
    # two short pulses: "the desk has it"
    DELIVERED: bytes((_, BOTH, 15, _, 0, 15, _, BOTH, 15, _, 0, 10)),
    # three long pulses, rising tone: "help is coming"
    HELP_COMING: bytes((LO, BOTH, 40, _, LED, 20, HI, BOTH, 40, _, LED, 20, HI, BOTH, 60, _, 0, 10)),
    RESOLVED: bytes((_, VIB, 30, _, 0, 10)),
    # urgent: beep + vibration twice a second until pressed or timed out
    PRE_ALARM: bytes((HI, BOTH, 30, _, 0, 20)),
    CANCELLED: bytes((LO, LED, 10, _, 0, 10)),
    CHECK_IN: bytes((_, BOTH, 10, _, 0, 10)),
    SESSION_DUE: bytes((_, VIB, 50, _, 0, 30, _, VIB, 50, _, 0, 10)),
    # gentle and rare: a short LED blink every 3 s, no sound
    NO_CONNECTION: bytes((_, LED, 5, _, 0, 250, _, 0, 45)),
    LOW_BATTERY: bytes((LO, LED, 8, _, 0, 12, LO, LED, 8, _, 0, 10)),
    PING: bytes((_, LED, 10, _, 0, 10)),
    # fast LED blink and a chirp: the device will not run until fixed
    BAD_CONFIG: bytes((HI, LED, 10, _, 0, 10, _, LED, 10, _, 0, 70)),
}
REPEATING = (PRE_ALARM, NO_CONNECTION, BAD_CONFIG)


def steps(name, silent=False):
    """Yield (buzzer_hz, vibration, led, ms); silent mode drops the buzzer."""
    p = PATTERNS[name]
    for i in range(0, len(p), 3):
        yield (0 if silent else TONE_HZ[p[i]]), p[i + 1] >> 1, p[i + 1] & 1, p[i + 2] * 10
