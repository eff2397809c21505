"""Shared fixtures: where the real services are, and the rule that CI never skips them."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from hub.adapters.postgres.database import create_pool
from hub.adapters.postgres.instruments import load_seed
from hub.adapters.postgres.migrations import migrate

POSTGRES_URL = os.environ.get("HUB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("HUB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def pytest_report_header() -> str:
    from tests.fuzz.seed import REPLAY

    return REPLAY


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, url: str) -> str:
    """Return the URL of a real service, or skip; under CI=true a missing service fails."""
    if _reachable(url):
        return url
    message = f"{name} is not reachable at {url}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: integration tests never skip)")
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def redis_keys_created_are_deleted() -> Iterator[None]:
    """Every key the run creates in the tests' Redis database is deleted at its end: the
    `hub serve` processes of the e2e tests write quote, channel and rate-limit keys without a
    prefix. Keys that were there before the run are kept."""
    if not _reachable(REDIS_URL):
        yield
        return
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        before = set(client.scan_iter(count=1000))
        yield
        created = list(set(client.scan_iter(count=1000)) - before)
        for start in range(0, len(created), 500):
            client.delete(*created[start : start + 500])
    finally:
        client.close()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return require_service("PostgreSQL", POSTGRES_URL)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_service("Redis", REDIS_URL)


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return require_service("RabbitMQ", AMQP_URL)


def with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}search_path={schema}"


@pytest.fixture
async def schema_url(postgres_url: str) -> AsyncIterator[str]:
    """A database URL whose search_path is a new, migrated schema, dropped afterwards."""
    schema = f"hub_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        url = with_search_path(postgres_url, schema)
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
            await load_seed(conn)
        finally:
            await conn.close()
        yield url
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


@pytest.fixture
async def pool(schema_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(schema_url, max_size=5)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def amqp_prefix(amqp_url: str) -> Iterator[str]:
    """A private namespace on the shared RabbitMQ, deleted afterwards: quorum queues are heavy,
    and hundreds left behind by test runs slow a small broker to a halt."""
    prefix = f"test-{uuid.uuid4().hex[:8]}."
    yield prefix
    from hub.adapters.rabbitmq import delete_topology

    asyncio.run(delete_topology(amqp_url, prefix))


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    """A client of the real Redis (tests keep to their own key prefixes)."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session", autouse=True)
def no_default_history() -> Iterator[None]:
    """In-process apps (TestClient, bootstrap) start without the feed's default history unless
    the test asks for one with explicit `backfill_*_days`. Every embedded start backfills a
    year of bars in a worker thread: 2-4 s of CPU that also slows the event loop through the
    GIL while it runs (5 ms median lag measured), which added ~45 s to the unit tests and made
    the loop-stall and admission tests flaky. The default history is still what `hub serve`
    subprocesses load (tests/e2e: test_serve, the dashboard)."""
    from hub import _feed
    from hub.adapters.seed import SeedInstrument
    from hub.config import Settings
    from hub.services.bars import History

    original = _feed.history_of
    default = (Settings.backfill_minute_days, Settings.backfill_daily_days)

    def history_of(settings: Settings, instruments: Sequence[SeedInstrument]) -> History | None:
        if (settings.backfill_minute_days, settings.backfill_daily_days) == default:
            return None
        return original(settings, instruments)

    patch = pytest.MonkeyPatch()
    patch.setattr(_feed, "history_of", history_of)
    try:
        yield
    finally:
        patch.undo()
