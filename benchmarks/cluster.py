"""How do one node's fan-out and the publish path change between a single Redis and a 3-shard
Redis Cluster, measured in the same run?

Both Redis layouts are started by this script on free ports, same redis-server binary, nothing
persisted, and live through the whole run: `single` (one redis-server) and `cluster` (3 masters
with a replica each: tests/integration/cluster/redis_cluster.py). The streaming broker reaches
them by URL (`...?prefix=P` and `...?prefix=P&cluster=true`: sharded pub/sub, a hash tag per
channel, and a reliable publish that WAITs for one replica). Within a run every case is measured
on both, the first one alternating between runs; each run has its own key prefix, whose keys
are deleted at its end.

1. Publish path: one open-loop publisher process (harness/publisher.py: its own Engine, one
   broker call per publication as `hub feed` makes, 200 channels round robin) at each offered
   rate in --rates, latest-value quotes and, separately, reliable publications. Per step:
   achieved rate, publish-call latency p50/p99 from each publication's due time, the
   publisher's CPU and Redis' CPU (every redis-server process, replicas included) per
   publication, and WAITs per publication (from the masters' INFO commandstats). Publisher on
   core 0, Redis on core 1.
2. One node's fan-out: Hub's engine serving /ws in its own process pinned to core 0 (the
   market-watch node of fanout_scale_market) on the broker, a publisher of quotes on 200
   latest-value channels, and WebSocket clients in this process; publisher, clients and Redis
   on core 1. Shapes: `watch`, --clients (1,000) each subscribed to 20 of the 200 channels
   (Zipf-popular, seeded, as fanout_scale_market), one quote per broker call; `fanin`, one
   client subscribed to all 200 and quotes published 20 per call (publish_many), so that what
   the node pays to read publications from Redis dominates, not the fan-out, and the publisher
   costs less per quote. Per step: published, read from Redis, offered, conflated and received per
   second, end-to-end latency p50/p99 (due time of the quote to its arrival), each process's
   CPU and both cores' busy %. Kept up: published >= 95% of the rate, the node read >= 95% of
   it from Redis, p99 <= 50 ms; knee: the highest rate kept up in most runs.

--warmup s then --step s measured per step, --settle s idle after. Redis' idle CPU (gossip,
cron) is measured at each run's start and reported beside it.

    python benchmarks/cluster.py                  # 3 runs
    python benchmarks/cluster.py --quick          # one short smoke run, not a figure
    python benchmarks/cluster.py --chart benchmarks/results/cluster-DATE.json

JSON and PNG: benchmarks/results/cluster-DATE.{json,png} (or --out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.cluster_report import SHAPES, TARGETS, plot, summarize
from harness.config import CLIENT_CPUS, SERVER_CPUS
from harness.market_server import zipf_subscriptions
from harness.procs import raise_nofile
from harness.publisher import start_publisher
from harness.rate_servers import RateServer, start_rate_server
from harness.redis_targets import RedisTarget, Window, cpu_list, started
from harness.report import environment, finish, head, load_average, out_flag
from harness.stats import percentile_at_index
from harness.wsclient import Client, Tally, close_all, connect_many, hub_handler

P99_LIMIT_MS = 50.0


def redis_figures(cpu: dict[str, Any], published: int, idle_pct: float) -> dict[str, Any]:
    """Redis' CPU over a window: % of a core, and per publication (all of it, and net of the
    target's idle CPU)."""
    seconds = sum(cpu["redis"].values())
    net = max(0.0, seconds - idle_pct / 100 * cpu["wall"])

    def per_pub(s: float) -> float | None:
        return round(s / published * 1e6, 2) if published else None

    return {
        "redis_cpu_pct": round(100 * seconds / cpu["wall"], 1),
        "redis_masters_cpu_pct": round(100 * cpu["redis"]["master"] / cpu["wall"], 1),
        "redis_cpu_us_per_pub": per_pub(seconds),
        "redis_cpu_us_per_pub_net_of_idle": per_pub(net),
        "redis_replicas_cpu_us_per_pub": per_pub(cpu["redis"]["replica"]),
    }


def bottleneck(own: str, pct: float, cores: list[float], args: argparse.Namespace) -> str | None:
    """What was saturated over a step: the process under test (>= 90% of a core), else a
    pinned core >= 95% busy (its own core shared with something else; or the other core: Redis,
    and in the fan-out the publisher and the clients too), else nothing."""
    if pct >= 90:
        return own
    for spec in (args.server_cpus, args.client_cpus):
        mine = [c for c in cpu_list(spec) if c < len(cores)] if spec else []
        if mine and all(cores[c] >= 95 for c in mine):
            return f"core {spec}"
    return None


async def publish_step(
    target: RedisTarget, publisher: RateServer, rate: int, idle: float, args: argparse.Namespace
) -> dict[str, Any]:
    await publisher.rate(rate)
    await asyncio.sleep(args.warmup)
    await publisher.command("mark")
    s0 = await publisher.stats()
    window = Window(target, {"publisher": publisher})
    await asyncio.sleep(args.step)
    s1 = await publisher.stats()
    cpu = window.close()
    await publisher.rate(0)
    await asyncio.sleep(args.settle)
    elapsed = s1["t"] - s0["t"]
    published = s1["published"] - s0["published"]
    achieved = published / elapsed
    failures = s1["failures"] - s0["failures"]
    publisher_pct = round(100 * cpu["procs"]["publisher"] / cpu["wall"], 1)
    return {
        "rate": rate,
        "achieved_per_s": round(achieved),
        "skipped_per_s": round((s1["skipped"] - s0["skipped"]) / elapsed),
        "failures": failures,
        "p50_ms": s1["p50_ms"],
        "p99_ms": s1["p99_ms"],
        "max_ms": s1["max_ms"],
        "publisher_cpu_pct": publisher_pct,
        "publisher_cpu_us_per_pub": round(cpu["procs"]["publisher"] / published * 1e6, 1)
        if published
        else None,
        **redis_figures(cpu, published, idle),
        "replica_waits_per_pub": round(cpu["calls"].get("wait", 0) / published, 3)
        if published
        else None,
        "core_busy_pct": cpu["cores"],
        "saturated": bottleneck("publisher", publisher_pct, cpu["cores"], args),
        "kept_up": achieved >= 0.95 * rate and failures == 0,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


async def publish_case(
    target: RedisTarget, prefix: str, kind: str, idle: float, seed: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One publisher of `kind` on `target`, climbing the rates."""
    publisher = await start_publisher(
        target.broker_url(prefix), kind, batch=args.publish_batch, seed=seed, cpus=args.server_cpus
    )
    steps = []
    try:
        for rate in args.rates:
            steps.append(await publish_step(target, publisher, rate, idle, args))
            print(f"  publish {kind} {target.name}: {steps[-1]}", file=sys.stderr, flush=True)
    finally:
        await publisher.stop()
    return {"publications_per_call": args.publish_batch, "steps": steps}


def pct(values: list[float], q: float) -> float:
    return round(percentile_at_index(values, q) * 1000, 2)


async def fanout_step(
    target: RedisTarget,
    node: RateServer,
    publisher: RateServer,
    tally: Tally,
    rate: int,
    idle: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    await publisher.rate(rate)
    await asyncio.sleep(args.warmup)
    p0, n0 = await publisher.stats(), await node.stats()
    window = Window(target, {"node": node, "publisher": publisher})
    tally.count, tally.latencies, tally.recording = 0, [], True
    await asyncio.sleep(args.step)
    tally.recording = False
    p1, n1 = await publisher.stats(), await node.stats()
    cpu = window.close()
    await publisher.rate(0)
    await asyncio.sleep(args.settle)
    node_s, pub_s = n1["t"] - n0["t"], p1["t"] - p0["t"]
    published = p1["published"] - p0["published"]

    def node_per_s(key: str) -> float:
        return float((n1[key] - n0[key]) / node_s)

    def share(seconds: float) -> float:
        return round(100 * seconds / float(cpu["wall"]), 1)

    offered, messages_in = node_per_s("deliveries"), node_per_s("messages_in")
    p99 = pct(tally.latencies, 0.99)
    node_pct = share(cpu["procs"]["node"])
    return {
        "rate": rate,
        "published_per_s": round(published / pub_s),
        "messages_in_per_s": round(messages_in),
        "offered_deliveries_per_s": round(offered),
        "conflated_pct": round(100 * node_per_s("conflated") / offered, 1) if offered else 0.0,
        "received_per_s": round(tally.count / cpu["wall"]),
        "p50_ms": pct(tally.latencies, 0.50),
        "p99_ms": p99,
        "node_cpu_pct": node_pct,
        "node_cpu_us_per_message_in": round(node_pct / 100 / messages_in * 1e6, 1)
        if messages_in
        else None,
        "publisher_cpu_pct": share(cpu["procs"]["publisher"]),
        "client_cpu_pct": share(cpu["client"]),
        **redis_figures(cpu, published, idle),
        "core_busy_pct": cpu["cores"],
        "saturated": bottleneck("node", node_pct, cpu["cores"], args),
        "publish_failures": p1["failures"] - p0["failures"],
        "publish_skipped": p1["skipped"] - p0["skipped"],
        "slow_consumer_closes": n1["slow_consumer_closes"],
        "kept_up": published / pub_s >= 0.95 * rate
        and messages_in >= 0.95 * published / pub_s
        and p99 <= P99_LIMIT_MS,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


async def fanout_case(
    target: RedisTarget, prefix: str, shape: str, idle: float, seed: int, args: argparse.Namespace
) -> dict[str, Any]:
    """A node on `target` with the shape's clients, its publisher climbing the rates."""
    clients_n, per_client, batch = SHAPES[shape]
    clients_n = args.clients if shape == "watch" else clients_n
    subscriptions = zipf_subscriptions(clients_n, seed, per_client)
    url = target.broker_url(prefix)
    tally = Tally()

    def subscribe(client: Client) -> Any:
        channels = subscriptions[client.index]
        return msgspec.json.encode({"action": "subscribe", "channels": channels}), len(channels)

    node = await start_rate_server("hub-market", seed, broker=url, cpus=args.server_cpus)
    clients: list[Client] = []
    errors: list[str] = []
    steps: list[dict[str, Any]] = []
    alive = 0
    try:
        cpus = args.client_cpus
        publisher = await start_publisher(url, "latest", batch=batch, seed=seed, cpus=cpus)
        try:
            clients, errors = await connect_many(
                node.port, clients_n, hub_handler(tally, subscribe), 1, hub=True, concurrency=50
            )
            await asyncio.sleep(1.0)
            for rate in args.watch_rates if shape == "watch" else args.fanin_rates:
                steps.append(await fanout_step(target, node, publisher, tally, rate, idle, args))
                print(f"  {shape} {target.name}: {steps[-1]}", file=sys.stderr, flush=True)
            alive = sum(1 for c in clients if not c.closed.done())
        finally:
            close_all(clients)
            await publisher.stop()
    finally:
        await node.stop()
    return {
        "clients": clients_n,
        "channels_per_client": per_client,
        "publications_per_call": batch,
        "connected": len(clients),
        "open_errors": errors[:5],
        "alive_at_end": alive,
        "steps": steps,
    }


async def idle_cpu(targets: dict[str, RedisTarget], seconds: float) -> dict[str, float]:
    """Each target's Redis CPU, % of a core, with nothing to do (cluster gossip, cron)."""
    before = {name: sum(t.cpu().values()) for name, t in targets.items()}
    await asyncio.sleep(seconds)
    return {
        name: round(100 * (sum(t.cpu().values()) - before[name]) / seconds, 2)
        for name, t in targets.items()
    }


async def one_run(
    targets: dict[str, RedisTarget], run: int, args: argparse.Namespace
) -> dict[str, Any]:
    order = TARGETS if run % 2 == 0 else TARGETS[::-1]
    prefixes = {name: f"bench-cluster-{uuid.uuid4().hex[:8]}:" for name in TARGETS}
    seed = args.seed + run
    result: dict[str, Any] = {"order": list(order), "publish": {}, "fanout": {}}
    try:
        idle = result["redis_idle_cpu_pct"] = await idle_cpu(targets, args.idle)
        for kind in args.kinds if "publish" in args.phases else ():
            result["publish"][kind] = {
                name: await publish_case(
                    targets[name], prefixes[name], kind, idle[name], seed, args
                )
                for name in order
            }
        for shape in args.shapes if "fanout" in args.phases else ():
            result["fanout"][shape] = {
                name: await fanout_case(
                    targets[name], prefixes[name], shape, idle[name], seed, args
                )
                for name in order
            }
    finally:
        result["redis_keys_deleted"] = {
            name: await targets[name].delete_keys(prefix) for name, prefix in prefixes.items()
        }
    return result


def redis_version() -> str:
    done = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
    return done.stdout.strip()


async def main(args: argparse.Namespace) -> None:
    task = asyncio.current_task()
    assert task is not None
    # SIGTERM cancels the run, so that the finally blocks stop every process they started.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    raise_nofile()
    pinned = (os.cpu_count() or 1) >= 2
    args.server_cpus, args.client_cpus = (SERVER_CPUS, CLIENT_CPUS) if pinned else (None, None)
    if pinned:  # this process (the clients) and the Redis processes it starts
        os.sched_setaffinity(0, cpu_list(CLIENT_CPUS))
    load_at_start = load_average()
    runs: list[dict[str, Any]] = []
    async with started(cpu_list(CLIENT_CPUS) if pinned else None) as targets:
        layout = {
            name: {str(p): role for p, role in t.roles.items()} for name, t in targets.items()
        }
        for run in range(args.runs):
            print(f"run {run + 1}/{args.runs}", file=sys.stderr, flush=True)
            runs.append(await one_run(targets, run, args))
    env = environment(["redis", "msgspec", "uvicorn", "starlette", "psutil"])
    env["versions"]["redis-server"] = redis_version()
    report = {
        **head("cluster", __doc__),
        "settings": {k: v for k, v in vars(args).items() if k not in ("chart", "out")},
        "layout": layout,
        "environment": env,
        "load_average": {"start": load_at_start, "end": load_average()},
        "runs": runs,
        "summary": summarize(runs),
    }
    finish("cluster", report, args.out, plot)


def chart(paths: list[str]) -> None:
    for p in paths:
        report = json.loads(Path(p).read_text())
        report["summary"] = summarize(report["runs"])
        Path(p).write_text(json.dumps(report, indent=2) + "\n")
        print(plot(report, Path(p).with_suffix(".png")))


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rates", type=ints, default=ints("1000,2000,4000,7000,10000,15000"))
    parser.add_argument("--watch-rates", type=ints, default=ints("250,500,1000,2000,4000"))
    parser.add_argument("--fanin-rates", type=ints, default=ints("2000,5000,10000,15000,20000"))
    parser.add_argument("--clients", type=int, default=1000, help="the watch shape's clients")
    parser.add_argument("--publish-batch", type=int, default=1, help="publications per call")
    parser.add_argument("--phases", type=lambda s: s.split(","), default=["publish", "fanout"])
    parser.add_argument("--kinds", type=lambda s: s.split(","), default=["latest", "reliable"])
    parser.add_argument("--shapes", type=lambda s: s.split(","), default=list(SHAPES))
    parser.add_argument("--step", type=float, default=6.0, help="seconds measured per step")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each step")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds idle after")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of idle Redis CPU")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="one short smoke run (~1 min)")
    parser.add_argument("--chart", nargs="+", help="recompute and redraw saved results")
    out_flag(parser, "cluster")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.rates, args.watch_rates = 1, [2000, 10000], [2000]
        args.fanin_rates, args.clients, args.step, args.warmup = [10000], 200, 1.5, 0.5
        args.settle, args.idle = 0.3, 1.0
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.chart:
        chart(arguments.chart)
    else:
        asyncio.run(main(arguments))
