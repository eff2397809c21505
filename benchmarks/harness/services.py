"""What a benchmark creates in the services, created fresh and removed afterwards: PostgreSQL
schemas, Redis keys (by prefix, or every new key of a database), RabbitMQ queues (by prefix,
removed by `hub.run_hub`)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import redis.asyncio as aioredis

from .config import AMQP_URL, JWT_SECRET, POSTGRES_URL, REDIS_BASE


def services_env(
    schema_url: str, redis_db: int, *, amqp: bool = True, **extra: str
) -> dict[str, str]:
    """Hub's settings for services mode; with `amqp`, a fresh RabbitMQ prefix."""
    env = {
        "HUB_DATABASE_URL": schema_url,
        "HUB_REDIS_URL": f"{REDIS_BASE}/{redis_db}",
        "HUB_JWT_SECRET": JWT_SECRET,
        "HUB_LOG_LEVEL": "warning",
        **extra,
    }
    if amqp:
        env["HUB_AMQP_URL"] = AMQP_URL
        env["HUB_AMQP_PREFIX"] = f"bench-{uuid.uuid4().hex[:8]}."
    return env


@contextlib.asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A database URL whose search_path is a new, empty schema, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{sep}search_path={schema}"
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


async def scan_keys(url: str, match: str = "*") -> set[bytes]:
    client = aioredis.from_url(url)
    try:
        return {k async for k in client.scan_iter(match=match, count=1000)}
    finally:
        await client.aclose()


async def delete_keys(url: str, keys: set[bytes]) -> int:
    """Delete keys (500 per command); returns how many were there to delete."""
    client = aioredis.from_url(url)
    deleted = 0
    try:
        ordered = sorted(keys)
        for i in range(0, len(ordered), 500):
            deleted += await client.delete(*ordered[i : i + 500])
    finally:
        await client.aclose()
    return deleted


# Keys Hub writes without the broker's prefix: the quote store (`hub:*`) and the instrument
# cache (`market_data:<SYMBOL>`).
HUB_KEYS = ("hub:*", "market_data:*")


@contextlib.asynccontextmanager
async def redis_prefix(db: int = 13, name: str = "bench-real") -> AsyncIterator[tuple[str, str]]:
    """A Redis URL with a fresh key prefix, and the prefix; every key under it deleted
    afterwards, and Hub's unprefixed keys too: the database is this benchmark's."""
    prefix = f"{name}-{uuid.uuid4().hex[:8]}:"
    url = f"{REDIS_BASE}/{db}"
    try:
        yield f"{url}?prefix={prefix}", prefix
    finally:
        keys = await scan_keys(url, f"{prefix}*")
        for pattern in HUB_KEYS:
            keys |= await scan_keys(url, pattern)
        await delete_keys(url, keys)


@contextlib.asynccontextmanager
async def new_keys_deleted(db: int) -> AsyncIterator[dict[str, int]]:
    """Redis database `db` (the benchmark's own): every key created in it meanwhile is deleted
    afterwards, the keys it held before are kept. Yields a dict given "deleted" (a count)."""
    url = f"{REDIS_BASE}/{db}"
    before = await scan_keys(url)
    if before:
        print(f"redis db {db} already holds {len(before)} keys; they are kept", flush=True)
    done: dict[str, int] = {}
    try:
        yield done
    finally:
        done["deleted"] = await delete_keys(url, await scan_keys(url) - before)
        print(f"deleted {done['deleted']} redis keys from db {db}", file=sys.stderr, flush=True)


class RedisDeleter:
    """Pipelines `DEL market_data:<SYMBOL>` to Redis on its own connection; replies are drained
    and counted, never awaited per command."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.sent = 0
        self.deleted = 0
        self._task = asyncio.create_task(self._drain())

    @classmethod
    async def open(cls, db: int) -> RedisDeleter:
        where = urlsplit(REDIS_BASE)
        reader, writer = await asyncio.open_connection(where.hostname, where.port or 6379)
        writer.write(f"*2\r\n$6\r\nSELECT\r\n${len(str(db))}\r\n{db}\r\n".encode())
        await reader.readline()
        return cls(reader, writer)

    def delete(self, symbol: str) -> None:
        key = f"market_data:{symbol}"
        self.writer.write(f"*2\r\n$3\r\nDEL\r\n${len(key)}\r\n{key}\r\n".encode())
        self.sent += 1

    async def _drain(self) -> None:
        while line := await self.reader.readline():
            if line.startswith(b":1"):
                self.deleted += 1

    async def close(self) -> None:
        await asyncio.sleep(0.1)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.writer.close()
