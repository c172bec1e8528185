"""The security desk's session cookie: HMAC-signed, carrying the operator's
name and an expiry, so the audit trail can say who acknowledged an alarm.
Passwords are checked by gateway.accounts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

SESSION_S = 12 * 3600  # one shift


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
