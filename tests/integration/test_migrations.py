"""`hub migrate` applies every migration once; running it again changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg
import pytest

from hub.adapters.postgres.migrations import available, migrate, pending

pytestmark = pytest.mark.integration


async def test_migrate_is_idempotent(schema_url: str) -> None:
    conn = await asyncpg.connect(schema_url)
    try:
        assert await pending(conn) == []
        assert await migrate(conn) == []
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        assert sorted(versions) == [v for v, _ in available()]
    finally:
        await conn.close()


def test_cli_migrate_reports_up_to_date(schema_url: str) -> None:
    env = {
        **os.environ,
        "HUB_DATABASE_URL": schema_url,
        "HUB_JWT_SECRET": "x" * 8 + "0123456789abcdef" * 2,
    }
    out = subprocess.run(
        [sys.executable, "-m", "hub.entrypoints.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "up to date" in out.stdout
