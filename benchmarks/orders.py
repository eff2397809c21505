"""In services mode, how many orders/s go from submit to filled end to end, and how do the submit
latency and the submit-to-filled-event-on-the-socket latency grow with the offered load?

Candidates (each started fresh per run, in a fresh schema and Redis database):

- services-1w:     `hub serve` + 1 `hub worker` + `hub feed` on PostgreSQL, Redis, RabbitMQ
- services-2w:     the same with 2 `hub worker` processes (on 2 cores: serve, two workers,
                   feed, the services and this load generator all compete for those 2 cores)
- services-inproc: PostgreSQL + Redis, no RabbitMQ: the order worker runs inside `hub serve`
                   (HUB_WORKER_IN_PROCESS=true, in-memory work queue); not a production layout,
                   measured so the durable path can be compared with and without the broker hop
- embedded:        `hub serve` alone, everything in memory
- peer-insert:     a minimal Starlette endpoint that verifies the same JWT, decodes the same body
                   and does one INSERT into PostgreSQL per request: the floor of a durable submit
                   (submit latency only: nothing is ever filled)

Workload: --users (500) registered users plus one "hot" account, each with its own WebSocket on
/ws subscribed to `orders`; market buys of 1 share of 8 liquid stocks, round-robin over users and
symbols (seeded order). Every step is open loop (request i is due at start + i/rate whatever
happened before; latency runs from that due time, so waiting for a connection counts).

1. ladder: one step per offered rate in --rates (100 ... 1,500/s), --duration s each after a
   warm-up: accepted (202) and shed (503) per second, submit latency of the accepted ones,
   submit-to-`filled`-on-the-socket latency, fills/s arriving while the load is offered.
2. hot account: the crowd at --hot-rate (200/s) alone, then the crowd plus the hot account
   submitting --hot-rate more on its own: the crowd's latency must not move, the hot account
   must not starve.
3. overload: 3x the highest fill rate the ladder reached: how many are shed (503 with
   Retry-After), the latency of the accepted ones, and `hub serve`'s memory (sampled 2x/s).

The JSON goes to benchmarks/results/orders-DATE.json and the curve (latency and throughput
against offered load, Hub beside the peer) to the PNG next to it.

    python benchmarks/orders.py                   # full: every candidate, 3 runs
    python benchmarks/orders.py --quick           # 3 s steps, 1 run, 100 users
    python benchmarks/orders.py --only embedded,services-1w --profile

The load generator, Hub's processes and the services share the host's 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.config import POSTGRES_URL, RESULTS
from harness.httpload import load_flags
from harness.hub import Hub, run_hub
from harness.orderflow import SYMBOLS, Sockets, order_requests, progress, step
from harness.orders_report import CANDIDATES, TARGETS, plot, summarize
from harness.peers import start_peer
from harness.profiling import record_each
from harness.report import environment, finish, head, load_average, out_flag
from harness.services import fresh_schema, new_keys_deleted, services_env
from harness.users import issue_token, register_and_login

REDIS_DB = 12
PACKAGES: tuple[str, ...]
PACKAGES = ("starlette", "uvicorn", "uvloop", "httptools", "msgspec", "redis", "asyncpg")
PACKAGES += ("aio-pika", "aiormq", "websockets", "PyJWT", "psutil")
PROFILES = RESULTS / "profiles"

# --- a candidate ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def start_candidate(
    name: str, schema_url: str, args: argparse.Namespace
) -> AsyncIterator[Hub]:
    common = {
        "HUB_PAPER_CASH": "1000000000",
        "HUB_LOGIN_LIMIT_PER_CLIENT": "100000",
        "HUB_REGISTER_LIMIT_PER_CLIENT": "100000",
        "HUB_LOG_LEVEL": "warning",
    }
    if name == "embedded":
        async with run_hub({**common, "HUB_DEMO": "false"}) as hub:
            yield hub
    elif name == "services-inproc":
        env = services_env(schema_url, REDIS_DB, amqp=False, **common)
        env["HUB_WORKER_IN_PROCESS"] = "true"
        async with run_hub(env, feed=True, migrate_first=True) as hub:
            yield hub
    else:
        workers = 2 if name == "services-2w" else 1
        env = services_env(schema_url, REDIS_DB, amqp=True, **common)
        async with run_hub(env, workers=workers, feed=True, migrate_first=True) as hub:
            yield hub


async def bench_hub(name: str, run: int, args: argparse.Namespace) -> dict[str, Any]:
    async with fresh_schema() as schema_url, start_candidate(name, schema_url, args) as hub:
        emails = [f"bench-{uuid.uuid4().hex[:8]}-{k}@example.com" for k in range(args.users + 1)]
        logins = await register_and_login(hub.url, emails)
        tokens = [logins[e]["access_token"] for e in emails]
        sockets = Sockets()
        await sockets.open(hub.url.replace("http://", "ws://") + "/ws", tokens)
        try:
            crowd = order_requests(tokens[1:], args.seed + run)
            hot = order_requests(tokens[:1], args.seed + run + 1000)
            pids = hub.pids()
            ladder = []
            for rate in args.rates:
                profilers = []
                if args.profile and run == 0 and rate == args.profile_rate:
                    profilers = await record_each(
                        pids, args.warmup + args.duration, Path(args.profile_dir), f"orders-{name}"
                    )
                row = await step(hub.port, crowd, sockets, rate, args, pids)
                for p in profilers:
                    await p.wait()
                ladder.append(row)
                progress(name, row)
            alone = await step(hub.port, crowd, sockets, args.hot_rate, args, pids)
            with_hot = await step(
                hub.port, crowd, sockets, args.hot_rate, args, pids, hot=hot, hot_rate=args.hot_rate
            )
            progress(f"{name} crowd+hot", with_hot)
            capacity = max(r.get("filled_per_s_during_offer", 0.0) for r in ladder) or 100.0
            over = await step(hub.port, crowd, sockets, 3 * capacity, args, pids)
            progress(f"{name} 3x", over)
        finally:
            await sockets.close()
        return {
            "candidate": name,
            "ladder": ladder,
            "hot_account": {"crowd_alone": alone, "crowd_with_hot": with_hot},
            "overload": {"capacity_fills_per_s": capacity, **over},
        }


async def bench_peer(run: int, args: argparse.Namespace) -> dict[str, Any]:
    tokens = [issue_token() for _ in range(args.users)]
    logdir = Path(tempfile.mkdtemp(prefix="orders-peer-"))
    async with (
        fresh_schema() as schema_url,
        start_peer("peer-insert", "--database-url", schema_url, logdir=logdir, log_name="peer") as (
            port,
            proc,
        ),
    ):
        requests = order_requests(tokens, args.seed + run)
        pids = {"server": proc.pid}
        ladder = []
        for rate in args.rates:
            ladder.append(await step(port, requests, None, rate, args, pids))
            progress("peer-insert", ladder[-1])
    return {"candidate": "peer-insert", "ladder": ladder}


async def main(args: argparse.Namespace) -> None:
    load_at_start = load_average()
    candidates = [c for c in args.only.split(",") if c]
    runs: list[list[dict[str, Any]]] = []
    async with new_keys_deleted(REDIS_DB):  # every candidate's Redis keys, after the last run
        for run in range(args.runs):
            rows = []
            for name in candidates:
                print(f"run {run + 1}/{args.runs}: {name} ...", file=sys.stderr, flush=True)
                try:
                    if name == "peer-insert":
                        row = await bench_peer(run, args)
                    else:
                        row = await bench_hub(name, run, args)
                except Exception as exc:  # a candidate that cannot start is reported, not fatal
                    row = {"candidate": name, "error": f"{type(exc).__name__}: {exc}"[:2000]}
                    print(f"  failed: {row['error'][:500]}", file=sys.stderr, flush=True)
                rows.append(row)
            runs.append(rows)
    report = {
        **head("orders", __doc__),
        "settings": {
            "users": args.users,
            "symbols": list(SYMBOLS),
            "order": "market buy, qty 1",
            "rates_per_s": args.rates,
            "hot_rate_per_s": args.hot_rate,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "seed": args.seed,
            "runs": args.runs,
            "hub_env": {
                "HUB_PAPER_CASH": "1000000000",
                "HUB_LOGIN_LIMIT_PER_CLIENT": "100000",
                "HUB_REGISTER_LIMIT_PER_CLIENT": "100000",
            },
            "postgres": POSTGRES_URL,
            "targets": TARGETS,
        },
        "host": {**environment(PACKAGES), "load_average_at_start": load_at_start},
        "summary": summarize(runs, args),
        "runs": runs,
    }
    finish("orders", report, args.out, plot)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    load_flags(parser, duration=8.0, quick="3 s steps, 1 run, 100 users")
    parser.add_argument(
        "--rates", default="100,250,500,750,1000,1500", help="offered orders/s, one step each"
    )
    parser.add_argument("--users", type=int, default=500, help="accounts (plus one hot one)")
    parser.add_argument("--hot-rate", type=float, default=200.0, help="hot account's orders/s")
    parser.add_argument("--profile-rate", type=float, default=500.0, help="step py-spy records")
    parser.add_argument("--only", default=",".join(CANDIDATES))
    parser.add_argument("--profile", action="store_true", help="py-spy one step (first run)")
    parser.add_argument("--profile-dir", default=str(PROFILES), help="where the profiles go")
    out_flag(parser, "orders")
    parser.add_argument("--chart", help="re-render this JSON's chart (PNG beside it), exit")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.runs, args.users = 3.0, 1.0, 1, 100
    args.rates = [float(r) for r in args.rates.split(",") if r]
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.chart:
        source = Path(arguments.chart)
        print(plot(json.loads(source.read_text()), source.with_suffix(".png")))
    else:
        import uvloop

        uvloop.run(main(arguments))
