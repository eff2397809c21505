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
import collections
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    JWT_SECRET,
    REDIS_BASE,
    RESULTS,
    HostCpu,
    Proc,
    environment,
    free_port,
    fresh_schema,
    http_request,
    open_loop,
    register_and_login,
    run_hub,
    services_env,
    spawn,
    stop_all,
    wait_ready,
    write_report,
)

# 11 market_data, 12 orders, 13 fanout_real, 14 fanout_scale, 15 the test suite.
REDIS_DB = 10
PROFILES = RESULTS / "profiles" / "reads"
PACKAGES: tuple[str, ...]
PACKAGES = ("starlette", "uvicorn", "uvloop", "httptools", "msgspec", "redis", "asyncpg")
PACKAGES += ("aio-pika", "PyJWT", "psutil", "prometheus-client", "py-spy", "matplotlib")
PEER = "peer"
HUB_SETTINGS = {
    "HUB_MARKET_HOURS": "always",  # market orders fill at any hour
    "HUB_LOGIN_LIMIT_PER_CLIENT": "100000",  # every login comes from 127.0.0.1
    "HUB_REGISTER_LIMIT_PER_CLIENT": "100000",  # and every registration
    "HUB_ACCESS_TOKEN_TTL": "3600",  # the tokens must outlive the run (default 900 s)
}

# --- the routes ---------------------------------------------------------------------------------


@dataclass
class User:
    email: str
    token: str
    user_id: str = ""
    watchlist_id: str = ""
    watchlist: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)


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


# --- the peer (its own process: `reads.py --serve-peer --port P --database-url URL`) ------------


def serve_peer(port: int, database_url: str) -> None:
    import asyncpg
    import jwt
    import msgspec
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    encoder = msgspec.json.Encoder()
    pool: list[asyncpg.Pool] = []

    async def release(conn: asyncpg.Connection) -> None:  # as Hub's pool does
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool.append(
            await asyncpg.create_pool(
                database_url, min_size=10, max_size=20, command_timeout=30, reset=release
            )
        )
        yield
        await pool[0].close()

    def unauthorized() -> Response:
        body = b'{"status":401,"code":"invalid_token"}'
        return Response(body, 401, media_type="application/problem+json")

    async def account(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return unauthorized()
        try:
            claims = jwt.decode(
                header[7:],
                JWT_SECRET,
                algorithms=["HS256"],
                issuer="hub",
                audience="hub-api",
                options={"require": ["sub", "exp", "iat", "jti", "iss", "aud", "role"]},
            )
        except jwt.InvalidTokenError:
            return unauthorized()
        row = await pool[0].fetchrow(
            "SELECT id, cash, reserved_cash, currency, created_at FROM accounts WHERE user_id = $1",
            uuid.UUID(claims["sub"]),
        )
        if row is None:
            return Response(b'{"status":404,"code":"not_found"}', 404)
        body = {
            "id": row["id"],
            "cash": str(row["cash"]),
            "reserved_cash": str(row["reserved_cash"]),
            "buying_power": str(row["cash"] - row["reserved_cash"]),
            "currency": row["currency"],
            "created_at": row["created_at"],
        }
        return Response(encoder.encode(body), media_type="application/json")

    async def ready(request: Request) -> Response:
        return Response(b"ok")

    app = Starlette(
        routes=[Route("/api/v1/account", account), Route("/readyz", ready)], lifespan=lifespan
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


# --- setup: users with state, through the public API --------------------------------------------


async def api(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    token: str,
    body: Any = None,
    ok: tuple[int, ...] = (200, 201, 202),
    headers: dict[str, str] | None = None,
) -> Any:
    """One call; 429/503 (admission control) are retried after Retry-After (capped)."""
    auth = {"Authorization": f"Bearer {token}", **(headers or {})}
    for _ in range(60):
        r = await http.request(method, path, json=body, headers=auth)
        if r.status_code in (429, 503):
            await asyncio.sleep(min(float(r.headers.get("retry-after", "0.5")), 2.0))
            continue
        if r.status_code not in ok:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None
    raise RuntimeError(f"{method} {path}: still refused after 60 tries")


def to_tick(price: Decimal) -> str:
    return str(price.quantize(Decimal("0.01"), rounding=ROUND_DOWN))


async def give_state(
    url: str, users: list[User], instruments: list[dict[str, Any]], seed: int
) -> dict[str, Any]:
    """Per user: watchlist of 10, 4 market buys (2 stocks, 1 ETF, 1 crypto), 1 resting limit
    buy; then wait until the market buys are filled. Returns what was obtained."""
    t0 = time.perf_counter()
    by_category: dict[str, list[str]] = collections.defaultdict(list)
    for i in instruments:
        by_category[i["category"]].append(i["symbol"])
    symbols = sorted(i["symbol"] for i in instruments)
    crypto_qty = {"BTC-USD": "0.01", "ETH-USD": "0.1", "SOL-USD": "1"}
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        quotes = await api(
            http, "GET", "/api/v1/market-data?symbols=" + ",".join(symbols), users[0].token
        )
        bid = {d["symbol"]: Decimal(d["quote"]["bid"]) for d in quotes["data"] if d.get("quote")}

        async def one(k: int, user: User) -> None:
            rng = random.Random(f"{seed}:{k}")
            async with limit:
                me = await api(http, "GET", "/api/v1/auth/me", user.token)
                user.user_id = me["id"]
                lists = await api(http, "GET", "/api/v1/watchlists", user.token)
                user.watchlist_id = lists[0]["id"]
                user.watchlist = rng.sample(symbols, 10)
                await api(
                    http,
                    "PATCH",
                    f"/api/v1/watchlists/{user.watchlist_id}",
                    user.token,
                    {"symbols": user.watchlist},
                )
                stocks = rng.sample(by_category["stock"], 3)
                buys = [
                    (stocks[0], str(rng.randint(1, 10))),
                    (stocks[1], str(rng.randint(1, 10))),
                    (rng.choice(by_category["etf"]), str(rng.randint(1, 5))),
                ]
                coin = rng.choice(sorted(crypto_qty))
                buys.append((coin, crypto_qty[coin]))
                for symbol, qty in buys:
                    order = {"symbol": symbol, "side": "buy", "type": "market", "qty": qty}
                    key = {"Idempotency-Key": uuid.uuid4().hex}
                    placed = await api(
                        http, "POST", "/api/v1/orders", user.token, order, (202,), key
                    )
                    user.orders.append(placed["id"])
                resting = {
                    "symbol": stocks[2],
                    "side": "buy",
                    "type": "limit",
                    "qty": "1",
                    "limit_price": to_tick(bid[stocks[2]] * Decimal("0.95")),
                    "time_in_force": "gtc",
                }
                key = {"Idempotency-Key": uuid.uuid4().hex}
                placed = await api(http, "POST", "/api/v1/orders", user.token, resting, (202,), key)
                user.orders.append(placed["id"])

        await asyncio.gather(*(one(k, u) for k, u in enumerate(users)))
        submitted_s = time.perf_counter() - t0
        # Wait until every market buy is filled (each user: 4 filled, 1 resting `new`).
        statuses: collections.Counter[str] = collections.Counter()
        deadline = time.perf_counter() + 90
        check = asyncio.Semaphore(16)

        async def count(user: User) -> None:
            async with check:
                page = await api(http, "GET", "/api/v1/orders?status=all", user.token)
                statuses.update(o["status"] for o in page["orders"])

        while True:
            statuses.clear()
            await asyncio.gather(*(count(u) for u in users))
            if statuses["filled"] >= 4 * len(users) or time.perf_counter() > deadline:
                break
            await asyncio.sleep(1)
        sample = users[0]
        positions = await api(http, "GET", "/api/v1/positions", sample.token)
        account = await api(http, "GET", "/api/v1/account", sample.token)
    return {
        "users": len(users),
        "orders_per_user": 5,
        "order_statuses": dict(statuses),
        "watchlist_symbols_per_user": 10,
        "submitted_in_s": round(submitted_s, 1),
        "ready_in_s": round(time.perf_counter() - t0, 1),
        "sample_user": {
            "positions": len(positions),
            "categories": sorted({p["category"] for p in positions}),
            "account": account,
        },
    }


# --- measuring one route ------------------------------------------------------------------------


def cpu_seconds(proc: psutil.Process) -> float:
    try:
        t = proc.cpu_times()
        return float(t.user + t.system)
    except psutil.Error:
        return 0.0


class ServiceCpu:
    """CPU seconds of every process with one of these names (PostgreSQL backends, Redis)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._start: dict[int, float] = {}

    def _now(self) -> dict[int, float]:
        seen = {}
        for p in psutil.process_iter(["name"]):
            if p.info["name"] in self.names:
                seen[p.pid] = cpu_seconds(p)
        return seen

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> float:
        end = self._now()
        return sum(v - self._start.get(pid, 0.0) for pid, v in end.items())


async def idle_cpu(pid: int, seconds: float) -> float:
    """CPU seconds per second the process uses with no requests (its background work)."""
    proc = psutil.Process(pid)
    c0, t0 = cpu_seconds(proc), time.perf_counter()
    await asyncio.sleep(seconds)
    return (cpu_seconds(proc) - c0) / (time.perf_counter() - t0)


async def measure_route(
    key: str,
    port: int,
    requests: list[bytes],
    server_pid: int,
    others: dict[str, int],
    idle_per_s: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    completed = 0
    bad: list[str] = []

    def on_response(i: int, status: int, body: bytes, scheduled: float, done: float) -> None:
        nonlocal completed
        completed += 1
        if not 200 <= status < 300 and len(bad) < 3:
            bad.append(f"{status}: {body[:300].decode(errors='replace')}")

    server = psutil.Process(server_pid)
    helpers = {name: psutil.Process(pid) for name, pid in others.items()}
    postgres, redis = ServiceCpu(("postgres",)), ServiceCpu(("redis-server",))
    host = HostCpu()
    await asyncio.sleep(0.3)
    c0 = cpu_seconds(server)
    h0 = {name: cpu_seconds(p) for name, p in helpers.items()}
    postgres.start()
    redis.start()
    host.start()
    t0 = time.perf_counter()
    result = await open_loop(
        "127.0.0.1",
        port,
        lambda i: requests[i % len(requests)],
        rate=args.rate,
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        on_response=on_response,
        drain_timeout=10.0,
    )
    wall = time.perf_counter() - t0
    server_s = cpu_seconds(server) - c0
    pg_s, redis_s, host_pct = postgres.stop(), redis.stop(), host.stop()
    per = 1e6 / max(completed, 1)
    non_2xx = {s: n for s, n in result.statuses.items() if s.isdigit() and not s.startswith("2")}
    row: dict[str, Any] = {
        "route": key,
        "offered_per_s": args.rate,
        "completed_per_s": result.completed_per_s,
        "statuses": result.statuses,
        "non_2xx": sum(non_2xx.values()),
        # A request in flight on a connection the server closed: uvicorn closes keep-alive
        # connections idle for 5 s, and the generator may send on one just as it does.
        "connection_lost": result.statuses.get("connection_lost", 0),
        "unfinished": result.unfinished,
        "latency": result.latency,
        "requests_in_span": completed,
        "span_s": round(wall, 2),
        "server_cpu_pct": round(100 * server_s / wall, 1),
        "cpu_us_per_req": round(server_s * per, 1),
        "cpu_us_per_req_net_of_idle": round((server_s - idle_per_s * wall) * per, 1),
        "postgres_cpu_us_per_req": round(pg_s * per, 1),
        "redis_cpu_us_per_req": round(redis_s * per, 1),
        "helpers_cpu_pct": {
            name: round(100 * (cpu_seconds(p) - h0[name]) / wall, 1) for name, p in helpers.items()
        },
        "client_cpu_pct": result.client_cpu_pct,
        "dispatch_lateness_p99_ms": result.late_dispatch_ms_p99,
        "host_cpu_pct": host_pct,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if bad:
        row["sample_errors"] = bad
    return row


def progress(run: int, runs: int, row: dict[str, Any]) -> None:
    print(
        f"run {run + 1}/{runs} {row['route']}: {row['completed_per_s']}/s "
        f"p50 {row['latency']['p50_ms']} p99 {row['latency']['p99_ms']} ms, "
        f"cpu {row['cpu_us_per_req']} us/req ({row['server_cpu_pct']}%), "
        f"statuses {row['statuses']}, client {row['client_cpu_pct']}%, "
        f"load {row['load_average_1m']}",
        file=sys.stderr,
        flush=True,
    )


# --- profiling ----------------------------------------------------------------------------------


def slug(key: str) -> str:
    return key.strip("/").replace("/", "_").replace("{", "").replace("}", "") or "root"


def _frames(stack: str) -> list[tuple[str, str]]:
    """`name (file:line)` frames of one collapsed stack -> (name, file), line dropped."""
    frames = []
    for frame in stack.split(";"):
        name, _, where = frame.partition(" (")
        file = where.removesuffix(")")
        head, _, tail = file.rpartition(":")
        frames.append((name, head if head and tail.isdigit() else file))
    return frames


def summarize_stacks(raw: Path, top: int = 30) -> dict[str, Any]:
    """py-spy raw (collapsed) stacks -> shares of the samples: inclusive per function, self per
    function, self per (leaf <- nearest Python frame) (who calls the C that the time is in), and
    self per top-level package of the nearest Python frame (the first component of the path py-spy
    prints: asyncpg, uvicorn, hub, ...; C code is charged to the Python code that called it)."""
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    caller: collections.Counter[str] = collections.Counter()
    package: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f"{name} ({file})" for name, file in _frames(stack)]
        files = [file for _, file in _frames(stack)]
        for f in set(frames):
            inclusive[f] += n
        leaf[frames[-1]] += n
        python = [k for k, file in enumerate(files) if file.endswith(".py") or "<" in file]
        nearest = python[-1] if python else len(frames) - 1
        if nearest != len(frames) - 1:
            caller[f"{frames[-1]} <- {frames[nearest]}"] += n
        file = files[nearest]
        package[file.split("/", 1)[0].removesuffix(".py") if "/" in file else file] += n

    def share(counter: collections.Counter[str]) -> list[list[Any]]:
        return [[k, round(100 * v / max(total, 1), 1)] for k, v in counter.most_common(top)]

    # The loop's own frames are in every sample: leave them out of the inclusive list.
    inclusive = collections.Counter({k: v for k, v in inclusive.items() if v < 0.99 * total})
    return {
        "samples": total,
        "self_pct_by_package": share(package),
        "self_pct": share(leaf),
        "native_self_pct_by_python_caller": share(caller),
        "inclusive_pct": share(inclusive),
    }


async def profile_route(
    key: str,
    port: int,
    requests: list[bytes],
    pid: int,
    args: argparse.Namespace,
    *,
    native: bool,
) -> dict[str, Any]:
    exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if exe is None:
        return {"route": key, "error": "py-spy not installed"}
    PROFILES.mkdir(parents=True, exist_ok=True)
    stem = slug(key) + (".native" if native else "")
    raw = PROFILES / f"{stem}.raw.txt"
    # --gil: only the thread holding the GIL is sampled (idle pool threads would count as busy);
    # blocking (the default): the process is paused per sample, so no torn stacks.
    flags = ["--rate", "250", "--gil"]
    flags += ["--nonblocking"] if args.spy_nonblocking else []
    flags += ["--native"] if native else []
    warmup = 1.0

    async def record() -> int:
        await asyncio.sleep(warmup)
        spy = await asyncio.create_subprocess_exec(
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(args.profile_seconds)),
            *flags,
            "--format",
            "raw",
            "--output",
            str(raw),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await spy.communicate()
        if spy.returncode:
            print(err.decode(errors="replace")[-500:], file=sys.stderr)
        return spy.returncode or 0

    spy_task = asyncio.create_task(record())
    result = await open_loop(
        "127.0.0.1",
        port,
        lambda i: requests[i % len(requests)],
        rate=args.rate,
        duration=args.profile_seconds + 1.5,
        warmup=warmup,
        connections=args.connections,
        drain_timeout=10.0,
    )
    code = await spy_task
    if code or not raw.exists():
        return {"route": key, "native": native, "error": f"py-spy exited with {code}"}
    summary = summarize_stacks(raw)
    lines = [
        f"py-spy record {' '.join(flags)}: {args.profile_seconds:g} s of `hub serve` under "
        f"{args.rate:g} req/s of GET {key}",
        f"{summary['samples']} samples holding the GIL; {result.completed_per_s}/s answered, "
        f"statuses {result.statuses}",
    ]
    titles = {
        "self_pct_by_package": "self % by package of the nearest Python frame",
        "self_pct": "self % by function (the leaf frame)",
        "native_self_pct_by_python_caller": "self % of C leaves, by the Python frame above them",
        "inclusive_pct": "inclusive % by function",
    }
    for name, title in titles.items():
        if summary[name]:
            lines += ["", f"{title}:", *(f"  {v:5.1f}  {k}" for k, v in summary[name])]
    text = PROFILES / f"{stem}.summary.txt"
    text.write_text("\n".join(lines) + "\n")
    return {
        "route": key,
        "native": native,
        "py_spy_flags": flags,
        "raw_stacks": str(raw.relative_to(RESULTS.parent.parent)),
        "summary_file": str(text.relative_to(RESULTS.parent.parent)),
        "under_load": {"completed_per_s": result.completed_per_s, "statuses": result.statuses},
        **summary,
    }


# --- the report ---------------------------------------------------------------------------------


def summarize(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    keys = [k for k in [PEER, *ROUTES] if any(r["route"] == k for run in runs for r in run)]

    def med(rows: list[dict[str, Any]], name: str) -> float | None:
        values = [r[name] for r in rows if isinstance(r.get(name), int | float)]
        return round(statistics.median(values), 2) if values else None

    summary: dict[str, Any] = {}
    for key in keys:
        rows = [r for run in runs for r in run if r["route"] == key]
        statuses: collections.Counter[str] = collections.Counter()
        for r in rows:
            statuses.update(r["statuses"])
        summary[key] = {
            "completed_per_s": med(rows, "completed_per_s"),
            "statuses": dict(statuses),
            "non_2xx": sum(n for s, n in statuses.items() if s.isdigit() and s[0] != "2"),
            "connection_lost": statuses.get("connection_lost", 0),
            "p50_ms": round(statistics.median(r["latency"]["p50_ms"] for r in rows), 2),
            "p99_ms": round(statistics.median(r["latency"]["p99_ms"] for r in rows), 2),
            "p99_ms_per_run": [r["latency"]["p99_ms"] for r in rows],
            "cpu_us_per_req": med(rows, "cpu_us_per_req"),
            "cpu_us_per_req_per_run": [r["cpu_us_per_req"] for r in rows],
            "cpu_us_per_req_net_of_idle": med(rows, "cpu_us_per_req_net_of_idle"),
            "server_cpu_pct": med(rows, "server_cpu_pct"),
            "postgres_cpu_us_per_req": med(rows, "postgres_cpu_us_per_req"),
            "redis_cpu_us_per_req": med(rows, "redis_cpu_us_per_req"),
            "client_cpu_pct": med(rows, "client_cpu_pct"),
            "host_cpu_pct": med(rows, "host_cpu_pct"),
            "runs": len(rows),
        }
    # The same ratio within each run (route / that run's peer), for runs that neighbours disturb.
    for key in keys:
        ratios = []
        for run in runs:
            peer_row = next((r for r in run if r["route"] == PEER), None)
            row = next((r for r in run if r["route"] == key), None)
            if peer_row and row and peer_row["cpu_us_per_req"]:
                ratios.append(round(row["cpu_us_per_req"] / peer_row["cpu_us_per_req"], 2))
        summary[key]["cpu_ratio_to_peer_per_run"] = ratios
        if ratios:
            summary[key]["cpu_ratio_to_peer_median_of_runs"] = statistics.median(ratios)
    peer = summary.get(PEER, {}).get("cpu_us_per_req")
    peer_net = summary.get(PEER, {}).get("cpu_us_per_req_net_of_idle")
    for item in summary.values():
        if peer and item["cpu_us_per_req"] is not None:
            item["cpu_ratio_to_peer"] = round(item["cpu_us_per_req"] / peer, 2)
        if peer_net and item["cpu_us_per_req_net_of_idle"] is not None:
            item["net_cpu_ratio_to_peer"] = round(item["cpu_us_per_req_net_of_idle"] / peer_net, 2)
    return summary


def plot(report: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report["summary"]
    routes = sorted(
        (k for k in summary if k != PEER and summary[k]["cpu_us_per_req"] is not None),
        key=lambda k: summary[k]["cpu_us_per_req"],
    )
    values = [summary[k]["cpu_us_per_req"] for k in routes]
    low = [summary[k]["cpu_us_per_req"] - min(summary[k]["cpu_us_per_req_per_run"]) for k in routes]
    high = [
        max(summary[k]["cpu_us_per_req_per_run"]) - summary[k]["cpu_us_per_req"] for k in routes
    ]
    colors = [
        "tab:red"
        if summary[k]["non_2xx"]
        else ("tab:blue" if k.startswith("/api/v1") else "tab:orange")
        for k in routes
    ]
    fig, ax = plt.subplots(figsize=(11, 0.38 * len(routes) + 1.8))
    ax.barh(routes, values, xerr=[low, high], color=colors, alpha=0.85, capsize=2)
    peer = summary.get(PEER, {}).get("cpu_us_per_req")
    if peer:
        ax.axvline(
            peer,
            color="tab:gray",
            ls="--",
            lw=1.2,
            label=f"peer (Starlette: PyJWT verify + 1 SELECT by key, asyncpg): {peer:.0f} us",
        )
        ax.legend(loc="lower right", fontsize=8)
    for y, k in enumerate(routes):
        v = values[y]
        ratio = summary[k].get("cpu_ratio_to_peer")
        label = f" {v:.0f} us" + (f" ({ratio:.1f}x)" if ratio else "")
        if summary[k]["non_2xx"]:
            label += f"  non-2xx: {summary[k]['non_2xx']}"
        if summary[k].get("connection_lost"):
            label += f"  (connections lost: {summary[k]['connection_lost']})"
        ax.text(v + max(high[y], 0), y, label, va="center", fontsize=7.5)
    ax.set_xlabel("hub serve CPU per request, us (median of runs; bars: min-max)")
    ax.set_xlim(0, max([*values, peer or 0]) * 1.3)
    ax.tick_params(axis="y", labelsize=8)
    host, settings = report["host"], report["settings"]
    ax.set_title(
        f"GET routes at {settings['rate_per_s']:g} req/s offered, services mode "
        f"(blue /api/v1, orange legacy, red: non-2xx seen); {settings['runs']} run(s)\n"
        f"Hub at {host.get('git_commit', '?')}, {report['date']}\n"
        f"{host.get('cpu_count', '?')} vCPUs shared by the load generator, Hub and the services",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- main ---------------------------------------------------------------------------------------


async def redis_keys() -> set[bytes]:
    from redis.asyncio import Redis

    client = Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}")
    try:
        return {k async for k in client.scan_iter(count=1000)}
    finally:
        await client.aclose()


async def delete_redis_keys(keep: set[bytes]) -> int:
    from redis.asyncio import Redis

    client = Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}")
    try:
        created = [k async for k in client.scan_iter(count=1000) if k not in keep]
        for chunk in range(0, len(created), 500):
            await client.delete(*created[chunk : chunk + 500])
        return len(created)
    finally:
        await client.aclose()


async def main(args: argparse.Namespace) -> None:
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    keys = [k for k in args.only.split(",") if k] if args.only else list(ROUTES)
    unknown = [k for k in keys if k not in ROUTES]
    if unknown:
        raise SystemExit(f"unknown route(s) {unknown}; choose from {list(ROUTES)}")
    before = await redis_keys()
    if before:
        print(f"redis db {REDIS_DB} already holds {len(before)} keys; they are kept", flush=True)
    runs: list[list[dict[str, Any]]] = []
    idle: list[float] = []
    profiles: list[dict[str, Any]] = []
    setup: dict[str, Any] = {}
    env: dict[str, str] = {}
    try:
        async with fresh_schema() as schema_url:
            env = services_env(schema_url, REDIS_DB, amqp=True, **HUB_SETTINGS)
            async with run_hub(env, workers=1, feed=True, migrate=True) as hub:
                t0 = time.perf_counter()
                emails = [
                    f"reads-{uuid.uuid4().hex[:8]}-{k}@example.com" for k in range(args.users)
                ]
                logins = await register_and_login(hub.url, emails, concurrency=4)
                users = [User(e, logins[e]["access_token"]) for e in emails]
                registered_s = time.perf_counter() - t0
                async with httpx.AsyncClient(base_url=hub.url, timeout=30) as http:
                    instruments = await api(
                        http, "GET", "/api/v1/instruments?limit=500", users[0].token
                    )
                symbols = sorted(i["symbol"] for i in instruments)
                setup = await give_state(hub.url, users, instruments, args.seed)
                setup["registered_and_logged_in_s"] = round(registered_s, 1)
                print(f"setup: {json.dumps(setup)}", file=sys.stderr, flush=True)
                requests = {k: route_requests(k, users, symbols, args.seed) for k in keys}
                peer_requests = route_requests("/api/v1/account", users, symbols, args.seed)
                logdir = Path(tempfile.mkdtemp(prefix="reads-peer-"))
                peer_port = free_port()
                argv = [sys.executable, __file__, "--serve-peer", "--port", str(peer_port)]
                peer = spawn(PEER, [*argv, "--database-url", schema_url], {}, logdir)
                procs: list[Proc] = [peer]
                try:
                    await wait_ready(f"http://127.0.0.1:{peer_port}/readyz", peer)
                    helpers = {p.name: p.pid for p in hub.helpers}
                    order = [PEER, *keys]
                    for run in range(args.runs):
                        shift = run * len(order) // max(args.runs, 1)
                        sequence = order[shift:] + order[:shift]
                        idle.append(await idle_cpu(hub.serve.pid, args.idle_seconds))
                        rows = []
                        for key in sequence:
                            if key == PEER:
                                row = await measure_route(
                                    PEER, peer_port, peer_requests, peer.pid, {}, 0.0, args
                                )
                            else:
                                row = await measure_route(
                                    key,
                                    hub.port,
                                    requests[key],
                                    hub.serve.pid,
                                    helpers,
                                    idle[-1],
                                    args,
                                )
                            rows.append(row)
                            progress(run, args.runs, row)
                        runs.append(rows)
                    summary = summarize(runs)
                    if args.profile:
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
                                        args,
                                        native=native,
                                    )
                                )
                    logs = {p.name: p.tail(20) for p in [hub.serve, *hub.helpers]}
                finally:
                    await stop_all(procs)
    finally:
        deleted = await delete_redis_keys(before)
        print(f"deleted {deleted} redis keys from db {REDIS_DB}", file=sys.stderr, flush=True)
    report = {
        "benchmark": "reads",
        "question": __doc__.split("\n\n")[0].replace("\n", " "),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([".venv/bin/python", *sys.argv]),
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
        "redis_keys_deleted": deleted,
        "elapsed_s": round(time.perf_counter() - started, 1),
        "runs": runs,
        "process_log_tails": logs,
    }
    path = write_report("reads", report, args.out)
    chart = plot(report, path.with_suffix(".png"))
    print(json.dumps(report["summary"], indent=2))
    print(f"wrote {path} and {chart} in {report['elapsed_s']} s", file=sys.stderr)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run, 3 s per route, 100 users")
    parser.add_argument("--rate", type=float, default=500.0, help="offered requests/s per route")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per route")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds sent, not measured")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--users", type=int, help="default 300 (100 with --quick)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="idle CPU baseline")
    parser.add_argument("--only", default="", help="comma-separated route keys (default: all)")
    parser.add_argument(
        "--profile", type=int, default=0, help="py-spy the N costliest routes after the runs"
    )
    parser.add_argument("--profile-seconds", type=float, default=8.0)
    parser.add_argument(
        "--spy-nonblocking",
        action="store_true",
        help="py-spy without pausing the process (less overhead, some torn stacks)",
    )
    parser.add_argument("--out", help="JSON path (default benchmarks/results/reads-DATE.json)")
    parser.add_argument("--chart", help="re-summarize this JSON's runs, re-render its chart, exit")
    parser.add_argument("--serve-peer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.duration, args.warmup = 1, 3.0, 1.0
    if args.users is None:
        args.users = 100 if args.quick else 300
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_peer:
        serve_peer(arguments.port, arguments.database_url)
    elif arguments.chart:  # recompute the summary from the JSON's runs, rewrite it, re-plot
        source = Path(arguments.chart)
        saved = json.loads(source.read_text())
        saved["summary"] = summarize(saved["runs"])
        source.write_text(json.dumps(saved, indent=2) + "\n")
        print(plot(saved, source.with_suffix(".png")))
    else:
        import uvloop

        uvloop.run(main(arguments))
