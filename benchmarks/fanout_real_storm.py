"""Through the real path, how fast do sockets opened all at once become authenticated and
subscribed to all 34 quote channels, against bare uvicorn handshakes (target: >= 0.7x)?

--storm-clients sockets from the C load client, at most --storm-concurrency handshakes in
flight, each authenticated with its own user's token and subscribed to all 34 quote channels;
ready when the last `subscribed` arrives. As after a restart in market hours, `hub feed`
publishes --storm-feed-qps quotes/s meanwhile (0: no feed). Candidates: Hub (`hub serve`,
services mode, core 0), node-ws, and bare uvicorn (handshake only). Reported: sockets/s, the
server's CPU per socket, the client's CPU.

    python benchmarks/fanout_real_storm.py --runs 3
    python benchmarks/fanout_real_storm.py --storm-feed-qps 0
    python benchmarks/fanout_real_storm.py --quick         # 200 sockets, 1 run

JSON: benchmarks/results/fanout_real-storm-DATE.json (or --out).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.config import CLIENT_CPUS
from harness.hub import feed, symbols
from harness.real_runs import main, parse, parser
from harness.real_targets import Target
from harness.stats import medians
from harness.wsload import WsLoad, subscribed_clients


async def storm_one(
    target: Target, binary: Path, args: argparse.Namespace, env: dict[str, str] | None
) -> dict[str, Any]:
    """Open N sockets at once (at most --storm-concurrency handshakes in flight) and time until
    each is ready: for Hub and the peer, authenticated and subscribed to all 34 channels (the
    last `subscribed` seen) while the feed publishes, as after a restart in market hours."""
    workdir = Path(tempfile.mkdtemp(prefix="fanout-real-"))
    extra = ["--path", target.path, "--deflate-share", str(args.deflate_share)]
    extra += ["--concurrency", str(args.storm_concurrency), "--sources", "4"]
    if target.name != "bare-uvicorn":
        channels = [f"quotes:{s}" for s in symbols()]
        extra += subscribed_clients(args.storm_clients, channels, workdir)
    server = psutil.Process(target.pid)
    async with contextlib.AsyncExitStack() as stack:
        if env is not None and args.storm_feed_qps > 0:
            await stack.enter_async_context(feed(env, args.storm_feed_qps, workdir, CLIENT_CPUS))
            await asyncio.sleep(2)  # the feed primes every symbol, then publishes steadily
        cpu0 = server.cpu_times()
        client = await WsLoad.start(
            binary, target.port, args.storm_clients, *extra, cpus=CLIENT_CPUS
        )
        metered = psutil.Process(client.proc.pid)
        try:
            ready = await client.ready()
            used = metered.cpu_times()
        finally:
            await client.stop()
        cpu1 = server.cpu_times()
    elapsed = ready["elapsed_s"]
    server_s = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    return {
        "ready": ready["ready"],
        "failed": ready["failed"],
        "elapsed_s": elapsed,
        "per_s": round(ready["ready"] / elapsed, 1) if elapsed else None,
        "connect_ms": ready.get("connect_ms"),
        "server_cpu_s": round(server_s, 2),
        "server_cpu_ms_per_socket": round(1000 * server_s / max(ready["ready"], 1), 3),
        "client_cpu_s": round(used.user + used.system, 2),
        "deflate_accepted": ready.get("deflate_accepted"),
    }


def summarize(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    keys = ("per_s", "elapsed_s", "server_cpu_ms_per_socket", "client_cpu_s")
    summary = {name: medians(runs, {k: k for k in keys}) for name, runs in results.items()}
    hub, bare = summary.get("hub"), summary.get("bare-uvicorn")
    if hub and bare and hub["per_s"] and bare["per_s"]:
        hub["vs_bare"] = round(hub["per_s"] / bare["per_s"], 2)
    return summary


if __name__ == "__main__":
    found = parser(__doc__)
    found.add_argument("--storm-clients", type=int, default=1000)
    found.add_argument("--storm-concurrency", type=int, default=256)
    found.add_argument(
        "--storm-feed-qps", type=int, default=50, help="quotes/s during the storm (0: no feed)"
    )
    main("storm", parse(found, {"storm_clients": 200}), storm_one, summarize)
