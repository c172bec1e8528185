"""Operator passwords and the session cookie of the security desk.

Passwords are stored as PBKDF2-SHA256 hashes (`lonewatch password` makes
one); the session is an HMAC-signed cookie carrying the operator's name and
an expiry, so the audit trail can say who acknowledged an alarm.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

SCHEME = "pbkdf2_sha256"
ITERATIONS = 200_000
SESSION_S = 12 * 3600  # one shift


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(candidate.hex(), digest)


def check_operator_hash(name: str, stored: str) -> str | None:
    """Why a configured hash is unusable, or None when it is fine."""
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != SCHEME or not parts[1].isdigit():
        return (f"operator {name!r}: password must be a {SCHEME}$... hash; "
                f"make one with `lonewatch password`")
    return None


class Sessions:
    def __init__(self, secret: bytes | None = None):
        self._secret = secret or secrets.token_bytes(32)

    def _sign(self, data: bytes) -> str:
        return hmac.new(self._secret, data, hashlib.sha256).hexdigest()

    def issue(self, operator: str, now: float | None = None) -> str:
        expires = int((now or time.time()) + SESSION_S)
        data = base64.urlsafe_b64encode(f"{operator}|{expires}".encode())
        return f"{data.decode()}.{self._sign(data)}"

    def operator(self, cookie: str | None, now: float | None = None) -> str | None:
        if not cookie or "." not in cookie:
            return None
        data, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(self._sign(data.encode()), signature):
            return None
        try:
            operator, expires = base64.urlsafe_b64decode(data).decode().rsplit("|", 1)
            if int(expires) < (now or time.time()):
                return None
        except ValueError:
            return None
        return operator
