"""Register, log in, refresh and log out."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import structlog

from hub.domain.accounts import Account
from hub.domain.errors import (
    InvalidCredentials,
    InvalidToken,
    NotFound,
    RateLimited,
    RefreshTokenReused,
)
from hub.domain.passwords import check_password
from hub.domain.tokens import RefreshToken, hash_refresh_secret, new_refresh_secret
from hub.domain.users import Role, User, normalize_email
from hub.services.ports import (
    AccessClaims,
    AccessTokens,
    Clock,
    PasswordHasher,
    RateLimiter,
    RefreshTokenRepository,
    UserAccountStore,
    UserRepository,
)

log = structlog.get_logger("hub.auth")


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Failed logins per email, and all attempts per client address, in fixed windows; and
    registrations per client address (each costs an argon2 hash, so an unlimited register
    route is the cheapest way to burn the server's CPU)."""

    per_email: int = 5
    per_email_window_s: int = 900
    per_client: int = 60
    per_client_window_s: int = 60
    registrations_per_client: int = 20
    registrations_window_s: int = 600


@dataclass(frozen=True, slots=True)
class AuthConfig:
    paper_cash: Decimal
    currency: str
    refresh_ttl: timedelta
    admin_emails: frozenset[str]
    limits: LoginLimits


class AuthService:
    def __init__(
        self,
        *,
        users: UserRepository,
        registrar: UserAccountStore,
        refresh_tokens: RefreshTokenRepository,
        hasher: PasswordHasher,
        access_tokens: AccessTokens,
        limiter: RateLimiter,
        clock: Clock,
        config: AuthConfig,
        after_register: Callable[[User], Awaitable[None]] | None = None,
    ) -> None:
        self._users = users
        self._registrar = registrar
        self._refresh = refresh_tokens
        self._hasher = hasher
        self._access = access_tokens
        self._limiter = limiter
        self._clock = clock
        self._config = config
        self._after_register = after_register
        #: Called with the session (refresh-token family) id when logout or refresh-token reuse
        #: revokes it, e.g. to end the streams opened with its access tokens (bootstrap).
        self.revocation_listeners: list[Callable[[uuid.UUID], Awaitable[None]]] = []
        # Verified against when the email is unknown, so both paths cost one argon2 verify
        # and response time does not reveal which emails are registered (made at first use).
        self._dummy_hash: str | None = None

    async def register(
        self, email: str, password: str, name: str | None, client: str | None = None
    ) -> tuple[User, Account]:
        """`client` is the caller's address; its registrations are limited before any work."""
        if client is not None:
            limits = self._config.limits
            retry = await self._limiter.hit(
                f"register:client:{client}",
                limits.registrations_per_client,
                limits.registrations_window_s,
            )
            if retry is not None:
                raise RateLimited("too many registrations from this address", retry_after=retry)
        email = normalize_email(email)
        check_password(password)
        now = self._clock.now()
        role = Role.ADMIN if email in self._config.admin_emails else Role.USER
        user = User(
            id=uuid.uuid4(),
            email=email,
            name=(name or "").strip() or email.split("@", 1)[0],
            password_hash=await self._hasher.hash(password),
            role=role,
            created_at=now,
        )
        account = Account(
            id=uuid.uuid4(),
            user_id=user.id,
            cash=self._config.paper_cash,
            reserved_cash=Decimal(0),
            currency=self._config.currency,
            created_at=now,
        )
        await self._registrar.add_user_with_account(user, account)
        if self._after_register is not None:
            try:
                await self._after_register(user)
            except Exception as exc:
                # The user and account exist; a missing default watchlist is not worth a 500.
                log.warning("post-registration step failed", user_id=str(user.id), error=repr(exc))
        return user, account

    async def login(self, email: str, password: str, client: str) -> TokenPair:
        limits = self._config.limits
        retry = await self._limiter.hit(
            f"login:client:{client}", limits.per_client, limits.per_client_window_s
        )
        if retry is not None:
            raise RateLimited("too many login attempts from this address", retry_after=retry)
        email_key = f"login:email:{email.strip().lower()}"
        retry = await self._limiter.blocked(email_key, limits.per_email)
        if retry is not None:
            raise RateLimited("too many failed logins for this email", retry_after=retry)

        user = await self._users.by_email(email.strip().lower())
        if user is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self._hasher.hash("Dummy-password-1")
            await self._hasher.verify(self._dummy_hash, password)
            ok = False
        else:
            ok = await self._hasher.verify(user.password_hash, password)
        if user is None or not ok:
            await self._limiter.hit(email_key, limits.per_email, limits.per_email_window_s)
            raise InvalidCredentials("email or password is incorrect")
        return await self._issue(user, family_id=uuid.uuid4())

    async def refresh(self, refresh_token: str) -> TokenPair:
        now = self._clock.now()
        previous = await self._refresh.use(hash_refresh_secret(refresh_token), now)
        if previous is None:
            raise InvalidToken("refresh token is invalid")
        if previous.used_at is not None or previous.revoked_at is not None:
            await self._refresh.revoke_family(previous.family_id, now)
            await self._revoked(previous.family_id)
            raise RefreshTokenReused("refresh token was already used; the session is revoked")
        if previous.expires_at <= now:
            raise InvalidToken("refresh token has expired")
        user = await self._users.get(previous.user_id)
        if user is None:
            raise InvalidToken("refresh token is invalid")
        return await self._issue(user, family_id=previous.family_id)

    async def logout(self, refresh_token: str) -> None:
        """Revoke the session the refresh token belongs to. Unknown tokens are ignored: logging
        out twice is not an error."""
        now = self._clock.now()
        previous = await self._refresh.use(hash_refresh_secret(refresh_token), now)
        if previous is not None:
            await self._refresh.revoke_family(previous.family_id, now)
            await self._revoked(previous.family_id)

    async def _revoked(self, family_id: uuid.UUID) -> None:
        for listener in self.revocation_listeners:
            try:
                await listener(family_id)
            except Exception as exc:
                # The session is revoked in the store; its open streams still end when their
                # access tokens expire. Not worth failing the logout for.
                log.warning("revocation listener failed", family_id=str(family_id), error=repr(exc))

    async def user(self, user_id: uuid.UUID) -> User:
        """The user an access token names; NotFound once deleted (a token outlives its user)."""
        user = await self._users.get(user_id)
        if user is None:
            raise NotFound("the user of this token no longer exists")
        return user

    def authenticate(self, access_token: str) -> AccessClaims:
        return self._access.verify(access_token)

    async def _issue(self, user: User, family_id: uuid.UUID) -> TokenPair:
        now = self._clock.now()
        secret = new_refresh_secret()
        await self._refresh.add(
            RefreshToken(
                id=uuid.uuid4(),
                user_id=user.id,
                family_id=family_id,
                token_hash=hash_refresh_secret(secret),
                created_at=now,
                expires_at=now + self._config.refresh_ttl,
            )
        )
        return TokenPair(
            access_token=self._access.issue(user.id, user.role, now, sid=family_id),
            refresh_token=secret,
            expires_in=int(self._access.ttl.total_seconds()),
        )
