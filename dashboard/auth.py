"""Who is logged in to the desk, and who may try again.

Sessions live on the server: the cookie is a random token, so logging out
(or an admin disabling the account) revokes it at once. A session ends after
IDLE_S without a request unless a live page of it is open: the board watches
a quiet night without anyone touching it, and must not log itself out then.

Failed logins are counted per address and per name; after FREE_FAILURES in
WINDOW_S each further attempt waits twice as long as the one before, up to
MAX_LOCK_S, and is refused before any password is checked (a refusal costs
no hashing, so a flood cannot use the throttle to load the machine).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

SESSION_S = 12 * 3600  # one shift, however active
IDLE_S = 30 * 60
FREE_FAILURES = 5
WINDOW_S = 15 * 60
MAX_LOCK_S = 15 * 60
MAX_TRACKED = 10_000  # addresses and names remembered; the oldest go first


@dataclass
class Session:
    token: str
    name: str
    role: str
    created: float
    last_seen: float
    live_pages: int = 0
    sockets: set = field(default_factory=set)


class Sessions:
    def __init__(self, idle_s: float = IDLE_S):
        self.idle_s = idle_s
        self._by_token: dict[str, Session] = {}

    def issue(self, name: str, role: str, now: float | None = None) -> Session:
        now = time.time() if now is None else now
        session = Session(secrets.token_urlsafe(32), name, role, now, now)
        self._by_token[session.token] = session
        return session

    def get(self, token: str | None, now: float | None = None) -> Session | None:
        """The live session of this cookie, touched; None if unknown, revoked or expired."""
        now = time.time() if now is None else now
        session = self._by_token.get(token or "")
        if session is None:
            return None
        idle = now - session.last_seen > self.idle_s and not session.live_pages
        if idle or now - session.created > SESSION_S:
            del self._by_token[session.token]
            return None
        session.last_seen = now
        return session

    def revoke(self, token: str) -> Session | None:
        return self._by_token.pop(token, None)

    def revoke_user(self, name: str) -> list[Session]:
        gone = [s for s in self._by_token.values() if s.name == name]
        for session in gone:
            del self._by_token[session.token]
        return gone


class Throttle:
    def __init__(self):
        self._failures: dict[tuple, list[float]] = {}

    def wait_s(self, keys, now: float) -> float:
        """Seconds before any of these keys may try again; 0 when they may now."""
        longest = 0.0
        for key in keys:
            recent = [t for t in self._failures.get(key, ()) if now - t < WINDOW_S]
            over = len(recent) - FREE_FAILURES
            if over >= 0:
                lock = min(MAX_LOCK_S, 2.0 ** over)
                longest = max(longest, recent[-1] + lock - now)
        return max(0.0, longest)

    def failed(self, keys, now: float) -> bool:
        """Count a failure; True when it is the one that starts throttling a key."""
        starts = False
        for key in keys:
            times = [t for t in self._failures.pop(key, ()) if now - t < WINDOW_S]
            self._failures[key] = times + [now]  # re-inserted: the dict's order is the age of last use
            starts |= len(times) + 1 == FREE_FAILURES
        while len(self._failures) > MAX_TRACKED:
            del self._failures[next(iter(self._failures))]
        return starts

    def succeeded(self, keys) -> None:
        for key in keys:
            self._failures.pop(key, None)
