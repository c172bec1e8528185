# The wearer-facing alarm state machine. Pure logic: inputs are method calls
# with ticks_ms, outputs are action tuples the app carries out:
#   ("alarm", rid, type, cause)     write an alarm to the outbox
#   ("event", rid, type, cause, countdown_s)
#   ("feedback", pattern_name)
#
# IDLE --man_down--> PRE_ALARM --press--> IDLE            (event pre_alarm_cancelled)
#                    PRE_ALARM --timeout--> ALARM          (alarm man_down)
# any  --panic-->    ALARM                                  (alarm panic, at once)
# ALARM --delivered--> DELIVERED --help_coming--> HELP_COMING --resolved--> IDLE
import patterns
from ticks import ticks_diff

IDLE = "idle"
PRE_ALARM = "pre_alarm"
ALARM = "alarm"
DELIVERED = "delivered"
HELP_COMING = "help_coming"
ACTIVE = (ALARM, DELIVERED, HELP_COMING)
# What tick() returns on almost every one of its 50 calls a second: nothing
# allocated. Shared, so callers only read it.
NOTHING = []


class AlarmStates:
    def __init__(self, prealarm_s, new_id):
        self.prealarm_s = prealarm_s
        self.new_id = new_id  # allocates DEVICE:BOOT:SEQ ids
        self.state = IDLE
        self.cause = None
        self.started = 0
        self.active_id = None  # the alarm the desk feedback refers to

    def _go(self, state):
        print("state %s -> %s" % (self.state, state))
        self.state = state

    def _raise(self, atype, cause):
        rid = self.new_id()
        self.active_id = rid
        self._go(ALARM)
        return [("alarm", rid, atype, cause), ("feedback", patterns.ALARM_QUEUED)]

    def panic(self):
        # Always raises, even during another alarm: a wearer pressing again is
        # a new fact for the desk, and duplicates become one incident there.
        return self._raise("panic", None)

    def man_down(self, cause, now):
        if self.state != IDLE:
            return []  # already counting down or already alarmed
        self.cause = cause
        self.started = now
        self._go(PRE_ALARM)
        return [("event", self.new_id(), "pre_alarm_started", cause, self.prealarm_s)]

    def press(self):
        if self.state != PRE_ALARM:
            return []
        self._go(IDLE)
        return [("event", self.new_id(), "pre_alarm_cancelled", self.cause, None),
                ("feedback", patterns.CANCELLED)]

    def tick(self, now):
        if self.state == PRE_ALARM and ticks_diff(now, self.started) >= self.prealarm_s * 1000:
            return self._raise("man_down", self.cause)
        return NOTHING

    def command(self, cmd, ref):
        """Desk feedback for our active alarm; stale refs are ignored."""
        if ref is None or ref != self.active_id or self.state not in ACTIVE:
            return []
        if cmd == "delivered" and self.state == ALARM:
            self._go(DELIVERED)
            return [("feedback", patterns.DELIVERED)]
        if cmd == "help_coming" and self.state != HELP_COMING:
            self._go(HELP_COMING)
            return [("feedback", patterns.HELP_COMING)]
        if cmd == "resolved":
            self._go(IDLE)
            self.active_id = None
            return [("feedback", patterns.RESOLVED)]
        return []
