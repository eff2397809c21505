"""API keys: the memory repository's contract, the service's checks and caching, and the
/api/v1/api-keys routes on the embedded app."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from hub.adapters.memory.api_keys import MemoryApiKeys
from hub.adapters.memory.ratelimit import MemoryRateLimiter
from hub.adapters.memory.users import MemoryUsers
from hub.config import Settings
from hub.domain.api_keys import ApiKey, hash_secret, looks_like_key_id
from hub.domain.errors import InvalidInput, InvalidToken, NotFound, RateLimited, TooManyApiKeys
from hub.domain.users import Role
from hub.entrypoints.http.app import create_app
from hub.services.api_keys import ApiKeyService
from tests.api_key_suite import ApiKeyRepositoryContract, Keys
from tests.contracts import make_user
from tests.http_suite import assert_problem, bearer, signup


class TestMemoryApiKeys(ApiKeyRepositoryContract):
    @pytest.fixture
    def keys(self) -> Keys:
        return Keys(MemoryApiKeys(), uuid.uuid4(), uuid.uuid4())


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


class Setup:
    def __init__(self, **kw: object) -> None:
        self.repo = MemoryApiKeys()
        self.users = MemoryUsers()
        self.limiter = MemoryRateLimiter()
        self.service = self.node(**kw)

    def node(self, **kw: object) -> ApiKeyService:
        """Another process over the same stores (its own cache)."""
        return ApiKeyService(self.repo, self.users, self.limiter, FixedClock(), **kw)  # type: ignore[arg-type]

    async def user(self, role: Role = Role.USER) -> uuid.UUID:
        user = make_user()
        await self.users.add(user)
        await self.users.set_role(user.email, role)
        return user.id


async def test_a_key_authenticates_as_its_user() -> None:
    s = Setup()
    user_id = await s.user(Role.ADMIN)
    made = await s.service.create(user_id, "  trading bot ")
    assert made.key.name == "trading bot"
    assert looks_like_key_id(made.key.key_id) and len(made.secret) == 40
    assert made.key.secret_hash == hash_secret(made.secret) != made.secret
    claims = await s.service.authenticate(made.key.key_id, made.secret, "10.0.0.1")
    assert (claims.user_id, claims.role, claims.sid) == (user_id, Role.ADMIN, made.key.id.hex)
    assert claims.expires_at > FixedClock().now()
    again = await s.service.authenticate(made.key.key_id, made.secret, "10.0.0.1")  # cached
    assert again.user_id == user_id
    assert s.service.stats() == {"cache_hits": 1, "cache_misses": 1, "failures": 0}
    assert await s.service.keys(user_id) == [made.key]


@pytest.mark.parametrize(
    ("key_id", "secret"),
    [("HKAAAAAAAAAAAAAAAAAA", "nope"), ("short", "x"), ("", ""), ("HK" + "A" * 18, "y" * 300)],
)
async def test_wrong_pairs_are_refused(key_id: str, secret: str) -> None:
    s = Setup()
    made = await s.service.create(await s.user(), "bot")
    with pytest.raises(InvalidToken):
        await s.service.authenticate(key_id, secret, None)
    with pytest.raises(InvalidToken):  # the right id, a wrong secret; cached or not
        await s.service.authenticate(made.key.key_id, made.secret[:-1] + "?", None)
    await s.service.authenticate(made.key.key_id, made.secret, None)
    with pytest.raises(InvalidToken):
        await s.service.authenticate(made.key.key_id, made.secret[:-1] + "?", None)


async def test_revoke_stops_the_key_at_once_here_and_within_the_ttl_elsewhere() -> None:
    s = Setup(cache_ttl_s=0.2)
    other = s.node(cache_ttl_s=0.2)
    user_id = await s.user()
    made = await s.service.create(user_id, "bot")
    ended: list[uuid.UUID] = []

    async def listener(key_id: uuid.UUID) -> None:
        ended.append(key_id)

    s.service.revocation_listeners.append(listener)
    for node in (s.service, other):
        await node.authenticate(made.key.key_id, made.secret, None)  # both hold it now
    await s.service.revoke(user_id, made.key.id)
    assert ended == [made.key.id]
    with pytest.raises(InvalidToken):
        await s.service.authenticate(made.key.key_id, made.secret, None)
    await other.authenticate(made.key.key_id, made.secret, None)  # still held over there...
    await asyncio.sleep(0.25)
    with pytest.raises(InvalidToken):  # ...for at most its cache TTL
        await other.authenticate(made.key.key_id, made.secret, None)
    with pytest.raises(NotFound):
        await s.service.revoke(user_id, made.key.id)  # revoked before


async def test_a_lookup_racing_a_revoke_does_not_cache_the_old_key() -> None:
    s = Setup()
    user_id = await s.user()
    made = await s.service.create(user_id, "bot")
    gate = asyncio.Event()
    read = s.repo.by_key_id

    async def slow_read(key_id: str) -> ApiKey | None:
        found = await read(key_id)
        await gate.wait()
        return found

    s.repo.by_key_id = slow_read  # type: ignore[method-assign]
    racing = asyncio.create_task(s.service.authenticate(made.key.key_id, made.secret, None))
    await asyncio.sleep(0)
    await s.service.revoke(user_id, made.key.id)
    gate.set()
    await racing  # it read the key before the revoke: this one request passes
    with pytest.raises(InvalidToken):
        await s.service.authenticate(made.key.key_id, made.secret, None)


async def test_failures_are_limited_per_client() -> None:
    s = Setup(failure_limit=3)
    made = await s.service.create(await s.user(), "bot")
    for _ in range(3):
        with pytest.raises(InvalidToken):
            await s.service.authenticate(made.key.key_id, "wrong", "10.0.0.9")
    with pytest.raises(RateLimited) as caught:
        await s.service.authenticate(made.key.key_id, made.secret, "10.0.0.9")
    assert caught.value.retry_after > 0
    await s.service.authenticate(made.key.key_id, made.secret, "10.0.0.10")  # another client


async def test_create_checks_the_user_the_name_and_the_limit() -> None:
    s = Setup(max_keys=2)
    with pytest.raises(NotFound):
        await s.service.create(uuid.uuid4(), "ghost")
    user_id = await s.user()
    with pytest.raises(InvalidInput):
        await s.service.create(user_id, "   ")
    await s.service.create(user_id, "a")
    await s.service.create(user_id, "b")
    with pytest.raises(TooManyApiKeys):
        await s.service.create(user_id, "c")


# --- the routes ---------------------------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = Settings(
        feed_in_process=False, login_limit_per_client=1000, register_limit_per_client=1000
    )
    with TestClient(create_app(settings)) as c:
        yield c


def test_key_lifecycle_over_http(client: TestClient) -> None:
    auth = bearer(signup(client))
    r = client.post("/api/v1/api-keys", json={"name": "bot"}, headers=auth)
    assert r.status_code == 201, r.text
    made = r.json()
    assert set(made) == {"id", "name", "key_id", "secret", "created_at"}
    listed = client.get("/api/v1/api-keys", headers=auth).json()
    assert listed == [{k: v for k, v in made.items() if k != "secret"}]
    keyed = {"APCA-API-KEY-ID": made["key_id"], "APCA-API-SECRET-KEY": made["secret"]}
    assert client.get("/v2/account", headers=keyed).status_code == 200
    # A key reaches /v2, not Hub's own API: it cannot make or list keys.
    assert_problem(client.get("/api/v1/api-keys", headers=keyed), 401, "invalid_token")
    assert client.delete(f"/api/v1/api-keys/{made['id']}", headers=auth).status_code == 204
    r = client.get("/v2/account", headers=keyed)
    assert r.status_code == 401 and r.json()["code"] == 40110000
    assert_problem(client.delete(f"/api/v1/api-keys/{made['id']}", headers=auth), 404, "not_found")
    assert client.get("/api/v1/api-keys", headers=auth).json() == []


def test_another_users_key_is_not_found(client: TestClient) -> None:
    mine, theirs = bearer(signup(client)), bearer(signup(client))
    made = client.post("/api/v1/api-keys", json={"name": "bot"}, headers=mine).json()
    for path in (f"/api/v1/api-keys/{made['id']}", "/api/v1/api-keys/not-a-uuid"):
        assert_problem(client.delete(path, headers=theirs), 404, "not_found")
    assert client.get("/api/v1/api-keys", headers=theirs).json() == []
    assert len(client.get("/api/v1/api-keys", headers=mine).json()) == 1


def test_bad_requests_and_the_cap(client: TestClient) -> None:
    auth = bearer(signup(client))
    for body, status in (({"name": ""}, 422), ({"name": "x" * 101}, 422), ({}, 422)):
        assert client.post("/api/v1/api-keys", json=body, headers=auth).status_code == status
    r = client.post("/api/v1/api-keys", json={"name": "x", "extra": 1}, headers=auth)
    assert_problem(r, 422, "validation_error")
    assert_problem(client.post("/api/v1/api-keys", json={"name": "x"}), 401, "invalid_token")
    for i in range(10):
        r = client.post("/api/v1/api-keys", json={"name": f"k{i}"}, headers=auth)
        assert r.status_code == 201
    r = client.post("/api/v1/api-keys", json={"name": "one too many"}, headers=auth)
    assert_problem(r, 422, "too_many_api_keys")
