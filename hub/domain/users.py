"""Users, roles and the email rules of the original server (regex, at most 254 characters)."""

from __future__ import annotations

import enum
import re
from datetime import datetime
from uuid import UUID

import msgspec

from hub.domain.errors import InvalidInput

_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$")
MAX_EMAIL_LENGTH = 254


class Role(enum.StrEnum):
    USER = "user"
    ADMIN = "admin"


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    email: str
    name: str
    password_hash: str
    role: Role
    created_at: datetime


def normalize_email(raw: str) -> str:
    """Trim and lower-case an email, or raise InvalidInput naming what is wrong."""
    email = raw.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidInput(f"email must be at most {MAX_EMAIL_LENGTH} characters", field="email")
    if not _EMAIL.match(email):
        raise InvalidInput("email is not a valid address", field="email")
    return email
