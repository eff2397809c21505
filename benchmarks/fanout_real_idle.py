"""How much server memory does one idle, authenticated, subscribed WebSocket cost at 10,000 (F3)?

--idle-clients sockets from the C load client (browser-like: each offers permessage-deflate,
authenticates with its own user's token in a first frame and subscribes to `quotes:AAPL`; the
bare endpoint's only connect) against Hub (`hub serve`, services mode), node-ws and the bare
uvicorn endpoint; server RSS 3 s after the last socket is ready minus RSS before, / sockets.

    python benchmarks/fanout_real_idle.py --runs 3
    python benchmarks/fanout_real_idle.py --only bare-uvicorn --bare-ws wsproto --runs 1
    python benchmarks/fanout_real_idle.py --quick          # 1,000 sockets, 1 run

JSON: benchmarks/results/fanout_real-idle-DATE.json (or --out).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.config import CLIENT_CPUS
from harness.real_runs import main, parse, parser
from harness.real_targets import Target
from harness.stats import medians
from harness.wsload import WsLoad, subscribed_clients


async def idle_one(
    target: Target, binary: Path, args: argparse.Namespace, env: dict[str, str] | None
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="fanout-real-"))
    server = psutil.Process(target.pid)
    before = server.memory_info().rss
    extra = ["--path", target.path, "--deflate-share", str(args.deflate_share)]
    if target.name != "bare-uvicorn":
        extra += subscribed_clients(args.idle_clients, ["quotes:AAPL"], workdir)
    client = await WsLoad.start(
        binary, target.port, args.idle_clients, "--sources", "4", *extra, cpus=CLIENT_CPUS
    )
    try:
        ready = await client.ready()
        await asyncio.sleep(3)
        after = server.memory_info().rss
    finally:
        await client.stop()
    return {
        "ready": ready["ready"],
        "failed": ready["failed"],
        "rss_before_mib": round(before / 2**20, 1),
        "rss_after_mib": round(after / 2**20, 1),
        "kib_per_connection": round((after - before) / 1024 / max(ready["ready"], 1), 2),
        "open_s": ready["elapsed_s"],
    }


def summarize(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    keys = ("kib_per_connection", "open_s")
    return {name: medians(runs, {k: k for k in keys}) for name, runs in results.items()}


if __name__ == "__main__":
    found = parser(__doc__)
    found.add_argument("--idle-clients", type=int, default=10_000)
    main("idle", parse(found, {"idle_clients": 1000}), idle_one, summarize)
