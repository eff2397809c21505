"""What does recording bars add to the feed's cost per quote: CPU per quote, with bars on and
off, at each offered quote rate, and the highest rate each keeps up with?

The feed as `hub feed` runs it, in this process: the seeded simulator paced at the offered rate,
every quote stored in Redis (RedisQuotes) and published through the streaming Engine on the
Redis broker (its own database, 9); with bars on, a BarRecorder folds each quote's trade into
the 1Min/5Min/15Min/1Hour/1Day bars of its symbol, publishes the forming minute on
`bars:<SYMBOL>` in the same broker round trip, and writes what changed to PostgreSQL (a fresh,
migrated schema) once a second. "Off" is the same feed without the recorder: the yardstick,
measured in the same run, each rate alternating on and off.

Per step (--seconds at one rate): quotes published, the process's CPU time over the step (the
simulator's Decimal walk included, the same in both), CPU per quote, and Redis' CPU per quote
(INFO cpu). Kept up = at least 95% of the offered rate published.

    python benchmarks/bars_ingest.py                   # 3 runs, rates 250..4000 q/s, 6 s each
    python benchmarks/bars_ingest.py --quick           # one short run
    python benchmarks/bars_ingest.py --chart results/bars_ingest-DATE.json

JSON and PNG: benchmarks/results/bars_ingest-DATE.{json,png} (or --out).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.charts import figure, label
from harness.config import REDIS_BASE
from harness.report import environment, finish, head, load_average, out_flag
from harness.services import fresh_schema, new_keys_deleted

from hub.adapters.clock import SystemClock
from hub.adapters.postgres.bars import PostgresBars
from hub.adapters.postgres.migrations import migrate
from hub.adapters.redis_market import RedisQuotes
from hub.adapters.seed import seed_instruments
from hub.adapters.simulator import Simulator
from hub.adapters.streaming_auth import kind_of
from hub.services.bars import BarRecorder
from hub.services.feed import FeedService
from streaming import AuthenticationFailed, Engine, Principal

REDIS_DB = 9
PREFIX = "bench-bars:"
CONFIGS = ("off", "on")


class NoSubscribers:
    """The Authorizer of an engine that only publishes here."""

    async def authenticate(self, token: str) -> Principal:
        raise AuthenticationFailed("no subscribers in this benchmark")

    def resolve(self, principal: Principal, channel: str) -> str | None:
        return None


async def redis_cpu(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def step(
    config: str, rate: int, seconds: float, engine: Engine, pool: asyncpg.Pool, redis: Any
) -> dict[str, Any]:
    """One feed at `rate` quotes/s for `seconds`, bars on or off."""
    clock = SystemClock()
    instruments = seed_instruments()
    recorder = None
    if config == "on":
        recorder = BarRecorder(
            PostgresBars(pool), clock, [s.instrument.symbol for s in instruments]
        )
        await recorder.open()
    simulator = Simulator(instruments, clock=clock, seed=rate, quotes_per_second=rate)
    feed = FeedService(simulator, RedisQuotes(redis), engine, bars=recorder)
    flushing = asyncio.create_task(recorder.run()) if recorder else None
    cpu0, redis0, wall0 = time.process_time(), await redis_cpu(redis), time.perf_counter()
    feeding = asyncio.create_task(feed.run())
    await asyncio.sleep(seconds)
    # Read everything at the end of the span, before stopping: the feed goes on meanwhile.
    wall, quotes = time.perf_counter() - wall0, feed.published
    cpu, redis_s = time.process_time() - cpu0, await redis_cpu(redis) - redis0
    while not feeding.done():  # on 3.11 a cancel inside redis-py's wait_for can be absorbed
        feeding.cancel()
        await asyncio.wait({feeding}, timeout=0.5)
    if flushing is not None and recorder is not None:
        flushing.cancel()
        await asyncio.gather(flushing, return_exceptions=True)
        await recorder.aclose()
    return {
        "config": config,
        "offered_per_s": rate,
        "published_per_s": round(quotes / wall, 1),
        "kept_up": quotes / wall >= 0.95 * rate,
        "cpu_us_per_quote": round(cpu / quotes * 1e6, 1) if quotes else None,
        "redis_cpu_us_per_quote": round(redis_s / quotes * 1e6, 1) if quotes else None,
        "process_cpu_share": round(cpu / wall, 3),
        "errors": feed.errors,
        "bar_writes": recorder.stats() if recorder else None,
    }


def summarize(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per (config, rate); the highest rate each kept up with in most runs; the ratio of
    CPU per quote on/off at each rate."""
    rows = [r for run in runs for r in run]
    out: dict[str, Any] = {}
    for config in CONFIGS:
        by_rate: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            if r["config"] == config:
                by_rate.setdefault(r["offered_per_s"], []).append(r)
        steps = {
            rate: {
                "cpu_us_per_quote": statistics.median(x["cpu_us_per_quote"] for x in rs),
                "redis_cpu_us_per_quote": statistics.median(
                    x["redis_cpu_us_per_quote"] for x in rs
                ),
                "published_per_s": statistics.median(x["published_per_s"] for x in rs),
                "kept_up_runs": sum(x["kept_up"] for x in rs),
                "runs": len(rs),
            }
            for rate, rs in sorted(by_rate.items())
        }
        kept = [rate for rate, s in steps.items() if 2 * s["kept_up_runs"] > s["runs"]]
        out[config] = {"steps": steps, "highest_rate_kept_up": max(kept, default=None)}
    out["cpu_ratio_on_off"] = {
        rate: round(on["cpu_us_per_quote"] / out["off"]["steps"][rate]["cpu_us_per_quote"], 2)
        for rate, on in out["on"]["steps"].items()
        if rate in out["off"]["steps"]
    }
    return out


def plot(report: dict[str, Any], path: Path) -> Path:
    summary = report["summary"]
    with figure(path, (9, 3.6), ncols=2) as (_, (left, right)):
        for config, style in (("off", "o--"), ("on", "s-")):
            steps = summary[config]["steps"]
            rates = [int(r) for r in steps]
            left.plot(rates, [s["cpu_us_per_quote"] for s in steps.values()], style, label=config)
            right.plot(rates, [s["published_per_s"] for s in steps.values()], style, label=config)
        top = max(int(r) for r in summary["on"]["steps"])
        right.plot([0, top], [0, top], ":", color="grey", label="offered")
        label(left, "offered quotes/s", "feed CPU per quote (us)", "Ingest cost: bars on vs off")
        label(right, "offered quotes/s", "published quotes/s", "Kept up")
    return path


async def main(args: argparse.Namespace) -> None:
    load_at_start = load_average()
    rates = [int(r) for r in args.rates.split(",")]
    runs: list[list[dict[str, Any]]] = []
    broker_url = f"{REDIS_BASE}/{REDIS_DB}?prefix={PREFIX}"
    async with new_keys_deleted(REDIS_DB), fresh_schema() as schema_url:
        pool = await asyncpg.create_pool(schema_url, min_size=2, max_size=4)
        redis = aioredis.from_url(f"{REDIS_BASE}/{REDIS_DB}")
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            async with Engine(broker_url, authorizer=NoSubscribers(), kind_of=kind_of) as engine:
                for run in range(args.runs):
                    rows = []
                    for rate in rates:
                        # Alternate which goes first, so drift in the machine's load is shared.
                        for config in CONFIGS if (run + rate) % 2 else CONFIGS[::-1]:
                            await pool.execute("TRUNCATE bars")
                            row = await step(config, rate, args.seconds, engine, pool, redis)
                            rows.append(row)
                            print(f"run {run + 1}/{args.runs} {row}", file=sys.stderr, flush=True)
                    runs.append(rows)
        finally:
            await redis.aclose()
            await pool.close()
    report = {
        **head("bars_ingest", __doc__),
        "settings": {"rates": rates, "seconds": args.seconds, "runs": args.runs},
        "environment": environment(["asyncpg", "redis", "msgspec"]),
        "load_average": {"start": load_at_start, "end": load_average()},
        "runs": runs,
        "summary": summarize(runs),
    }
    finish("bars_ingest", report, args.out, plot)


def chart(paths: list[str]) -> None:
    for p in paths:
        import json

        report = json.loads(Path(p).read_text())
        report["summary"] = summarize(report["runs"])
        print(plot(report, Path(p).with_suffix(".png")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rates", default="250,500,1000,2000,4000")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--quick", action="store_true", help="1 run, 3 rates, 2 s each")
    parser.add_argument("--chart", nargs="+", help="recompute and redraw saved results")
    out_flag(parser, "bars_ingest")
    args = parser.parse_args()
    if args.chart:
        chart(args.chart)
    else:
        if args.quick:
            args.runs, args.rates, args.seconds = 1, "250,1000,4000", 2.0
        asyncio.run(main(args))
