"""The broker's password file and ACL entries of enrolled devices.

The password file is mosquitto_passwd's format (`user:$7$101$salt$hash`,
PBKDF2-SHA512 with 101 rounds, what mosquitto 2.0's mosquitto_passwd writes),
made here so that no password passes through a command line, and so both
files are replaced atomically. Each device gets its own ACL block: it may
publish only under its own site and id and read only its own command topic
(deploy/mosquitto.acl, docs/mosquitto.md). After a change mosquitto needs a
reload (SIGHUP) to read them."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from contract.protocol import TOPIC_ROOT

UPLINK = ("alarm", "event", "heartbeat", "status")
_ROUNDS = 101


def new_password() -> str:
    return secrets.token_urlsafe(24)


def password_line(user: str, password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ROUNDS)
    return "%s:$7$%d$%s$%s" % (user, _ROUNDS, base64.b64encode(salt).decode(), base64.b64encode(digest).decode())


def acl_block(site: str, device: str) -> list[str]:
    base = "%s/%s/%s/" % (TOPIC_ROOT, site, device)
    return (["# device %s (lonewatch provision)" % device, "user %s" % device]
            + ["topic write %s%s" % (base, kind) for kind in UPLINK]
            + ["topic read %scmd" % base, ""])


def _replace(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def users(passwd: Path) -> set[str]:
    if not passwd.exists():
        return set()
    return {line.split(":", 1)[0] for line in passwd.read_text().splitlines() if ":" in line}


def set_password(passwd: Path, user: str, password: str) -> None:
    lines = [line for line in (passwd.read_text().splitlines() if passwd.exists() else [])
             if line.split(":", 1)[0] != user]
    lines.append(password_line(user, password))
    _replace(passwd, "\n".join(lines) + "\n", 0o640)


def _without_device(lines: list[str], device: str) -> list[str]:
    """The ACL without `device`'s block: from its `user` line to the next
    blank or `user` line, with the comment line written above it."""
    out, skipping = [], False
    for line in lines:
        words = line.split()
        if not words:
            skipping = False
        elif words[:1] == ["user"]:
            skipping = words[1:] == [device]
            if skipping and out and out[-1] == "# device %s (lonewatch provision)" % device:
                out.pop()
        if not skipping:
            out.append(line)
    return out


def set_acl(acl: Path, site: str, device: str) -> None:
    if not acl.exists():
        raise FileNotFoundError("no ACL file %s (start from deploy/mosquitto.acl)" % acl)
    lines = _without_device(acl.read_text().splitlines(), device)
    while lines and not lines[-1].strip():
        lines.pop()
    _replace(acl, "\n".join(lines + [""] + acl_block(site, device)), 0o644)


def acl_site(acl: Path, device: str) -> str | None:
    """The site `device` is bound to in the ACL, or None."""
    if not acl.exists():
        return None
    user = None
    for line in acl.read_text().splitlines():
        words = line.split()
        if words[:1] == ["user"]:
            user = words[1] if len(words) > 1 else None
        elif user == device and words[:2] == ["topic", "read"] and words[2].endswith("/%s/cmd" % device):
            return words[2].split("/")[2]
    return None
