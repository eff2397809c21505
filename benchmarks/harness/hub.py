"""Hub's own processes, run from HUB_ROOT: `hub migrate`, `hub serve` with workers and the feed,
and its /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .config import HUB_ROOT
from .procs import Proc, free_port, spawn, stop_all, wait_ready


def hub_argv(command: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hub.entrypoints.cli", command, *extra]


@dataclass
class Hub:
    """A running Hub: `hub serve` plus, in services mode, workers and the feed."""

    url: str
    host: str
    port: int
    grpc_port: int
    env: dict[str, str]
    serve: Proc
    helpers: list[Proc] = field(default_factory=list)
    logdir: Path = field(default_factory=Path)

    def pids(self) -> dict[str, int]:
        return {p.name: p.pid for p in [self.serve, *self.helpers]}


async def migrate(env: dict[str, str]) -> None:
    """`hub migrate` with env (its database URL); raises with its output if it fails."""
    migrating = await asyncio.create_subprocess_exec(
        *hub_argv("migrate"),
        cwd=HUB_ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await migrating.communicate()
    if migrating.returncode != 0:
        raise RuntimeError(f"hub migrate failed:\n{out.decode(errors='replace')}")


@contextlib.asynccontextmanager
async def run_hub(
    env: dict[str, str],
    *,
    workers: int = 0,
    feed: bool = False,
    migrate_first: bool = False,
    serve_cpus: str | None = None,
) -> AsyncIterator[Hub]:
    """Start `hub serve` (after `hub migrate`, and with `hub worker` x N and `hub feed` when
    asked) on free ports; stop everything with SIGTERM on exit, then delete the RabbitMQ
    queues under HUB_AMQP_PREFIX. `serve_cpus` pins `hub serve` to those cores (taskset list,
    e.g. "0")."""
    logdir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    port, grpc_port = free_port(), free_port()
    full = {**env, "HUB_PORT": str(port), "HUB_GRPC_PORT": str(grpc_port)}
    if migrate_first:
        await migrate(full)
    helpers: list[Proc] = []
    pin = ["taskset", "-c", serve_cpus] if serve_cpus else []
    serve = spawn("serve", [*pin, *hub_argv("serve")], full, logdir)
    hub = Hub(f"http://127.0.0.1:{port}", "127.0.0.1", port, grpc_port, full, serve, [], logdir)
    try:
        await wait_ready(f"{hub.url}/readyz", serve)
        if feed:
            helpers.append(spawn("feed", hub_argv("feed"), full, logdir))
        helpers += [
            spawn(f"worker{i + 1}", hub_argv("worker"), full, logdir) for i in range(workers)
        ]
        hub.helpers = helpers
        await asyncio.sleep(1.5)  # let the feed publish and the workers bind their queues
        for proc in helpers:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
        yield hub
    finally:
        await stop_all([*helpers, serve])
        if "HUB_AMQP_PREFIX" in full:
            from hub.adapters.rabbitmq import delete_topology

            await delete_topology(full["HUB_AMQP_URL"], full["HUB_AMQP_PREFIX"])


@contextlib.asynccontextmanager
async def feed(
    env: dict[str, str], quotes_per_s: float, logdir: Path, cpus: str
) -> AsyncIterator[None]:
    """`hub feed` alone, pinned to `cpus`, publishing quotes_per_s over all 34 symbols."""
    full = {
        **os.environ,
        **env,
        "HUB_FEED_QPS": str(max(1, round(quotes_per_s))),
        "HUB_FEED_SEED": "7",
        # The bar history's first-start backfill (seconds of CPU, then a bulk insert) would
        # overlap the first steps: these feeds measure fan-out, not a feed's first start.
        "HUB_BACKFILL_MINUTE_DAYS": "0",
        "HUB_BACKFILL_DAILY_DAYS": "0",
    }
    argv = ["taskset", "-c", cpus, *hub_argv("feed")]
    proc = spawn("feed", argv, {k: v for k, v in full.items() if k.startswith("HUB_")}, logdir)
    try:
        yield
    finally:
        await stop_all([proc])


async def scrape_metrics(url: str, prefix: str) -> dict[str, float]:
    """Samples of /metrics whose name starts with prefix (labels kept in the key)."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{url}/metrics")).text
    found = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


def symbols() -> list[str]:
    """The seeded instruments' symbols (the 34 the feed publishes)."""
    from hub.adapters.seed import seed_instruments

    return [s.instrument.symbol for s in seed_instruments()]
