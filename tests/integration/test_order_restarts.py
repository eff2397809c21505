"""PostgreSQL and Redis restarted while orders flow: every order the API accepted (202) fills
exactly once, and cash and positions reconcile to the cent afterwards. Each test owns the
service it restarts (a private PostgreSQL cluster, a private redis-server on free ports) and
runs `hub` as real subprocesses; their output is kept under the test's tmp_path."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from redis import Redis
from redis.exceptions import RedisError

from tests.e2e.server import free_port
from tests.integration.test_order_faults import SECRET, reconcile

pytestmark = pytest.mark.integration

# 3 traders x 15 market buys over 6 s; the dependency goes down 2 s in, for 2 s.
USERS, ORDERS_EACH, LOAD_S, OUTAGE_AT, OUTAGE_S = 3, 15, 6.0, 2.0, 2.0
FILL_DEADLINE_S = 60.0  # the supervisor re-drives an order stuck in pending_new after 15 s
HUB = [sys.executable, "-m", "hub.entrypoints.cli"]


def as_postgres(*cmd: str) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


@dataclass
class PrivatePostgres:
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/hub"

    def ctl(self, *args: str) -> None:
        cmd = as_postgres("pg_ctl", "-D", str(self.root / "data"), "-w", *args)
        subprocess.run(cmd, check=True, timeout=60, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.ctl("-o", options, "-l", str(self.root / "postgres.log"), "start")


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this module's own (the test restarts it), migrated by `hub migrate`."""
    pg = PrivatePostgres(Path(tempfile.mkdtemp(prefix="hub-pg-")), free_port())
    if os.geteuid() == 0:
        shutil.chown(pg.root, "postgres")
    try:
        initdb = ["initdb", "-D", str(pg.root / "data"), "-A", "trust", "-U", "postgres"]
        subprocess.run(as_postgres(*initdb), check=True, timeout=120, capture_output=True)
        pg.start()

        async def create_database() -> None:
            conn = await asyncpg.connect(pg.url.removesuffix("/hub") + "/postgres")
            try:
                await conn.execute("CREATE DATABASE hub")
            finally:
                await conn.close()

        asyncio.run(create_database())
        env = {**os.environ, "HUB_DATABASE_URL": pg.url, "HUB_JWT_SECRET": SECRET}
        subprocess.run([*HUB, "migrate"], env=env, check=True, timeout=120, capture_output=True)
        yield pg
    finally:
        with pytest.raises(Exception) if False else _quietly():
            pg.ctl("-m", "immediate", "stop")
        shutil.rmtree(pg.root, ignore_errors=True)
