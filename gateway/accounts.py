"""Desk accounts' passwords: Argon2id for every new hash (users in the
database, `lonewatch password`), PBKDF2-SHA256 still accepted for operators
already written into a TOML config by earlier releases.

Checking a password is deliberately slow (tens of milliseconds of CPU and
64 MiB): the desk runs it on a thread of its own, never on the event loop
that runs the alarm timers.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SCHEME = "pbkdf2_sha256"
ARGON2 = "$argon2id$"
ITERATIONS = 200_000
ROLES = ("operator", "admin")
MIN_PASSWORD = 8

_argon2 = PasswordHasher()


def hash_password(password: str) -> str:
    return _argon2.hash(password)


def pbkdf2_hash(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The format of release 0.1.0's operator hashes; kept for those configs and their tests."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    if stored.startswith(ARGON2):
        try:
            return _argon2.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(candidate.hex(), digest)


@functools.cache
def _decoy() -> str:
    return hash_password(secrets.token_urlsafe(16))


def waste_a_check(password: str) -> None:
    """As long as checking a real account's password: an unknown name must not answer faster."""
    verify_password(password, _decoy())


def check_operator_hash(name: str, stored: str) -> str | None:
    """Why a configured hash is unusable, or None when it is fine."""
    if stored.startswith(ARGON2):
        try:
            _argon2.check_needs_rehash(stored)
        except (InvalidHashError, ValueError):
            return f"operator {name!r}: the argon2 hash cannot be read; make a new one with `lonewatch password`"
        return None
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != SCHEME or not parts[1].isdigit():
        return (f"operator {name!r}: password must be a {SCHEME}$... hash or an argon2id one ($argon2id$...); "
                f"make one with `lonewatch password`")
    return None


def check_new_password(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"use at least {MIN_PASSWORD} characters"
    return None


def check_user_name(name) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 64 or any(c.isspace() for c in name.strip()):
        raise ValueError(f"user name must be 1 to 64 characters without spaces, got {name!r}")
    return name.strip()


def add_user(store, name, role: str, password: str, now: float, by: str) -> None:
    """In the caller's transaction. ValueError for a taken name, an unknown role or a short password."""
    name = check_user_name(name)
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    problem = check_new_password(password)
    if problem:
        raise ValueError(f"password: {problem}")
    if store.get_user(name) is not None:
        raise ValueError(f"user {name!r} already exists")
    store.add_user(name, role, hash_password(password), now)
    store.audit(now, by, "user_added", f"{name} ({role})")


def change_password(store, name, password: str, now: float, by: str) -> None:
    if store.get_user(name) is None:
        raise ValueError(f"no user {name!r}")
    problem = check_new_password(password)
    if problem:
        raise ValueError(f"password: {problem}")
    store.set_user_password(name, hash_password(password), now)
    store.audit(now, by, "user_password_changed", name)


def disable_user(store, name, now: float, by: str) -> None:
    if store.get_user(name) is None:
        raise ValueError(f"no user {name!r}")
    store.set_user_disabled(name, now)
    store.audit(now, by, "user_disabled", name)
