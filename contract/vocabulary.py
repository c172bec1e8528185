"""The words of lonewatch, each defined once: alarm types and causes, how
urgent each is, the states of incidents and lone-work sessions, and how an
incident can be resolved, with the labels people read.

The protocol validates against these, the gateway stores them, mail and the
command line print their labels, and the desk page receives `for_the_page()`
with its snapshot instead of keeping its own copy.
"""

ALARM_TYPES = ("panic", "man_down", "overdue", "technical")
MAN_DOWN_CAUSES = ("fall", "no_motion", "tilt")
# A person in danger. Any of these from one device while one is open is the
# same emergency, so it attaches to the open incident.
PERSON_TYPES = ("panic", "man_down", "overdue")

# Most urgent first.
PRIORITIES = ("critical", "warning")
PRIORITY_OF_TYPE = {"panic": "critical", "man_down": "critical", "overdue": "critical", "technical": "warning"}
# Technical causes that may hide a person in danger rank with panic: a
# message on an alarm topic that could not be read may be a real alarm.
# So does a device that goes quiet while its wearer works alone: nobody else would notice.
CRITICAL_TECHNICAL_CAUSES = ("unreadable_alarm", "lone_work_lost")

TYPE_LABELS = {"panic": "PANIC", "man_down": "MAN DOWN", "overdue": "OVERDUE", "technical": "Technical"}
CAUSE_LABELS = {
    "fall": "fall",
    "no_motion": "no motion",
    "tilt": "lying tilted",
    "offline": "switched off or out of range",
    "lost_contact": "lost contact",
    "lone_work_lost": "lost contact during lone work",
    "never_seen": "never heard from since enrolled",
    "low_battery": "low battery",
    "unreadable_alarm": "unreadable alarm",
    "sensor_missing": "no motion sensor: man-down is off",
    "sensor_failed": "motion sensor failed: man-down is off",
    "flash_failed": "storage full or failing: have the device replaced",
}

# raised --acknowledge--> acknowledged --resolve--> resolved; raised --resolve--> resolved
INCIDENT_STATES = ("raised", "acknowledged", "resolved")
INCIDENT_TRANSITIONS = {
    ("raised", "acknowledge"): "acknowledged",
    ("raised", "resolve"): "resolved",
    ("acknowledged", "resolve"): "resolved",
}
RESOLUTIONS = {
    "genuine": "Genuine: help was needed",
    "false_alarm": "False alarm",
    "test": "Test",
    "other": "Other",
}

# active --check in--> active; active --due passes--> overdue; either --end--> ended
SESSION_STATES = ("active", "overdue", "ended")
SESSION_OPEN_STATES = ("active", "overdue")
SESSION_ENDINGS = {"checked_out": "checked out", "ended_by_desk": "ended by the desk",
                   "replaced": "replaced by a new session"}


def priority_of(alarm_type: str, cause: str | None) -> str:
    if alarm_type == "technical" and cause in CRITICAL_TECHNICAL_CAUSES:
        return "critical"
    return PRIORITY_OF_TYPE[alarm_type]


def label_of(alarm_type: str, cause: str | None) -> str:
    """"MAN DOWN (fall)", "Technical (lost contact)", "PANIC"."""
    text = TYPE_LABELS.get(alarm_type, alarm_type)
    if cause:
        text += f" ({CAUSE_LABELS.get(cause, cause.replace('_', ' '))})"
    return text


def for_the_page() -> dict:
    """What the desk page needs to name and order things, sent with its snapshot."""
    return {
        "type_labels": TYPE_LABELS,
        "cause_labels": CAUSE_LABELS,
        "priorities": list(PRIORITIES),
        "person_types": list(PERSON_TYPES),
        "resolutions": RESOLUTIONS,
    }
