"""The auth use cases on the memory adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hub.adapters.jwt_tokens import JwtAccessTokens
from hub.adapters.memory.ratelimit import MemoryRateLimiter
from hub.adapters.memory.users import (
    MemoryAccounts,
    MemoryRefreshTokens,
    MemoryRegistrar,
    MemoryUsers,
)
from hub.adapters.passwords import Argon2Hasher
from hub.domain.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    RateLimited,
    RefreshTokenReused,
    WeakPassword,
)
from hub.domain.users import Role
from hub.services.auth import AuthConfig, AuthService, LoginLimits

PASSWORD = "Str0ng-Enough!"


@dataclass
class FakeClock:
    # Starts at the real time: pyjwt checks exp and iat against the wall clock.
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def accounts() -> MemoryAccounts:
    return MemoryAccounts()


@pytest.fixture
def auth(clock: FakeClock, accounts: MemoryAccounts) -> AuthService:
    users = MemoryUsers()
    return AuthService(
        users=users,
        registrar=MemoryRegistrar(users, accounts),
        refresh_tokens=MemoryRefreshTokens(),
        # Cheapest argon2 settings: these tests are about the flow, not the hash cost.
        hasher=Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),
        access_tokens=JwtAccessTokens(
            "k" * 40, ttl=timedelta(minutes=15), issuer="hub", audience="a"
        ),
        limiter=MemoryRateLimiter(),
        clock=clock,
        config=AuthConfig(
            paper_cash=Decimal("100000.00"),
            currency="USD",
            refresh_ttl=timedelta(days=30),
            admin_emails=frozenset({"boss@example.com"}),
            limits=LoginLimits(per_email=3, per_client=10),
        ),
    )


async def test_register_opens_funded_account(auth: AuthService, accounts: MemoryAccounts) -> None:
    user, account = await auth.register("  Alice@Example.COM ", PASSWORD, "Alice")
    assert user.email == "alice@example.com" and user.role is Role.USER
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert account.cash == Decimal("100000.00") and account.buying_power == Decimal("100000.00")
    assert await accounts.for_user(user.id) == account


async def test_register_rejects_duplicates_bad_email_and_weak_password(auth: AuthService) -> None:
    await auth.register("a@example.com", PASSWORD, None)
    with pytest.raises(EmailTaken):
        await auth.register("A@example.com", PASSWORD, None)
    with pytest.raises(InvalidInput):
        await auth.register("not-an-email", PASSWORD, None)
    with pytest.raises(WeakPassword):
        await auth.register("b@example.com", "weak", None)


async def test_admin_emails_get_admin_role(auth: AuthService) -> None:
    user, _ = await auth.register("boss@example.com", PASSWORD, None)
    assert user.role is Role.ADMIN


async def test_login_and_authenticate(auth: AuthService) -> None:
    user, _ = await auth.register("a@example.com", PASSWORD, None)
    pair = await auth.login("A@example.com", PASSWORD, "1.2.3.4")
    assert auth.authenticate(pair.access_token).user_id == user.id
    assert pair.expires_in == 900


async def test_wrong_password_and_unknown_email_look_the_same(auth: AuthService) -> None:
    await auth.register("a@example.com", PASSWORD, None)
    with pytest.raises(InvalidCredentials) as wrong:
        await auth.login("a@example.com", "Wrong-pass-1!", "1.2.3.4")
    with pytest.raises(InvalidCredentials) as unknown:
        await auth.login("ghost@example.com", PASSWORD, "1.2.3.4")
    assert wrong.value.detail == unknown.value.detail


async def test_refresh_rotates(auth: AuthService) -> None:
    await auth.register("a@example.com", PASSWORD, None)
    first = await auth.login("a@example.com", PASSWORD, "ip")
    second = await auth.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    third = await auth.refresh(second.refresh_token)
    assert third.refresh_token not in {first.refresh_token, second.refresh_token}


async def test_reused_refresh_token_revokes_the_family(auth: AuthService) -> None:
    await auth.register("a@example.com", PASSWORD, None)
    stolen = await auth.login("a@example.com", PASSWORD, "ip")
    legit = await auth.refresh(stolen.refresh_token)
    with pytest.raises(RefreshTokenReused):
        await auth.refresh(stolen.refresh_token)
    # The legitimate holder's newer token is dead too: the session is over.
    with pytest.raises(InvalidToken):
        await auth.refresh(legit.refresh_token)


async def test_other_sessions_survive_a_reuse(auth: AuthService) -> None:
    await auth.register("a@example.com", PASSWORD, None)
    phone = await auth.login("a@example.com", PASSWORD, "ip")
    laptop = await auth.login("a@example.com", PASSWORD, "ip")
    await auth.refresh(phone.refresh_token)
    with pytest.raises(RefreshTokenReused):
        await auth.refresh(phone.refresh_token)
    assert (await auth.refresh(laptop.refresh_token)).access_token


async def test_expired_refresh_token(auth: AuthService, clock: FakeClock) -> None:
    await auth.register("a@example.com", PASSWORD, None)
    pair = await auth.login("a@example.com", PASSWORD, "ip")
    clock.at += timedelta(days=31)
    with pytest.raises(InvalidToken, match="expired"):
        await auth.refresh(pair.refresh_token)


async def test_logout_revokes_session_and_is_idempotent(auth: AuthService) -> None:
    await auth.register("a@example.com", PASSWORD, None)
    pair = await auth.login("a@example.com", PASSWORD, "ip")
    await auth.logout(pair.refresh_token)
    await auth.logout(pair.refresh_token)
    await auth.logout("never-issued")
    with pytest.raises(InvalidToken):
        await auth.refresh(pair.refresh_token)


async def test_failed_logins_per_email_are_limited(auth: AuthService) -> None:
    await auth.register("a@example.com", PASSWORD, None)
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            await auth.login("a@example.com", "Wrong-pass-1!", "ip")
    with pytest.raises(RateLimited) as info:
        await auth.login("a@example.com", PASSWORD, "ip")  # even the right password waits
    assert info.value.retry_after > 0


async def test_attempts_per_client_are_limited(auth: AuthService) -> None:
    await auth.register("a@example.com", PASSWORD, None)
    for _ in range(10):
        await auth.login("a@example.com", PASSWORD, "9.9.9.9")
    with pytest.raises(RateLimited):
        await auth.login("a@example.com", PASSWORD, "9.9.9.9")
    assert await auth.login("a@example.com", PASSWORD, "8.8.8.8")


async def test_registrations_per_client_are_limited_before_any_work(
    auth: AuthService, accounts: MemoryAccounts
) -> None:
    for i in range(20):  # LoginLimits' default: 20 per client per 10 minutes
        await auth.register(f"u{i}@example.com", PASSWORD, None, "7.7.7.7")
    with pytest.raises(RateLimited) as info:
        await auth.register("one-more@example.com", PASSWORD, None, "7.7.7.7")
    assert info.value.retry_after > 0
    with pytest.raises(RateLimited):  # refused before validation: no hash, no row
        await auth.register("not-an-email", "weak", None, "7.7.7.7")
    await auth.register("elsewhere@example.com", PASSWORD, None, "6.6.6.6")
    with pytest.raises(InvalidCredentials):
        await auth.login("one-more@example.com", PASSWORD, "5.5.5.5")
