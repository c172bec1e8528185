"""Webhook channel: a signed JSON POST per notification.

Signature (docs/routing.md has the receiver's recipe):
    X-Lonewatch-Timestamp: <unix seconds>
    X-Lonewatch-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
The timestamp is inside the signed material, so a captured request cannot be
replayed later than the receiver's tolerance window. Each attempt is signed
afresh; X-Lonewatch-Delivery stays the same across retries for deduplication.

The body's incident carries `worker` ({id, name, phone, note} of whoever wore
the device when the alarm was raised) or null when nobody was assigned: a
receiver must treat null as "find out who it is", not as "nobody at risk".
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from gateway.channels import DeliveryError, Notification, RetryPolicy, number

KEYS = ("type", "url", "secret", "timeout_s", "max_attempts", "backoff_s", "backoff_max_s")
MIN_SECRET_LEN = 16
# Worth retrying: the receiver is overloaded, restarting or timed out. Any
# other non-2xx (401 bad secret, 404 wrong url) needs a human, not a retry.
RETRY_STATUSES = frozenset({408, 425, 429})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass
class WebhookChannel(RetryPolicy):
    name: str
    url: str
    secret: str = field(repr=False)
    timeout_s: float = 5.0
    max_attempts: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    kind: str = field(default="webhook", init=False)
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)

    async def send(self, notification: Notification) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body = notification.to_json()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "lonewatch-gateway",
            "X-Lonewatch-Event": notification.event,
            "X-Lonewatch-Delivery": notification.delivery_id,
            "X-Lonewatch-Timestamp": timestamp,
            "X-Lonewatch-Signature": sign(self.secret, timestamp, body),
        }
        try:
            async with self._session.post(self.url, data=body, headers=headers, allow_redirects=False) as resp:
                if 200 <= resp.status < 300:
                    return
                text = (await resp.text(errors="replace"))[:200]
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        retry = resp.status >= 500 or resp.status in RETRY_STATUSES
        raise DeliveryError(f"HTTP {resp.status}: {text}", permanent=not retry)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def parse_webhook_channel(where: str, name: str, spec: dict) -> WebhookChannel:
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(KEYS)}")
    url = spec.get("url")
    parsed = URL(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{where} url must be http(s)://host/..., got {url!r}")
    secret = spec.get("secret")
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LEN:
        raise ValueError(f"{where} secret (the HMAC-SHA256 key) must be a string of at least {MIN_SECRET_LEN} characters")
    return WebhookChannel(
        name=name,
        url=url,
        secret=secret,
        timeout_s=number(where, spec, "timeout_s", 5.0, 0.1),
        max_attempts=number(where, spec, "max_attempts", 5, 1, 100, integer=True),
        backoff_s=number(where, spec, "backoff_s", 1.0, 0),
        backoff_max_s=number(where, spec, "backoff_max_s", 60.0, 0),
    )
