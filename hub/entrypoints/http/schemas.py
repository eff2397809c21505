"""Request and response bodies of the REST API. They are the OpenAPI schemas too."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from hub.domain.users import User
from hub.services.views import AccountView

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, examples=["demo@hub.local"])]
# The policy's own 60-character maximum is checked by the domain (with a clear message); this
# bound only keeps absurd inputs away from argon2.
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
Name = Annotated[str, msgspec.Meta(max_length=200)]
Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class RegisterRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    name: Name | None = None


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Secret


class TokenResponse(msgspec.Struct):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: Literal["bearer"] = "bearer"


class UserOut(msgspec.Struct):
    id: UUID
    email: str
    name: str
    role: str
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(user.id, user.email, user.name, user.role.value, user.created_at)


class RegisterResponse(msgspec.Struct):
    user: UserOut
    account: AccountView


class Health(msgspec.Struct):
    status: str


class DependencyState(msgspec.Struct, omit_defaults=True):
    status: Literal["up", "down"]
    error: str | None = None


class Readiness(msgspec.Struct):
    status: Literal["ready", "not_ready"]
    mode: str
    checks: dict[str, DependencyState]
