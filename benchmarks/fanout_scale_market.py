"""Market watch through the Redis broker: with 1,000 clients each watching 20 of 200 symbols
(Zipf-popular), at which total quote rate does one Hub process keep up, and how much does
conflation drop? (Hub only: the peers have no broker or conflation.)

Hub's engine on `redis://.../14?prefix=bench-fanout:` with 200 latest-value channels
quotes:S000..S199; every client subscribed to 20 of them, chosen with weight 1/rank (seeded). A
separate publisher process (its own Engine on the same broker, as a market-data feed would be;
`--publisher same`: the WebSocket process publishes itself) publishes round robin over the 200
symbols at each total rate in --rates, at most 32 publishes in flight, --warmup s then --step s
measured. "Kept up": published >= 95% of the rate, the node received >= 95% of it from Redis,
p99 <= 50 ms. The keys under the prefix are deleted after every run.

    python benchmarks/fanout_scale_market.py --clients 1000 --rates 2000,5000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import msgspec
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.config import REDIS_BASE
from harness.market_server import PREFIX, REDIS_DB, SYMBOLS, zipf_subscriptions
from harness.rate_servers import RateServer, start_rate_server
from harness.scale import parser, run
from harness.services import delete_keys, scan_keys
from harness.stats import percentile_at_index
from harness.wsclient import Client, Tally, close_all, connect_many, hub_handler

P99_LIMIT_MS = 50.0
DB_URL = f"{REDIS_BASE}/{REDIS_DB}"


async def clean_redis() -> int:
    return await delete_keys(DB_URL, await scan_keys(DB_URL, PREFIX + "*"))


def pct(values: list[float], q: float) -> float:
    return round(percentile_at_index(values, q) * 1000, 2)


async def step(
    server: RateServer, publisher: RateServer, tally: Tally, rate: int, args: argparse.Namespace
) -> dict[str, Any]:
    await publisher.command(f"rate {rate}")
    await asyncio.sleep(args.warmup)
    me = psutil.Process()
    c0, s0, st0 = sum(me.cpu_times()[:2]), server.cpu(), await server.stats()
    p0, pt0 = publisher.cpu(), await publisher.stats()
    tally.count, tally.latencies, tally.recording = 0, [], True
    await asyncio.sleep(args.step)
    tally.recording = False
    c1, s1, st1 = sum(me.cpu_times()[:2]), server.cpu(), await server.stats()
    p1, pt1 = publisher.cpu(), await publisher.stats()
    for key in ("published", "failures"):
        st0[key], st1[key] = pt0[key], pt1[key]
    elapsed = st1["t"] - st0["t"]
    await publisher.command("rate 0")
    await asyncio.sleep(1.0)

    def per_s(key: str) -> float:
        return float((st1[key] - st0[key]) / elapsed)

    published = per_s("published")
    offered = per_s("deliveries")  # handed to an outbox
    conflated = per_s("conflated")
    p99 = pct(tally.latencies, 0.99)
    return {
        "rate": rate,
        "published_per_s": round(published),
        "broker_messages_in_per_s": round(per_s("messages_in")),
        "offered_deliveries_per_s": round(offered),
        "conflated_per_s": round(conflated),
        "conflated_pct": round(100 * conflated / offered, 1) if offered else 0.0,
        "received_deliveries_per_s": round(tally.count / elapsed),
        "p50_ms": pct(tally.latencies, 0.50),
        "p99_ms": p99,
        "server_cpu_pct": round(100 * (s1 - s0) / elapsed, 1),
        "client_cpu_pct": round(100 * (c1 - c0) / elapsed, 1),
        "publisher_cpu_pct": round(100 * (p1 - p0) / elapsed, 1)
        if publisher is not server
        else None,
        "publish_failures": st1["failures"] - st0["failures"],
        "slow_consumer_closes": st1["slow_consumer_closes"],
        "kept_up": published >= 0.95 * rate
        and per_s("messages_in") >= 0.95 * published
        and p99 <= P99_LIMIT_MS,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


async def one_run(args: argparse.Namespace, run_index: int) -> dict[str, Any]:
    seed = args.seed + run_index
    await clean_redis()
    subscriptions = zipf_subscriptions(args.clients, seed)
    popularity = [sum(s in subs for subs in subscriptions) for s in SYMBOLS]
    server = await start_rate_server("hub-market", seed)
    # Separate publisher (the usual deployment: a market-data feed publishes to Redis, the
    # WebSocket node only fans out), or the WebSocket process publishes itself.
    publisher = server
    if args.publisher == "separate":
        publisher = await start_rate_server("publisher", seed)
    tally = Tally()

    def subscribe(client: Client) -> Any:
        channels = subscriptions[client.index]
        return msgspec.json.encode({"action": "subscribe", "channels": channels}), len(channels)

    steps: list[dict[str, Any]] = []
    try:
        clients, errors = await connect_many(
            server.port, args.clients, hub_handler(tally, subscribe), 1, hub=True, concurrency=50
        )
        await asyncio.sleep(1.0)
        for rate in args.rates:
            steps.append(await step(server, publisher, tally, rate, args))
            print(f"run {run_index + 1}: {steps[-1]}", file=sys.stderr, flush=True)
        alive = sum(1 for c in clients if not c.closed.done())
        close_all(clients)
    finally:
        await server.stop()
        if publisher is not server:
            await publisher.stop()
        deleted = await clean_redis()
    return {
        "connected": len(clients),
        "open_errors": len(errors),
        "alive_at_end": alive,
        "subscribers_per_channel_max_median_min": [
            max(popularity),
            statistics.median(popularity),
            min(popularity),
        ],
        "redis_keys_deleted": deleted,
        "steps": steps,
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for run_index in range(args.runs):
        runs.append(await one_run(args, run_index))
        await asyncio.sleep(2.0)
    summary = {}
    for i, rate in enumerate(args.rates):
        rows = [r["steps"][i] for r in runs]
        summary[str(rate)] = {
            key: statistics.median(row[key] for row in rows)
            for key in rows[0]
            if key not in ("rate", "kept_up")
        } | {"kept_up_runs": sum(row["kept_up"] for row in rows), "runs": len(rows)}
    return {"summary": summary, "runs": runs}


if __name__ == "__main__":
    found = parser(__doc__, clients=1_000)
    found.add_argument("--rates", default="2000,5000", help="quotes/s, total")
    found.add_argument("--step", type=float, default=8.0, help="seconds measured")
    found.add_argument("--warmup", type=float, default=2.0, help="seconds before")
    found.add_argument("--publisher", choices=["separate", "same"], default="separate")
    arguments = found.parse_args()
    arguments.rates = [int(r) for r in str(arguments.rates).split(",")]
    run("market", arguments, lambda limit: measure(arguments))
