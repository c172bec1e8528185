"""External notification channels used by gateway.routing.

Each channel is an immutable config object with `send(notification)`, which
makes one attempt and raises DeliveryError on failure; the Router owns the
timeouts, retries and dead letters so every channel behaves the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


class DeliveryError(Exception):
    """One failed attempt; `permanent` means retrying cannot help (e.g. HTTP 401)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Notification:
    """What every channel delivers: one event of one incident."""

    delivery_id: str  # the same across retries, so receivers can drop duplicates
    event: str
    tier: int
    incident: dict
    gateway_time: float

    def as_dict(self) -> dict:
        return {
            "v": 1,
            "delivery_id": self.delivery_id,
            "event": self.event,
            "tier": self.tier,
            "gateway_time": self.gateway_time,
            "incident": self.incident,
        }

    def to_json(self) -> bytes:
        # default=str: incident values the gateway did not make JSON-ready
        # (datetime, Path) are still delivered rather than failing the alert.
        return json.dumps(self.as_dict(), separators=(",", ":"), sort_keys=True, default=str).encode()


def number(where: str, spec: dict, key: str, default, lo, hi=None, integer=False):
    value = spec.get(key, default)
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < lo or (hi is not None and value > hi):
        span = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{where} {key} must be {kind} {span}, got {value!r}")
    return value


class RetryPolicy:
    """Exponential backoff shared by all channels: backoff_s, 2x, 4x ... capped."""

    max_attempts: int
    backoff_s: float
    backoff_max_s: float

    def backoff(self, failed_attempts: int) -> float:
        return min(self.backoff_s * 2 ** (failed_attempts - 1), self.backoff_max_s)
