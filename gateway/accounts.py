"""Desk operators' passwords: hashed with PBKDF2-SHA256 (`lonewatch password`
makes one for the config), checked at login and when the config is loaded.

The accounts belong to the base station, not to the web page: the gateway's
configuration holds them and validates them at start-up.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SCHEME = "pbkdf2_sha256"
ITERATIONS = 200_000


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
