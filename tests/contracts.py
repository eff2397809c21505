"""Contract suites every adapter of a port must pass: the memory twin in tests/unit, the real
service in tests/integration. A subclass provides the `ports` (or `limiter`) fixture."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from hub.domain.accounts import Account
from hub.domain.errors import EmailTaken
from hub.domain.tokens import RefreshToken
from hub.domain.users import Role, User
from hub.services.ports import (
    AccountRepository,
    RateLimiter,
    RefreshTokenRepository,
    UserAccountStore,
    UserRepository,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@dataclass
class Ports:
    users: UserRepository
    registrar: UserAccountStore
    tokens: RefreshTokenRepository
    accounts: AccountRepository


def make_user(email: str | None = None) -> User:
    return User(
        id=uuid.uuid4(),
        email=email or f"u{uuid.uuid4().hex[:12]}@example.com",
        name="Test",
        password_hash="$argon2id$fake",
        role=Role.USER,
        created_at=NOW,
    )


def make_account(user: User, cash: str = "100000.00") -> Account:
    return Account(
        id=uuid.uuid4(),
        user_id=user.id,
        cash=Decimal(cash),
        reserved_cash=Decimal("0.00"),
        currency="USD",
        created_at=NOW,
    )


def make_token(user: User, family: uuid.UUID | None = None, **kw: Any) -> RefreshToken:
    return RefreshToken(
        id=uuid.uuid4(),
        user_id=user.id,
        family_id=family or uuid.uuid4(),
        token_hash=uuid.uuid4().hex,
        created_at=NOW,
        expires_at=NOW + timedelta(days=1),
        **kw,
    )


class RepositoryContract:
    async def test_user_round_trip(self, ports: Ports) -> None:
        user = make_user()
        await ports.registrar.add_user_with_account(user, make_account(user))
        assert await ports.users.get(user.id) == user
        assert await ports.users.by_email(user.email) == user
        assert await ports.users.get(uuid.uuid4()) is None
        assert await ports.users.by_email("nobody@example.com") is None

    async def test_duplicate_email_writes_nothing(self, ports: Ports) -> None:
        user = make_user()
        await ports.registrar.add_user_with_account(user, make_account(user))
        twin = make_user(user.email)
        with pytest.raises(EmailTaken):
            await ports.registrar.add_user_with_account(twin, make_account(twin))
        assert await ports.users.get(twin.id) is None
        assert await ports.accounts.for_user(twin.id) is None

    async def test_account_keeps_decimal_cash(self, ports: Ports) -> None:
        user = make_user()
        await ports.registrar.add_user_with_account(user, make_account(user, "12345.67"))
        account = await ports.accounts.for_user(user.id)
        assert account is not None
        assert account.cash == Decimal("12345.67")
        assert isinstance(account.cash, Decimal)
        assert account.buying_power == Decimal("12345.67")

    async def test_set_role(self, ports: Ports) -> None:
        user = make_user()
        await ports.registrar.add_user_with_account(user, make_account(user))
        assert await ports.users.set_role(user.email, Role.ADMIN)
        fetched = await ports.users.get(user.id)
        assert fetched is not None and fetched.role is Role.ADMIN
        assert not await ports.users.set_role("ghost@example.com", Role.ADMIN)

    async def test_refresh_token_used_once(self, ports: Ports) -> None:
        user = make_user()
        await ports.registrar.add_user_with_account(user, make_account(user))
        token = make_token(user)
        await ports.tokens.add(token)
        first = await ports.tokens.use(token.token_hash, NOW)
        assert first is not None and first.used_at is None
        second = await ports.tokens.use(token.token_hash, NOW + timedelta(seconds=1))
        assert second is not None and second.used_at == NOW
        assert await ports.tokens.use("unknown", NOW) is None

    async def test_concurrent_use_has_one_winner(self, ports: Ports) -> None:
        user = make_user()
        await ports.registrar.add_user_with_account(user, make_account(user))
        token = make_token(user)
        await ports.tokens.add(token)
        results = await asyncio.gather(*(ports.tokens.use(token.token_hash, NOW) for _ in range(5)))
        fresh = [r for r in results if r is not None and r.used_at is None]
        assert len(fresh) == 1

    async def test_revoke_family_only_touches_that_family(self, ports: Ports) -> None:
        user = make_user()
        await ports.registrar.add_user_with_account(user, make_account(user))
        family = uuid.uuid4()
        a, b, other = make_token(user, family), make_token(user, family), make_token(user)
        for t in (a, b, other):
            await ports.tokens.add(t)
        await ports.tokens.revoke_family(family, NOW)
        for t, revoked in ((a, True), (b, True), (other, False)):
            seen = await ports.tokens.use(t.token_hash, NOW)
            assert seen is not None
            assert (seen.revoked_at is not None) is revoked


class RateLimiterContract:
    async def test_hit_allows_up_to_limit(self, limiter: RateLimiter) -> None:
        key = f"k{uuid.uuid4().hex}"
        assert [await limiter.hit(key, 3, 60) for _ in range(3)] == [None, None, None]
        retry = await limiter.hit(key, 3, 60)
        assert retry is not None and 0 < retry <= 60

    async def test_blocked_does_not_count(self, limiter: RateLimiter) -> None:
        key = f"k{uuid.uuid4().hex}"
        for _ in range(5):
            assert await limiter.blocked(key, 2) is None
        await limiter.hit(key, 2, 60)
        assert await limiter.blocked(key, 2) is None
        await limiter.hit(key, 2, 60)
        assert await limiter.blocked(key, 2) is not None

    async def test_window_expires(self, limiter: RateLimiter) -> None:
        key = f"k{uuid.uuid4().hex}"
        await limiter.hit(key, 1, 1)
        assert await limiter.hit(key, 1, 1) is not None
        await asyncio.sleep(2.1)
        assert await limiter.hit(key, 1, 1) is None

    async def test_keys_are_independent(self, limiter: RateLimiter) -> None:
        a, b = f"a{uuid.uuid4().hex}", f"b{uuid.uuid4().hex}"
        await limiter.hit(a, 1, 60)
        assert await limiter.hit(a, 1, 60) is not None
        assert await limiter.hit(b, 1, 60) is None
