"""Contract of the API key repositories (memory and PostgreSQL). A subclass provides `keys`: the
repository and two users that exist."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from hub.domain.api_keys import ApiKey, hash_secret, new_key_id
from hub.domain.errors import TooManyApiKeys
from hub.services.ports import ApiKeyRepository

T0 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


@dataclass
class Keys:
    repo: ApiKeyRepository
    user_id: uuid.UUID
    other_id: uuid.UUID


def make_key(user_id: uuid.UUID, name: str = "bot", at: datetime = T0) -> ApiKey:
    return ApiKey(
        id=uuid.uuid4(),
        user_id=user_id,
        name=name,
        key_id=new_key_id(),
        secret_hash=hash_secret(uuid.uuid4().hex),
        created_at=at,
    )


class ApiKeyRepositoryContract:
    async def test_round_trip_oldest_first(self, keys: Keys) -> None:
        second = make_key(keys.user_id, "second", T0 + timedelta(seconds=1))
        first = make_key(keys.user_id, "first")
        await keys.repo.add(second, 10)
        await keys.repo.add(first, 10)
        assert await keys.repo.for_user(keys.user_id) == [first, second]
        assert await keys.repo.by_key_id(first.key_id) == first
        assert await keys.repo.by_key_id(new_key_id()) is None
        assert await keys.repo.for_user(keys.other_id) == []

    async def test_revoke_only_your_own_live_key(self, keys: Keys) -> None:
        key = make_key(keys.user_id)
        await keys.repo.add(key, 10)
        assert await keys.repo.revoke(keys.other_id, key.id, T0) is None  # not yours
        assert await keys.repo.revoke(keys.user_id, uuid.uuid4(), T0) is None
        revoked = await keys.repo.revoke(keys.user_id, key.id, T0 + timedelta(minutes=1))
        assert revoked is not None and revoked.revoked_at == T0 + timedelta(minutes=1)
        assert await keys.repo.revoke(keys.user_id, key.id, T0) is None  # revoked before
        assert await keys.repo.for_user(keys.user_id) == []
        found = await keys.repo.by_key_id(key.key_id)  # kept, as revoked: the id is never reused
        assert found is not None and found.revoked

    async def test_limit_counts_live_keys_per_user(self, keys: Keys) -> None:
        first, second = make_key(keys.user_id), make_key(keys.user_id)
        await keys.repo.add(first, 2)
        await keys.repo.add(second, 2)
        third = make_key(keys.user_id)
        with pytest.raises(TooManyApiKeys):
            await keys.repo.add(third, 2)
        assert await keys.repo.by_key_id(third.key_id) is None
        await keys.repo.add(make_key(keys.other_id), 2)  # another user's count
        await keys.repo.revoke(keys.user_id, first.id, T0)
        await keys.repo.add(third, 2)  # a revoked key frees its place
        assert len(await keys.repo.for_user(keys.user_id)) == 2

    async def test_concurrent_adds_cannot_pass_the_limit(self, keys: Keys) -> None:
        results = await asyncio.gather(
            *(keys.repo.add(make_key(keys.user_id), 3) for _ in range(6)), return_exceptions=True
        )
        assert sum(r is None for r in results) == 3
        assert all(isinstance(r, TooManyApiKeys) for r in results if r is not None)
        assert len(await keys.repo.for_user(keys.user_id)) == 3
