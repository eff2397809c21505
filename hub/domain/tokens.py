"""Refresh tokens: opaque, stored only as a hash, rotated on every use, grouped in families.

A family is one login session. Presenting a refresh token that was already used means it was
stolen or replayed, so the whole family is revoked (OAuth 2.0 Security BCP, section 4.14).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from uuid import UUID

import msgspec


class RefreshToken(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    user_id: UUID
    family_id: UUID
    token_hash: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


def new_refresh_secret() -> str:
    """A 256-bit random secret, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_refresh_secret(secret: str) -> str:
    """SHA-256 is enough here: the secret has 256 bits of entropy, so no slow hash is needed."""
    return hashlib.sha256(secret.encode()).hexdigest()
