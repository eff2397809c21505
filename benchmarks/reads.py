"""What does each authenticated GET route of Hub's API cost in services mode: throughput, latency
and `hub serve` CPU per request, at a fixed open-loop rate, against a minimal peer?

Services mode: `hub serve` + 1 `hub worker` + `hub feed` on PostgreSQL, Redis (its own database,
10) and RabbitMQ, in a fresh schema. Before anything is measured, --users users are registered
and logged in through the API and given state through the API: four market buys that fill (two
stocks, one ETF, one crypto: every portfolio has three categories), one resting limit buy (5%
under the bid, good till cancelled: an open order and reserved cash), and their default
watchlist set to 10 symbols. The API has no deposit route: an account opens with
HUB_PAPER_CASH.

Then every authenticated GET route, one after the other (the order rotates between runs), gets
the same open-loop load: --rate requests/s for --duration s after --warmup s, over --connections
keep-alive connections, requests spread over every user's token (and, for the per-order routes,
over every order of that user). Recorded per route: answered/s, status codes (anything not 2xx is
a finding), p50/p99 latency from the due time, `hub serve` CPU per request (its CPU time over the
span / requests completed in it; also net of the process's idle CPU, measured per run), the load
generator's CPU, and PostgreSQL's and Redis' CPU over the same span.

The yardstick, measured in the same run with the same load: `peer`, a minimal Starlette app in
its own process under the uvicorn settings `hub serve` uses (uvloop, httptools, no access log)
that verifies the same HS256 JWT with PyJWT on every request and answers the caller's account
row (one SELECT on the unique index accounts.user_id through an asyncpg pool sized like Hub's) as
JSON. Every route's CPU/request is reported as a ratio to the peer's.

    python benchmarks/reads.py                 # 3 runs, 500 req/s, 8 s per route
    python benchmarks/reads.py --quick         # 1 short run, 100 users
    python benchmarks/reads.py --only /api/v1/portfolio,/getBalance --runs 1
    python benchmarks/reads.py --profile 3     # then py-spy on `hub serve` for the 3 costliest

JSON to benchmarks/results/reads-DATE.json, the chart (CPU us/request per route, the peer's as a
vertical line) next to it; profiles (py-spy raw stacks and a summary) under
benchmarks/results/profiles/reads/. Everything shares the host's cores with the load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import cost
from harness.config import RESULTS
from harness.cpu import idle_cpu
from harness.httpload import http_request, load_flags
from harness.hub import Hub, run_hub
from harness.peers import start_peer
from harness.profiling import profile_route
from harness.report import environment, finish, head, load_average, out_flag
from harness.services import fresh_schema, new_keys_deleted, services_env
from harness.users import User, users_given_state

# 11 market_data, 12 orders, 13 fanout_real_* and soak, 14 fanout_scale_market, 15 the tests.
REDIS_DB = 10
PROFILES = RESULTS / "profiles" / "reads"
PACKAGES: tuple[str, ...]
PACKAGES = ("starlette", "uvicorn", "uvloop", "httptools", "msgspec", "redis", "asyncpg")
PACKAGES += ("aio-pika", "PyJWT", "psutil", "prometheus-client", "py-spy", "matplotlib")
PEER = "peer"
PEER_LABEL = "peer (Starlette: PyJWT verify + 1 SELECT by key, asyncpg)"
HUB_SETTINGS = {
    "HUB_MARKET_HOURS": "always",  # market orders fill at any hour
    "HUB_LOGIN_LIMIT_PER_CLIENT": "100000",  # every login comes from 127.0.0.1
    "HUB_REGISTER_LIMIT_PER_CLIENT": "100000",  # and every registration
    "HUB_ACCESS_TOKEN_TTL": "3600",  # the tokens must outlive the run (default 900 s)
}

# --- the routes ---------------------------------------------------------------------------------

WEEK_AGO = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")


# route key (what --only takes) -> the paths one user asks for (the generator cycles over every
# user's paths, shuffled). The legacy routes answer any method; GET is what is measured.
PathsOf = Callable[[User, list[str]], list[str]]
ROUTES: dict[str, PathsOf] = {
    "/api/v1/auth/me": lambda u, s: ["/api/v1/auth/me"],
    "/api/v1/account": lambda u, s: ["/api/v1/account"],
    "/api/v1/positions": lambda u, s: ["/api/v1/positions"],
    "/api/v1/portfolio": lambda u, s: ["/api/v1/portfolio"],
    "/api/v1/instruments": lambda u, s: ["/api/v1/instruments"],
    "/api/v1/instruments/{symbol}": lambda u, s: [f"/api/v1/instruments/{x}" for x in s],
    "/api/v1/market-data": lambda u, s: ["/api/v1/market-data?symbols=" + ",".join(u.watchlist)],
    # A quote read of one symbol: the yardstick of the bar queries (issue 14).
    "/api/v1/market-data?one": lambda u, s: [f"/api/v1/market-data?symbols={x}" for x in s],
    # The most recent 1,000 minute bars (no start: the recent-bars cache's path) ...
    "/api/v1/instruments/{symbol}/bars": lambda u, s: [
        f"/api/v1/instruments/{x}/bars?timeframe=1Min&limit=1000" for x in s
    ],
    # ... and 1,000 from a week back (a start: every request reads PostgreSQL).
    "/api/v1/instruments/{symbol}/bars?start": lambda u, s: [
        f"/api/v1/instruments/{x}/bars?timeframe=1Min&limit=1000&start={WEEK_AGO}" for x in s
    ],
    "/api/v1/orders": lambda u, s: ["/api/v1/orders?status=all"],
    "/api/v1/orders/{order_id}": lambda u, s: [f"/api/v1/orders/{o}" for o in u.orders],
    "/api/v1/orders/{order_id}/events": lambda u, s: [
        f"/api/v1/orders/{o}/events" for o in u.orders
    ],
    "/api/v1/watchlists": lambda u, s: ["/api/v1/watchlists"],
    "/api/v1/watchlists/{watchlist_id}": lambda u, s: [f"/api/v1/watchlists/{u.watchlist_id}"],
    "/getBalance": lambda u, s: ["/getBalance"],
    "/getAucAggregation": lambda u, s: ["/getAucAggregation"],
    "/getPortfolioSummary": lambda u, s: ["/getPortfolioSummary"],
    "/getMarketData": lambda u, s: ["/getMarketData?symbols=" + ",".join(u.watchlist)],
    "/getWatchlist": lambda u, s: ["/getWatchlist"],
    "/orders/history": lambda u, s: ["/orders/history"],
    "/orders/{order_id}": lambda u, s: [f"/orders/{o}" for o in u.orders],
    "/orders/{order_id}/status": lambda u, s: [f"/orders/{o}/status" for o in u.orders],
}
REQUEST_NOTES = {
    "/api/v1/instruments": "no query: the first 50 (all 34 seeded instruments)",
    "/api/v1/instruments/{symbol}": "every seeded symbol in turn",
    "/api/v1/market-data": "the caller's 10 watchlist symbols in one request",
    "/api/v1/market-data?one": "one symbol a request, every seeded symbol in turn",
    "/api/v1/instruments/{symbol}/bars": "1Min, limit 1000, no start; every symbol in turn",
    "/api/v1/instruments/{symbol}/bars?start": "1Min, limit 1000, start a week back",
    "/api/v1/orders": "status=all (the default, open, would list only the resting limit order)",
    "/getMarketData": "the caller's 10 watchlist symbols in one request",
    "/orders/history": "no query: page 1, limit 20 (every order of the user)",
    "per-order routes": "each of the user's 5 orders in turn (4 filled, 1 resting)",
}


def route_requests(key: str, users: list[User], symbols: list[str], seed: int) -> list[bytes]:
    """Every (user, path) pair of a route as raw HTTP, in a seeded shuffled order."""
    pairs = [(u, p) for u in users for p in ROUTES[key](u, symbols)]
    random.Random(f"{seed}:{key}").shuffle(pairs)
    return [http_request("GET", path, {"Authorization": f"Bearer {u.token}"}) for u, path in pairs]


# --- the report ---------------------------------------------------------------------------------


def summarize(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    return cost.summarize(runs, [PEER, *ROUTES], PEER)


def plot(report: dict[str, Any], path: Path) -> Path:
    return cost.plot(report, path, PEER, PEER_LABEL)


# --- main ---------------------------------------------------------------------------------------


async def history_loaded(url: str, user: User, symbols: list[str]) -> None:
    """`hub feed` backfills the bars in the background at first start: wait for every symbol's
    1,000 most recent minute bars, so no bar route is measured against a partial history."""
    auth = {"Authorization": f"Bearer {user.token}"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        async with asyncio.timeout(120):
            for symbol in symbols:
                path = f"/api/v1/instruments/{symbol}/bars?timeframe=1Min&limit=1000"
                while len((await http.get(path, headers=auth)).json()["bars"]) < 1000:  # noqa: ASYNC110
                    await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def users_with_state(
    args: argparse.Namespace, setup: dict[str, Any]
) -> AsyncIterator[tuple[Hub, dict[str, str], list[User], list[str]]]:
    """Hub in services mode with --users users given state through the API (what was obtained
    goes into `setup`): the hub, its settings, the users, the instruments' symbols."""
    async with fresh_schema() as schema_url:
        env = services_env(schema_url, REDIS_DB, amqp=True, **HUB_SETTINGS)
        async with run_hub(env, workers=1, feed=True, migrate_first=True) as hub:
            users, symbols, obtained = await users_given_state(hub.url, args.users, args.seed)
            await history_loaded(hub.url, users[0], symbols)
            setup.update(obtained)
            print(f"setup: {json.dumps(setup)}", file=sys.stderr, flush=True)
            yield hub, env, users, symbols


async def main(args: argparse.Namespace) -> None:
    load_at_start = load_average()
    started = time.perf_counter()
    keys = [k for k in args.only.split(",") if k] if args.only else list(ROUTES)
    unknown = [k for k in keys if k not in ROUTES]
    if unknown:
        raise SystemExit(f"unknown route(s) {unknown}; choose from {list(ROUTES)}")
    runs: list[list[dict[str, Any]]] = []
    idle: list[float] = []
    profiles: list[dict[str, Any]] = []
    setup: dict[str, Any] = {}
    measure = functools.partial(
        cost.request_cost,
        rate=args.rate,
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
    )
    async with (
        new_keys_deleted(REDIS_DB) as cleaned,
        users_with_state(args, setup) as (hub, env, users, symbols),
    ):
        requests = {k: route_requests(k, users, symbols, args.seed) for k in keys}
        peer_requests = route_requests("/api/v1/account", users, symbols, args.seed)
        logdir = Path(tempfile.mkdtemp(prefix="reads-peer-"))
        peer_args = ("--database-url", env["HUB_DATABASE_URL"])
        async with start_peer(PEER, *peer_args, logdir=logdir) as (peer_port, peer):
            helpers = {p.name: p.pid for p in hub.helpers}
            order = [PEER, *keys]
            for run in range(args.runs):
                shift = run * len(order) // max(args.runs, 1)
                idle.append(await idle_cpu(hub.serve.pid, args.idle_seconds))
                rows = []
                for key in order[shift:] + order[:shift]:
                    if key == PEER:
                        row = await measure(PEER, peer_port, peer_requests, peer.pid, {}, 0.0)
                    else:
                        row = await measure(
                            key, hub.port, requests[key], hub.serve.pid, helpers, idle[-1]
                        )
                    rows.append(row)
                    cost.progress(run, args.runs, row)
                runs.append(rows)
            summary = summarize(runs)
            worst = sorted(
                (k for k in keys if summary[k]["cpu_us_per_req"] is not None),
                key=lambda k: -summary[k]["cpu_us_per_req"],
            )[: args.profile]
            for key in worst:
                print(f"profiling {key} ...", file=sys.stderr, flush=True)
                for native in (False, True):
                    profiles.append(
                        await profile_route(
                            key,
                            hub.port,
                            requests[key],
                            hub.serve.pid,
                            Path(args.profile_dir),
                            rate=args.rate,
                            seconds=args.profile_seconds,
                            connections=args.connections,
                            nonblocking=args.spy_nonblocking,
                            native=native,
                        )
                    )
        logs = {p.name: p.tail(20) for p in [hub.serve, *hub.helpers]}
    report = {
        **head("reads", __doc__),
        "settings": {
            "mode": "services (hub serve + 1 hub worker + hub feed; PostgreSQL, Redis, RabbitMQ)",
            "rate_per_s": args.rate,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "users": args.users,
            "runs": args.runs,
            "seed": args.seed,
            "redis_db": REDIS_DB,
            "requests": REQUEST_NOTES,
            "cpu_per_request": (
                "hub serve's CPU time (user+sys, all threads) from the first request to the last "
                "answer (warm-up included) / requests answered in that span; `net_of_idle` "
                "subtracts the process's idle CPU rate measured before each run"
            ),
            "peer": (
                "Starlette + uvicorn (uvloop, httptools, no access log): PyJWT HS256 verify per "
                "request, one SELECT on accounts.user_id (unique index) through an asyncpg pool "
                "(min 10, max 20, rollback-only reset, as Hub's), msgspec JSON"
            ),
            "hub_env": {k: v for k, v in env.items() if k != "HUB_JWT_SECRET"},
        },
        "host": {**environment(PACKAGES), "load_average_at_start": load_at_start},
        "setup": setup,
        "idle_serve_cpu_pct_per_run": [round(100 * x, 2) for x in idle],
        "summary": summarize(runs),
        "profiles": profiles,
        "redis_keys_deleted": cleaned["deleted"],
        "elapsed_s": round(time.perf_counter() - started, 1),
        "runs": runs,
        "process_log_tails": logs,
    }
    finish("reads", report, args.out, plot)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    load_flags(parser, duration=8.0, quick="1 run, 3 s per route, 100 users")
    parser.add_argument("--rate", type=float, default=500.0, help="offered requests/s per route")
    parser.add_argument("--users", type=int, help="default 300 (100 with --quick)")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="idle CPU baseline")
    parser.add_argument("--only", default="", help="comma-separated route keys (default: all)")
    parser.add_argument(
        "--profile", type=int, default=0, help="py-spy the N costliest routes after the runs"
    )
    parser.add_argument("--profile-seconds", type=float, default=8.0)
    parser.add_argument("--profile-dir", default=str(PROFILES), help="where the profiles go")
    parser.add_argument(
        "--spy-nonblocking",
        action="store_true",
        help="py-spy without pausing the process (less overhead, some torn stacks)",
    )
    out_flag(parser, "reads")
    parser.add_argument("--chart", help="re-summarize this JSON's runs, re-render its chart, exit")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.duration, args.warmup = 1, 3.0, 1.0
    if args.users is None:
        args.users = 100 if args.quick else 300
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.chart:  # recompute the summary from the JSON's runs, rewrite it, re-plot
        source = Path(arguments.chart)
        saved = json.loads(source.read_text())
        saved["summary"] = summarize(saved["runs"])
        source.write_text(json.dumps(saved, indent=2) + "\n")
        print(plot(saved, source.with_suffix(".png")))
    else:
        import uvloop

        uvloop.run(main(arguments))
