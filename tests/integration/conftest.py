"""Real-service fixtures live in tests/conftest.py (the e2e tests share them)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.order_world import World


@pytest.fixture
async def world(pool: asyncpg.Pool) -> AsyncIterator[World]:
    """The order services wired on Postgres, as bootstrap does (quotes in memory)."""
    w = World(pool)
    try:
        yield w
    finally:
        await w.aclose()
