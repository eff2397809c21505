"""API keys: make, list and revoke them, and authenticate a request by key id and secret.

`authenticate` is the one check every key-authenticated entrypoint uses (the /v2 REST routes
today, the Alpaca-style streams later): it answers the same AccessClaims as a verified access
token, so that what follows does not care how the caller signed in.

A verified key is held in this process for `cache_ttl_s` (5 s by default), so a busy script
costs one lookup per key every few seconds rather than one per request. A revoke drops the
key from this process's cache at once; other processes stop accepting it within `cache_ttl_s`.
Failed checks are counted per client address, and past `failure_limit` in `failure_window_s`
the client gets 429 before any lookup, as failed logins do.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

import structlog

from hub.domain.api_keys import (
    MAX_KEYS_PER_USER,
    ApiKey,
    clean_name,
    hash_secret,
    looks_like_key_id,
    new_key_id,
    new_secret,
    secret_matches,
)
from hub.domain.errors import InvalidToken, NotFound, RateLimited
from hub.domain.users import Role
from hub.services.ports import AccessClaims, ApiKeyRepository, Clock, RateLimiter, UserRepository

log = structlog.get_logger("hub.api_keys")

# What the claims of a key say about expiry: a key does not expire, but a stream opened with it
# is re-authenticated at least this often (revocation ends it sooner).
KEY_SESSION = timedelta(hours=24)
MAX_SECRET = 256  # longer is not a secret this service made; refused before hashing


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key and its secret: the only time the secret is known to anyone but the caller."""

    key: ApiKey
    secret: str


@dataclass(frozen=True, slots=True)
class _Held:
    key: ApiKey
    role: Role
    until: float  # monotonic


@dataclass
class KeyStats:
    cache_hits: int = 0
    cache_misses: int = 0
    failures: int = 0


@dataclass
class _Cache:
    entries: dict[str, _Held] = field(default_factory=dict)
    # Bumped by every revoke in this process: a lookup that started before a revoke does not
    # put what it read (the key as it was) back into the cache.
    epoch: int = 0


class ApiKeyService:
    def __init__(
        self,
        repo: ApiKeyRepository,
        users: UserRepository,
        limiter: RateLimiter,
        clock: Clock,
        *,
        max_keys: int = MAX_KEYS_PER_USER,
        cache_ttl_s: float = 5.0,
        cache_size: int = 10_000,
        failure_limit: int = 30,
        failure_window_s: int = 60,
    ) -> None:
        self._repo = repo
        self._users = users
        self._limiter = limiter
        self._clock = clock
        self._max_keys = max_keys
        self._ttl = cache_ttl_s
        self._size = cache_size
        self._failure_limit = failure_limit
        self._failure_window = failure_window_s
        self._cache = _Cache()
        self.key_stats = KeyStats()
        #: Called with the key's id when it is revoked, e.g. to end the streams opened with it
        #: (their claims carry `sid` = the key id's hex, as a login session's do).
        self.revocation_listeners: list[Callable[[UUID], Awaitable[None]]] = []

    def stats(self) -> dict[str, int]:
        """Counters for /metrics (the `api_keys` group)."""
        return vars(self.key_stats).copy()

    async def create(self, user_id: UUID, name: str) -> CreatedKey:
        cleaned = clean_name(name)
        if await self._users.get(user_id) is None:
            raise NotFound("the user of this token no longer exists")
        secret = new_secret()
        key = ApiKey(
            id=uuid.uuid4(),
            user_id=user_id,
            name=cleaned,
            key_id=new_key_id(),
            secret_hash=hash_secret(secret),
            created_at=self._clock.now(),
        )
        await self._repo.add(key, self._max_keys)
        return CreatedKey(key, secret)

    async def keys(self, user_id: UUID) -> list[ApiKey]:
        return await self._repo.for_user(user_id)

    async def revoke(self, user_id: UUID, key_id: UUID) -> None:
        """NotFound for an unknown key, someone else's, or one revoked before."""
        revoked = await self._repo.revoke(user_id, key_id, self._clock.now())
        if revoked is None:
            raise NotFound(f"no API key {key_id}")
        self._cache.epoch += 1
        self._cache.entries.pop(revoked.key_id, None)
        for listener in self.revocation_listeners:
            try:
                await listener(revoked.id)
            except Exception as exc:
                # The key is revoked in the store and here; a stream opened with it still ends
                # when its claims are next checked. Not worth failing the revoke for.
                log.warning("revocation listener failed", key=str(revoked.id), error=repr(exc))

    async def authenticate(self, key_id: str, secret: str, client: str | None) -> AccessClaims:
        """The claims of the key's user; InvalidToken when the pair does not match a live key,
        RateLimited when `client` has failed too often."""
        held = self._cache.entries.get(key_id)
        if held is not None and held.until > time.monotonic():
            self.key_stats.cache_hits += 1
            if secret_matches(held.key, secret):
                return self._claims(held)
            return await self._failed(client)
        self.key_stats.cache_misses += 1
        if client is not None:
            retry = await self._limiter.blocked(self._failure_key(client), self._failure_limit)
            if retry is not None:
                raise RateLimited("too many failed API key checks from this address", retry)
        if not looks_like_key_id(key_id) or not 0 < len(secret) <= MAX_SECRET:
            return await self._failed(client)
        epoch = self._cache.epoch
        key = await self._repo.by_key_id(key_id)
        if key is None or key.revoked or not secret_matches(key, secret):
            return await self._failed(client)
        user = await self._users.get(key.user_id)
        if user is None:
            return await self._failed(client)
        held = _Held(key, user.role, time.monotonic() + self._ttl)
        if epoch == self._cache.epoch:
            self._hold(held)
        return self._claims(held)

    def _claims(self, held: _Held) -> AccessClaims:
        return AccessClaims(
            user_id=held.key.user_id,
            role=held.role,
            jti=f"key:{held.key.id}",
            expires_at=self._clock.now() + KEY_SESSION,
            sid=held.key.id.hex,
        )

    def _hold(self, held: _Held) -> None:
        entries = self._cache.entries
        if len(entries) >= self._size:
            now = time.monotonic()
            for stale in [k for k, h in entries.items() if h.until <= now]:
                del entries[stale]
            if len(entries) >= self._size:
                del entries[next(iter(entries))]  # the oldest held
        entries[held.key.key_id] = held

    def _failure_key(self, client: str) -> str:
        return f"apikey:client:{client}"

    async def _failed(self, client: str | None) -> AccessClaims:
        self.key_stats.failures += 1
        if client is not None:
            retry = await self._limiter.hit(
                self._failure_key(client), self._failure_limit, self._failure_window
            )
            if retry is not None:
                raise RateLimited("too many failed API key checks from this address", retry)
        raise InvalidToken("the API key id and secret do not match a live key")
