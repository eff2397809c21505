"""What the fanout_real_* scripts share: their flags, running a measurement against each
candidate in turn, counting what reaches Redis, and the report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from .procs import raise_nofile
from .real_targets import Target, bare_target, hub_target, install_peer, node_world
from .report import environment, write_report
from .wsload import build

TARGETS = {"knee_vs_node": 1.5, "p99_at_20k_ms": 20.0, "idle_kib": 16.0, "storm_vs_bare": 0.7}
CANDIDATES = ["hub", "hub-deflate", "bare-uvicorn", "node-ws"]
# measure(target, wsload binary, args, env): env is Hub's (or, for node-ws, what the feed needs
# to publish to it); None for bare-uvicorn, which has no feed.
Measure = Callable[[Target, Path, argparse.Namespace, dict[str, str] | None], Awaitable[Any]]
Summarize = Callable[[dict[str, list[Any]]], dict[str, Any]]


def parser(doc: str) -> argparse.ArgumentParser:
    """The flags every fanout_real_* script takes; each adds its own."""
    found = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    found.add_argument("--runs", type=int, default=3)
    found.add_argument("--deflate-share", type=float, default=1.0)
    found.add_argument("--only", default="hub,node-ws,bare-uvicorn")
    found.add_argument(
        "--bare-ws",
        default="websockets-sansio",
        choices=["websockets-sansio", "wsproto", "websockets"],
        help="uvicorn's WebSocket implementation for bare-uvicorn",
    )
    found.add_argument("--quick", action="store_true", help="1 run, fewer clients, short steps")
    found.add_argument("--out")
    return found


async def run_per_target(
    args: argparse.Namespace,
    binary: Path,
    node_dir: Path | None,
    measure: Measure,
    names: list[str],
    *,
    show: bool = True,
) -> dict[str, list[Any]]:
    """measure() against each candidate in `names` that --only lists, --runs times; a fresh
    candidate (schema, Redis prefix, queues) every time."""
    results: dict[str, list[Any]] = {}
    for run in range(args.runs):
        for name in names:
            if name not in args.only:
                continue
            print(f"run {run + 1}/{args.runs}: {name}", flush=True)
            if name in ("hub", "hub-deflate"):
                async with hub_target(name == "hub-deflate") as (target, env):
                    result = await measure(target, binary, args, env)
            elif name == "bare-uvicorn":
                async with bare_target(args.bare_ws) as target:
                    result = await measure(target, binary, args, None)
            elif name == "node-ws" and node_dir is not None:
                async with node_world(node_dir) as (target, env):
                    result = await measure(target, binary, args, env)
            else:
                continue
            if show:
                print(f"  {name}: {result}", flush=True)
            results.setdefault(name, []).append(result)
    return results


async def run_mode(
    mode: str,
    args: argparse.Namespace,
    measure: Measure,
    summarize: Summarize,
    names: list[str] = CANDIDATES,
    *,
    show: bool = True,
) -> tuple[dict[str, Any], Path]:
    """Build wsload, install the peer if asked, measure every candidate, write the report
    (benchmarks/results/fanout_real-MODE-DATE.json unless --out)."""
    settings = {"mode": mode, **{k: v for k, v in vars(args).items() if k not in ("out", "chart")}}
    raise_nofile()
    binary, _ = build()
    node_dir, node_versions = install_peer() if "node-ws" in args.only else (None, {})
    try:
        runs = await run_per_target(args, binary, node_dir, measure, names, show=show)
    finally:
        for directory in (binary.parent, node_dir):
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
    host = environment(["uvicorn", "websockets", "starlette", "redis", "uvloop", "msgspec"])
    host["versions"].update(node_versions)
    report = {
        "benchmark": f"fanout_real {mode}",
        "date": time.strftime("%Y-%m-%d"),
        "host": host,
        "settings": settings,
        "targets": TARGETS,
        "runs": runs,
        "summary": summarize(runs),
    }
    path = write_report(f"fanout_real-{mode}", report, args.out)
    print(f"wrote {path}")
    return report, path


def print_summary(report: dict[str, Any]) -> None:
    print(json.dumps(report["summary"], indent=2))


def parse(found: argparse.ArgumentParser, quick: dict[str, Any]) -> argparse.Namespace:
    """The arguments, --only as a list; with --quick, 1 run and the `quick` values."""
    args = found.parse_args()
    args.only = args.only.split(",")
    if args.quick:
        vars(args).update(runs=1, **quick)
    return args


def main(mode: str, args: argparse.Namespace, measure: Measure, summarize: Summarize) -> None:
    """run_mode, then the summary on stdout."""
    report, _ = asyncio.run(run_mode(mode, args, measure, summarize))
    print_summary(report)


class PublicationCounter:
    """Counts what reaches Redis pub/sub on the quote channels (independent of the servers)."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self._client = aioredis.from_url(redis_url.split("?")[0])
        self._pattern = f"{prefix}ch:quotes:*"
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PublicationCounter:
        pubsub = self._client.pubsub()
        await pubsub.psubscribe(self._pattern)

        async def run() -> None:
            async for message in pubsub.listen():
                if message["type"] == "pmessage":
                    self.count += 1

        self._task = asyncio.create_task(run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()
