from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    """A unique key prefix; only keys under it are deleted afterwards (never FLUSHALL)."""
    value = f"test:{uuid.uuid4().hex[:12]}:"
    yield value
    keys = [key async for key in redis_client.scan_iter(match=f"{value}*")]
    if keys:
        await redis_client.delete(*keys)


@pytest.fixture
def broker_url(redis_url: str, prefix: str) -> str:
    return f"{redis_url}?prefix={prefix}"
