"""E-mail channel: one plain-text message per notification, sent with aiosmtplib.

The text is written for someone woken at night: what happened, to whom,
where, when, and what to do next.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from contract.vocabulary import label_of
from gateway.channels import DeliveryError, Notification, RetryPolicy, number

KEYS = (
    "type", "host", "port", "from", "to", "username", "password", "tls",
    "timeout_s", "max_attempts", "backoff_s", "backoff_max_s",
)
TLS_MODES = {"starttls": 587, "implicit": 465, "none": 25}  # mode -> default port

ACTION = {
    "panic": "The wearer pressed the panic button. Call them now; if they do not answer, "
    "send help to the location above.",
    "man_down": "The wearable detected a possible fall or no movement: the wearer may be injured "
    "or unconscious. Call them now; if they do not answer, send help at once.",
    "overdue": "The worker did not check in before their lone-work session was due. Call them; "
    "if they do not answer, send someone to check on them.",
    "technical": "The device has a fault or has lost contact, so the worker may not be protected. "
    "Contact the worker by phone, then fix or replace the device.",
}


def _utc(t) -> str:
    if isinstance(t, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))
    return str(t) if t else "unknown"


def _where(incident: dict) -> str:
    place = f"site {incident.get('site')}"
    location = incident.get("location")
    if isinstance(location, dict) and location:
        parts = [f"{k} {v}" for k, v in location.items()]
        return f"{place}, {', '.join(parts)}"
    return f"{place} (no location reported with the alarm)"


def _worker_line(inc: dict) -> list[str]:
    """Who to call. Absent from incidents the store did not read (it always names one or None)."""
    if "worker" not in inc:
        return []
    worker = inc["worker"]
    if worker is None:
        return [f"Worker:   NO WORKER ASSIGNED to {inc.get('device')}: find out who wears it"]
    line = f"Worker:   {worker['name']}, phone {worker['phone']}"
    return [line] + ([f"Note:     {worker['note']}"] if worker.get("note") else [])


def subject(n: Notification) -> str:
    inc = n.incident
    what = label_of(str(inc.get("type")), inc.get("cause"))
    device = inc.get("device")
    if inc.get("registered") is False:
        device = f"{device} UNREGISTERED"
    if "worker" in inc:
        device = f"{inc['worker']['name']} ({device})" if inc["worker"] else f"{device} NO WORKER ASSIGNED"
    event = f"escalated, tier {n.tier}" if n.event == "escalated" else n.event
    return f"[lonewatch] {what} {device} {inc.get('site')} — {event}"


def body(n: Notification) -> str:
    inc = n.incident
    kind = inc.get("type")
    registered = (
        "registered" if inc.get("registered", True)
        else "NOT REGISTERED with this gateway: treat it as a real alarm until proven otherwise"
    )
    lines = [
        subject(n).removeprefix("[lonewatch] "),
        "",
        f"What:     {str(kind).replace('_', ' ')} alarm"
        + (f", cause {inc['cause']}" if inc.get("cause") else "")
        + f" (priority {inc.get('priority')})",
        *([f"Summary:  {inc['summary']}"] if inc.get("summary") else []),
        *_worker_line(inc),
        f"Device:   {inc.get('device')} ({registered})",
        f"Where:    {_where(inc)}",
        f"When:     raised {_utc(inc.get('raised_at'))}; this notice sent {_utc(n.gateway_time)}",
        f"Incident: {inc.get('id')} (alarm {inc.get('alarm_id')}, state {inc.get('state')})",
        "",
    ]
    if n.event in ("raised", "escalated"):
        if n.event == "escalated":
            lines.append(f"Nobody has acknowledged this alarm yet; you are escalation tier {n.tier}.")
        lines += [
            "What to do:",
            ACTION.get(kind, "Contact the worker now."),
            "Then acknowledge the incident on the security desk dashboard so that",
            "escalation stops and the wearer is told help is coming.",
        ]
    elif n.event == "acknowledged":
        who = inc.get("acknowledged_by") or "an operator"
        lines.append(f"Acknowledged by {who} at {_utc(inc.get('acknowledged_at'))}. No action needed from you.")
    else:
        who = inc.get("resolved_by") or "an operator"
        reason = inc.get("resolution") or "not given"
        lines.append(f"Resolved by {who} at {_utc(inc.get('resolved_at'))}, reason: {reason}. No action needed.")
        if inc.get("note"):
            lines.append(f"Note: {inc['note']}")
    return "\n".join(lines) + "\n"


def build_message(n: Notification, sender: str, to: tuple[str, ...]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject(n)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(n.gateway_time, usegmt=True)
    msg["Message-ID"] = make_msgid(idstring=n.delivery_id, domain="lonewatch")
    if n.incident.get("priority") == "critical" and n.event in ("raised", "escalated"):
        msg["X-Priority"] = "1"
        msg["Importance"] = "high"
    msg.set_content(body(n))
    return msg


@dataclass
class EmailChannel(RetryPolicy):
    name: str
    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 587
    tls: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 15.0
    max_attempts: int = 4
    backoff_s: float = 5.0
    backoff_max_s: float = 120.0
    kind: str = field(default="email", init=False)

    async def send(self, notification: Notification) -> None:
        msg = build_message(notification, self.sender, self.to)
        try:
            await aiosmtplib.send(
                msg,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.tls == "implicit",
                start_tls=self.tls == "starttls",
                timeout=self.timeout_s,
            )
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx is a definite refusal (bad address, auth); 4xx is "try later".
            raise DeliveryError(f"SMTP {exc.code}: {exc.message}", permanent=exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Nothing to release: each message uses its own SMTP session."""


def _address(where: str, key: str, value) -> str:
    if not isinstance(value, str) or "@" not in value or any(c in value for c in "\r\n,"):
        raise ValueError(f"{where} {key} must be one e-mail address, got {value!r}")
    return value


def parse_email_channel(where: str, name: str, spec: dict) -> EmailChannel:
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(KEYS)}")
    host = spec.get("host")
    if not isinstance(host, str) or not host:
        raise ValueError(f"{where} host must be the SMTP server's name, got {host!r}")
    tls = spec.get("tls", "starttls")
    if tls not in TLS_MODES:
        raise ValueError(f"{where} tls must be one of {', '.join(TLS_MODES)}, got {tls!r}")
    to = spec.get("to")
    if not isinstance(to, list) or not to:
        raise ValueError(f"{where} to must be a non-empty list of e-mail addresses, got {to!r}")
    username, password = spec.get("username"), spec.get("password")
    if (username is None) != (password is None):
        raise ValueError(f"{where} username and password go together; set both or neither")
    for key, value in (("username", username), ("password", password)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{where} {key} must be a string")
    return EmailChannel(
        name=name,
        host=host,
        sender=_address(where, "from", spec.get("from")),
        to=tuple(_address(where, f"to[{i}]", a) for i, a in enumerate(to)),
        port=number(where, spec, "port", TLS_MODES[tls], 1, 65535, integer=True),
        tls=tls,
        username=username,
        password=password,
        timeout_s=number(where, spec, "timeout_s", 15.0, 0.1),
        max_attempts=number(where, spec, "max_attempts", 4, 1, 100, integer=True),
        backoff_s=number(where, spec, "backoff_s", 5.0, 0),
        backoff_max_s=number(where, spec, "backoff_max_s", 120.0, 0),
    )
