"""Request and response bodies of the REST API. They are the OpenAPI schemas too."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from hub.domain.accounts import Account
from hub.domain.money import to_cents
from hub.domain.users import User

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


class AccountOut(msgspec.Struct):
    id: UUID
    cash: Decimal
    reserved_cash: Decimal
    buying_power: Decimal
    equity: Decimal
    currency: str
    status: Literal["active"]
    created_at: datetime

    @classmethod
    def of(cls, account: Account, positions_value: Decimal = Decimal(0)) -> AccountOut:
        return cls(
            id=account.id,
            cash=to_cents(account.cash),
            reserved_cash=to_cents(account.reserved_cash),
            buying_power=to_cents(account.buying_power),
            equity=to_cents(account.cash + positions_value),
            currency=account.currency,
            status="active",
            created_at=account.created_at,
        )


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
    account: AccountOut


class Health(msgspec.Struct):
    status: str


class DependencyState(msgspec.Struct, omit_defaults=True):
    status: Literal["up", "down"]
    error: str | None = None


class Readiness(msgspec.Struct):
    status: Literal["ready", "not_ready"]
    mode: str
    checks: dict[str, DependencyState]
