"""The ports the use cases need. Each has a memory adapter and a real one that pass one contract."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from hub.domain.accounts import Account
from hub.domain.api_keys import ApiKey
from hub.domain.instruments import Instrument
from hub.domain.quotes import Quote
from hub.domain.tokens import RefreshToken
from hub.domain.users import Role, User
from hub.domain.watchlists import Watchlist


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Store a new user; raise EmailTaken when the email exists."""

    async def get(self, user_id: UUID) -> User | None: ...

    async def by_email(self, email: str) -> User | None: ...

    async def set_role(self, email: str, role: Role) -> bool:
        """Change a user's role; False when no such user."""


class RefreshTokenRepository(Protocol):
    async def add(self, token: RefreshToken) -> None: ...

    async def use(self, token_hash: str, now: datetime) -> RefreshToken | None:
        """Atomically mark a token used; return it as it was before, or None when unknown.

        Of two concurrent calls with the same hash exactly one sees `used_at is None`.
        """

    async def revoke_family(self, family_id: UUID, now: datetime) -> None: ...


class AccountRepository(Protocol):
    async def add(self, account: Account) -> None: ...

    async def for_user(self, user_id: UUID) -> Account | None: ...


class UserAccountStore(Protocol):
    """Registration writes a user and its account together, or neither."""

    async def add_user_with_account(self, user: User, account: Account) -> None:
        """Raise EmailTaken (and write nothing) when the email exists."""


class PasswordHasher(Protocol):
    """Slow on purpose: implementations keep the work off the event loop, and raise
    Overloaded when too many are waiting."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """Who a verified access token says the caller is."""

    user_id: UUID
    role: Role
    jti: str
    expires_at: datetime
    #: The login session (refresh-token family id, hex) or None for tokens issued without it.
    sid: str | None = None


class AccessTokens(Protocol):
    """Issues and verifies short-lived, signed access tokens (JWTs in hub/adapters/jwt_tokens.py).
    A token carries the user, its role, a unique id and, when given, the login session (`sid`),
    so that revoking the session can end the streams opened with it."""

    @property
    def ttl(self) -> timedelta: ...

    def issue(self, user_id: UUID, role: Role, now: datetime, sid: UUID | None = None) -> str: ...

    def verify(self, token: str) -> AccessClaims:
        """The token's claims; InvalidToken when it is expired, forged, malformed or missing a
        claim."""


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_s: int) -> int | None:
        """Count one event; return seconds to wait when the limit is exceeded, else None."""

    async def blocked(self, key: str, limit: int) -> int | None:
        """Without counting: seconds to wait if the key is already at its limit, else None."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class InstrumentRepository(Protocol):
    async def get_many(self, symbols: Iterable[str]) -> dict[str, Instrument]: ...

    async def search(self, query: str | None, limit: int) -> list[Instrument]:
        """Symbol-prefix matches first, then name matches; everything when query is empty."""


class InstrumentCache(Protocol):
    """Raises DependencyUnavailable when the cache cannot be reached."""

    async def get_many(self, symbols: Iterable[str]) -> dict[str, Instrument]: ...

    async def set_many(self, instruments: Iterable[Instrument]) -> None: ...

    async def delete_many(self, symbols: Iterable[str]) -> int: ...


class QuoteStore(Protocol):
    """The latest quote per symbol: written by the feed, read by market data and order pricing."""

    async def put(self, quote: Quote) -> None: ...

    async def get_many(self, symbols: Iterable[str]) -> dict[str, Quote]: ...


class Publisher(Protocol):
    """Publishes on a streaming channel (the streaming Engine satisfies it)."""

    async def publish(self, channel: str, type_: str, data: Any) -> object:
        """Publish; what it returns (the sequence number, for the engine) is not needed."""

    async def publish_many(self, items: Sequence[tuple[str, str, Any]]) -> None:
        """Publish (channel, type, data) items in order, in one round trip; at least once."""


class WatchlistRepository(Protocol):
    async def for_user(self, user_id: UUID) -> list[Watchlist]:
        """Oldest first."""

    async def get(self, user_id: UUID, watchlist_id: UUID) -> Watchlist | None: ...

    async def add(self, watchlist: Watchlist) -> None:
        """Raise WatchlistNameTaken when the user has one of that name."""

    async def save(self, watchlist: Watchlist) -> None:
        """Raise WatchlistNameTaken when renamed onto another of the user's names."""

    async def delete(self, user_id: UUID, watchlist_id: UUID) -> bool: ...


class ApiKeyRepository(Protocol):
    async def add(self, key: ApiKey, limit: int) -> None:
        """Store a new key; raise TooManyApiKeys (and store nothing) when the user already holds
        `limit` live keys. Two concurrent adds cannot both pass the count."""

    async def for_user(self, user_id: UUID) -> list[ApiKey]:
        """The user's live keys, oldest first."""

    async def by_key_id(self, key_id: str) -> ApiKey | None:
        """The key with this public id, revoked or not."""

    async def revoke(self, user_id: UUID, key_id: UUID, at: datetime) -> ApiKey | None:
        """Revoke the user's live key with this id; return it, or None when the user has no such
        live key (unknown, someone else's, or revoked before)."""
