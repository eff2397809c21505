"""API keys: a public key id and a secret, for scripts and SDKs that cannot log in (the
Alpaca-compatible /v2 routes take them as `APCA-API-KEY-ID` and `APCA-API-SECRET-KEY`).

The secret is shown once, when the key is made, and stored only as a hash. It is 240 random
bits, so SHA-256 is the right hash (as for refresh tokens): a slow hash adds nothing against
guessing, and a fast one keeps the check on the request path cheap and off any thread pool.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from uuid import UUID

import msgspec

from hub.domain.errors import InvalidInput

MAX_KEYS_PER_USER = 10  # live (unrevoked) keys
MAX_NAME = 100
KEY_ID_PREFIX = "HK"  # Hub Key; Alpaca's are PK (paper) and AK (live), 20 characters long
_KEY_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # base32: no 0/O or 1/I to misread
_KEY_ID_LENGTH = 20


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    user_id: UUID
    name: str
    key_id: str  # public: names the key in headers and logs
    secret_hash: str  # hex SHA-256 of the secret
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def new_key_id() -> str:
    """A public key id: "HK" and 18 base32 characters (90 random bits: unique, not secret)."""
    tail = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(_KEY_ID_LENGTH - 2))
    return KEY_ID_PREFIX + tail


def looks_like_key_id(text: str) -> bool:
    """Whether `text` could be a key id at all: the cheap check before any lookup."""
    return (
        len(text) == _KEY_ID_LENGTH
        and text.startswith(KEY_ID_PREFIX)
        and all(c in _KEY_ID_ALPHABET for c in text[2:])
    )


def new_secret() -> str:
    """A 240-bit random secret, 40 URL-safe characters (as long as Alpaca's)."""
    return secrets.token_urlsafe(30)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(key: ApiKey, secret: str) -> bool:
    """Constant-time comparison of the hashes, so timing reveals nothing of the stored one."""
    return hmac.compare_digest(hash_secret(secret), key.secret_hash)


def clean_name(name: str) -> str:
    cleaned = name.strip()
    if not 0 < len(cleaned) <= MAX_NAME:
        raise InvalidInput(f"name must be 1 to {MAX_NAME} characters", field="name")
    return cleaned
