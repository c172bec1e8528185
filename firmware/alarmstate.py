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
#
# and the wearer's lone-work session as the device knows it (Session, below).
import patterns
from gestures import PRESS
from ticks import const, ticks_add, ticks_diff

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
        """Desk feedback for our active alarm; stale refs are ignored. An
        alarm the gateway raised for the wearer (overdue, contact lost during
        lone work) is referred to by no id of ours (ours hold ':'): the wearer
        feels help coming or the stand-down, and the states stay as they are."""
        if ref is not None and ":" not in ref and cmd != DELIVERED:
            return [("feedback", cmd)]
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


# ticks_ms wraps: a deadline further than this cannot be timed on it. A
# reminder comes minutes before its deadline, never this far.
_LONGEST_MS = const(5 * 24 * 3600 * 1000)


class Session:
    """The gateway keeps the session and raises its overdue alarm at the
    deadline; the device learns of the session from the wearer's gestures
    and the gateway's commands, and prompts the wearer. After a reboot it
    knows of none until the next command.

    any --start, extend, check-in gesture, `session`--> active
    any --check-out gesture, `session_end`--> off
    active --`session_due` N > 0 (reminder)--> due, deadline now + N s
    due --check-in gesture--> active
    due --the deadline passes--> pre_alarm          (missed: pre-alarm pattern)
    any --`session_due` 0--> overdue                overdue pattern
    pre_alarm/overdue --press--> check_in           a check_in sent at once
    check_in --the press's gesture ends--> active   (a double press is not sent again)

    The states are names the firmware holds anyway (the two that play a
    pattern are named after it): every new name costs the table of names a
    slot, a string constant costs heap.

    A missed check-in never raises an alarm of its own: the gateway's comes
    at the deadline whatever the device's link or battery, and one from the
    device would be the same news twice. The desk checking in for the wearer
    (by phone, say) comes as `session`, its ending the session as
    `session_end`: either stops a prompt the wearer need no longer answer."""

    def __init__(self, new_id):
        self.new_id = new_id
        self.state = "off"

    def _go(self, state, name=None):
        """Into `state`; with the event `name` sent and felt."""
        print("session", state)
        self.state = state
        if name:
            return [("event", self.new_id(), name, None, None), ("feedback", name)]
        return NOTHING

    def update(self, g, alarm):
        """A gesture (gestures.py) while the alarm machine is in state
        `alarm`. Any press answers a missed check-in or an overdue session,
        at once. The end of a press sequence is a session gesture when it is
        an event type, and counts only in IDLE: during an alarm the button
        is the alarm's."""
        if g == PRESS:
            if self.state == "pre_alarm" or self.state == "overdue":
                return self._go("check_in", "check_in")
            return NOTHING
        if self.state == "check_in":
            self._go("active")
            if g == "check_in":
                return NOTHING  # the press that answered was its first
        if alarm != IDLE or type(g) is not str:
            return NOTHING
        return self._go("off" if g == "session_end" else "active", g)

    def command(self, cmd, due_in_s, now):
        """`session` (the desk registered, extended or checked in on one),
        `session_end` (the desk ended it) or `session_due`."""
        if cmd == "session":
            self._go("active")
        elif cmd == "session_end":
            self._go("off")
        elif due_in_s:
            self.due = ticks_add(now, min(due_in_s * 1000, _LONGEST_MS))
            self._go("due")
        else:
            return self._go("overdue")  # the background pattern says it, until answered
        return [("feedback", cmd)]

    def tick(self, now):
        """Called 50 times a second: the background pattern the session asks for, or None."""
        if self.state == "due" and ticks_diff(now, self.due) >= 0:
            self._go("pre_alarm")
        if self.state == "pre_alarm" or self.state == "overdue":
            return self.state
        return None
