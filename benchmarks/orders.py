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
import asyncio
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    JWT_SECRET,
    POSTGRES_URL,
    RESULTS,
    Hub,
    Proc,
    environment,
    free_port,
    fresh_schema,
    http_request,
    latency_ms,
    median_of,
    metered_open_loop,
    register_and_login,
    run_hub,
    services_env,
    spawn,
    stop_all,
    wait_ready,
    write_report,
)
from _plot import plot_orders

REDIS_DB = 12
SYMBOLS = ("AAPL", "MSFT", "AMZN", "GOOGL", "META", "NVDA", "JPM", "KO")
CANDIDATES = ("services-1w", "services-2w", "services-inproc", "embedded", "peer-insert")
PACKAGES: tuple[str, ...]
PACKAGES = ("starlette", "uvicorn", "uvloop", "httptools", "msgspec", "redis", "asyncpg")
PACKAGES += ("aio-pika", "aiormq", "websockets", "PyJWT", "psutil")
TARGETS = {"end_to_end_per_s": 1000, "submit_p99_ms": 20, "submit_to_socket_p99_ms": 100}

# --- the peer (its own process: `orders.py --serve-peer --port P --database-url URL`) -----------


def serve_peer(port: int, database_url: str) -> None:
    import asyncpg
    import jwt
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    class Order(msgspec.Struct, forbid_unknown_fields=True):
        symbol: str
        side: str
        type: str
        qty: str

    decoder, encoder = msgspec.json.Decoder(Order), msgspec.json.Encoder()
    pool: list[asyncpg.Pool] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool.append(await asyncpg.create_pool(database_url, min_size=4, max_size=10))
        await pool[0].execute(
            "CREATE TABLE IF NOT EXISTS peer_orders (id uuid PRIMARY KEY, user_id uuid NOT NULL,"
            " symbol text NOT NULL, side text NOT NULL, type text NOT NULL, qty numeric NOT NULL,"
            " status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
        yield
        await pool[0].close()

    async def submit(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        try:
            claims = jwt.decode(
                header.removeprefix("Bearer "),
                JWT_SECRET,
                algorithms=["HS256"],
                issuer="hub",
                audience="hub-api",
                options={"require": ["sub", "exp", "iat", "jti", "iss", "aud", "role"]},
            )
        except jwt.InvalidTokenError:
            return JSONResponse({"detail": "unauthorized"}, 401)
        order = decoder.decode(await request.body())
        oid = uuid.uuid4()
        row = await pool[0].fetchrow(
            "INSERT INTO peer_orders (id, user_id, symbol, side, type, qty, status)"
            " VALUES ($1, $2, $3, $4, $5, $6, 'pending_new') RETURNING created_at",
            oid,
            uuid.UUID(claims["sub"]),
            order.symbol,
            order.side,
            order.type,
            order.qty,
        )
        body = {"id": str(oid), "status": "pending_new", "created_at": row[0].isoformat()}
        return Response(encoder.encode(body), 202, media_type="application/json")

    async def ready(request: Request) -> Response:
        return Response(b"ok")

    app = Starlette(
        routes=[Route("/api/v1/orders", submit, methods=["POST"]), Route("/readyz", ready)],
        lifespan=lifespan,
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


# --- order events on the sockets ---------------------------------------------------------------


class OrderData(msgspec.Struct):
    id: str
    status: str


class Message(msgspec.Struct):
    type: str
    data: OrderData | None = None


class Sockets:
    """One WebSocket per user, subscribed to `orders`; records when each order's `filled` event
    arrives."""

    def __init__(self) -> None:
        self.filled_at: dict[str, float] = {}
        self.filled_times: list[float] = []
        self.other_terminal: dict[str, int] = {}
        self._decoder = msgspec.json.Decoder(list[Message])
        self._tasks: list[asyncio.Task[None]] = []
        self._sockets: list[Any] = []

    async def open(self, ws_url: str, tokens: list[str]) -> None:
        from websockets.asyncio.client import connect

        async def one(token: str) -> None:
            ws = await connect(
                ws_url,
                additional_headers={"Authorization": f"Bearer {token}"},
                max_queue=None,
                ping_interval=None,
            )
            await ws.send('{"action":"subscribe","channels":["orders"]}')
            async with asyncio.timeout(10):
                while not any(
                    m.type == "subscribed" for m in self._decoder.decode(await ws.recv())
                ):
                    pass
            self._sockets.append(ws)
            self._tasks.append(asyncio.create_task(self._read(ws)))

        for chunk in range(0, len(tokens), 10):
            await asyncio.gather(*(one(t) for t in tokens[chunk : chunk + 10]))

    async def _read(self, ws: Any) -> None:
        with contextlib.suppress(Exception):
            async for frame in ws:
                now = time.perf_counter()
                for m in self._decoder.decode(frame):
                    if m.type != "order" or m.data is None:
                        continue
                    if m.data.status == "filled":
                        self.filled_at[m.data.id] = now
                        self.filled_times.append(now)
                    elif m.data.status in ("rejected", "canceled", "expired"):
                        self.other_terminal[m.data.status] = (
                            self.other_terminal.get(m.data.status, 0) + 1
                        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for ws in self._sockets:
            with contextlib.suppress(Exception):
                await ws.close()


# --- the phases -------------------------------------------------------------------------------


def order_requests(tokens: list[str], seed: int) -> list[bytes]:
    """A seeded cycle of (user, symbol) submits: every user in turn, symbols shuffled."""
    rng = random.Random(seed)
    requests = []
    for k in range(len(tokens) * len(SYMBOLS)):
        symbol = rng.choice(SYMBOLS)
        body = msgspec.json.encode({"symbol": symbol, "side": "buy", "type": "market", "qty": "1"})
        auth = {"Authorization": f"Bearer {tokens[k % len(tokens)]}"}
        requests.append(http_request("POST", "/api/v1/orders", auth, body))
    return requests


class Step:
    """What one open-loop step of submits saw: per response status, latency of the accepted
    ones (202), 503s with Retry-After, and which accepted orders to wait for on the sockets."""

    def __init__(self, first_measured: int, hot_token: bytes | None = None) -> None:
        self.first = first_measured
        self.hot_token = hot_token
        self.accepted: dict[str, tuple[float, bool]] = {}  # order id -> (scheduled, hot)
        self.submit: list[float] = []
        self.submit_hot: list[float] = []
        self.shed = 0
        self.shed_with_retry_after = 0
        self.errors: list[str] = []

    def on_response(self, i: int, status: int, body: bytes, scheduled: float, done: float) -> None:
        if i < self.first:
            return
        if status == 202:
            hot = self.hot_token is not None and i % 2 == 1  # see step(): odd = hot account
            self.accepted[msgspec.json.decode(body, type=OrderData).id] = (scheduled, hot)
            (self.submit_hot if hot else self.submit).append(done - scheduled)
        elif status in (429, 503):  # shed: overloaded, or this account over its share
            self.shed += 1
            if b"retry_after" in body:
                self.shed_with_retry_after += 1
        elif len(self.errors) < 3:
            self.errors.append(f"{status}: {body[:200].decode(errors='replace')}")


async def step(
    port: int,
    requests: list[bytes],
    sockets: Sockets | None,
    rate: float,
    args: argparse.Namespace,
    pids: dict[str, int],
    *,
    hot: list[bytes] | None = None,
    hot_rate: float = 0.0,
) -> dict[str, Any]:
    """Offer `rate` submits/s (plus `hot_rate`/s from one account, interleaved) for
    args.duration s after args.warmup s; then wait for the accepted ones' `filled` events."""
    total = rate + hot_rate
    if hot:
        # Interleave: even = the crowd, odd = the hot account, each at its own rate. Open loop
        # needs one sequence: take the hot account as every other request and scale the crowd.
        assert abs(hot_rate - rate) < 1e-9, "the interleaving assumes equal rates"

        def make(i: int) -> bytes:
            return hot[(i // 2) % len(hot)] if i % 2 else requests[(i // 2) % len(requests)]
    else:

        def make(i: int) -> bytes:
            return requests[i % len(requests)]

    seen = Step(int(total * args.warmup), b"hot" if hot else None)
    rss: list[float] = []
    serve = psutil.Process(pids[next(iter(pids))])

    async def sample_memory() -> None:
        while True:
            rss.append(serve.memory_info().rss / 2**20)
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_memory())
    filled_before = len(sockets.filled_times) if sockets else 0
    t0 = time.perf_counter()
    result, server_cpu, host_cpu = await metered_open_loop(
        pids,
        "127.0.0.1",
        port,
        make,
        rate=total,
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        on_response=seen.on_response,
        drain_timeout=10.0,
    )
    sampler.cancel()
    row: dict[str, Any] = {
        "offered_per_s": total,
        "submit_202": latency_ms(seen.submit),
        "accepted_per_s": round(len(seen.accepted) / args.duration, 1),
        "shed_503_per_s": round(seen.shed / args.duration, 1),
        "shed_with_retry_after": seen.shed_with_retry_after,
        "statuses": result.statuses,
        "unfinished_submits": result.unfinished,
        "client_cpu_pct": result.client_cpu_pct,
        "server_cpu_pct": server_cpu,
        "host_cpu_pct": host_cpu,
        "serve_rss_mib": {"first": round(rss[0], 1), "max": round(max(rss), 1)} if rss else {},
    }
    if hot:
        row["submit_202_hot_account"] = latency_ms(seen.submit_hot)
    if seen.errors:
        row["sample_errors"] = seen.errors
    if sockets is not None:
        deadline = time.perf_counter() + 15
        while time.perf_counter() < deadline and any(  # noqa: ASYNC110
            oid not in sockets.filled_at for oid in seen.accepted
        ):
            await asyncio.sleep(0.05)
        crowd = [
            sockets.filled_at[o] - t
            for o, (t, h) in seen.accepted.items()
            if o in sockets.filled_at and not h
        ]
        row["submit_to_filled"] = latency_ms(crowd)
        if hot:
            row["submit_to_filled_hot_account"] = latency_ms(
                [
                    sockets.filled_at[o] - t
                    for o, (t, h) in seen.accepted.items()
                    if o in sockets.filled_at and h
                ]
            )
        row["never_filled_within_15s"] = sum(1 for o in seen.accepted if o not in sockets.filled_at)
        # Fills that arrived on the sockets while submits were being offered (after warm-up).
        span = time.perf_counter() - t0
        row["filled_per_s"] = round((len(sockets.filled_times) - filled_before) / span, 1)
        measured_from = t0 + args.warmup
        in_window = [
            t
            for t in sockets.filled_times[filled_before:]
            if measured_from <= t <= measured_from + args.duration
        ]
        row["filled_per_s_during_offer"] = round(len(in_window) / args.duration, 1)
    return row


async def py_spy(
    pids: dict[str, int], seconds: float, tag: str
) -> list[asyncio.subprocess.Process]:
    exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if exe is None:
        print("py-spy not installed: no profile", file=sys.stderr)
        return []
    out = RESULTS / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    procs = []
    for name, pid in pids.items():
        for fmt, ext in (("speedscope", "json"), ("raw", "txt")):
            procs.append(
                await asyncio.create_subprocess_exec(
                    exe,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(seconds)),
                    "--rate",
                    "250",
                    "--format",
                    fmt,
                    "--output",
                    str(out / f"orders-{tag}-{name}.{ext}"),
                    "--nonblocking",
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )
    return procs


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
        async with run_hub(env, feed=True, migrate=True) as hub:
            yield hub
    else:
        workers = 2 if name == "services-2w" else 1
        env = services_env(schema_url, REDIS_DB, amqp=True, **common)
        async with run_hub(env, workers=workers, feed=True, migrate=True) as hub:
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
                    profilers = await py_spy(pids, args.warmup + args.duration, name)
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


def progress(name: str, row: dict[str, Any]) -> None:
    print(
        f"  {name} at {row['offered_per_s']:.0f}/s: accepted {row['accepted_per_s']}/s shed "
        f"{row['shed_503_per_s']}/s, submit p99 {row['submit_202']['p99_ms']} ms, to filled p99 "
        f"{row.get('submit_to_filled', {}).get('p99_ms')} ms, filled "
        f"{row.get('filled_per_s_during_offer')}/s, cpu {row['server_cpu_pct']}",
        file=sys.stderr,
        flush=True,
    )


async def bench_peer(run: int, args: argparse.Namespace) -> dict[str, Any]:
    tokens = [issue_token() for _ in range(args.users)]
    async with fresh_schema() as schema_url:
        port = free_port()
        logdir = Path(tempfile.mkdtemp(prefix="orders-peer-"))
        argv = [sys.executable, __file__, "--serve-peer", "--port", str(port)]
        proc: Proc = spawn("peer", [*argv, "--database-url", schema_url], {}, logdir)
        try:
            await wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
            requests = order_requests(tokens, args.seed + run)
            pids = {"server": proc.pid}
            ladder = []
            for rate in args.rates:
                ladder.append(await step(port, requests, None, rate, args, pids))
                progress("peer-insert", ladder[-1])
        finally:
            await stop_all([proc])
    return {"candidate": "peer-insert", "ladder": ladder}


def issue_token() -> str:
    import jwt

    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "role": "user",
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "iss": "hub",
        "aud": "hub-api",
    }
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def summarize(runs: list[list[dict[str, Any]]], args: argparse.Namespace) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in CANDIDATES:
        rows = [r for run in runs for r in run if r["candidate"] == name and "error" not in r]
        if not rows:
            continue
        curve = []
        for k, rate in enumerate(args.rates):
            at = [{"s": r["ladder"][k]} for r in rows if len(r["ladder"]) > k]
            curve.append(
                {
                    "offered_per_s": rate,
                    "accepted_per_s": median_of(at, "s.accepted_per_s"),
                    "shed_503_per_s": median_of(at, "s.shed_503_per_s"),
                    "submit_p50_ms": median_of(at, "s.submit_202.p50_ms"),
                    "submit_p99_ms": median_of(at, "s.submit_202.p99_ms"),
                    "to_filled_p50_ms": median_of(at, "s.submit_to_filled.p50_ms"),
                    "to_filled_p99_ms": median_of(at, "s.submit_to_filled.p99_ms"),
                    "filled_per_s": median_of(at, "s.filled_per_s_during_offer"),
                    "never_filled": median_of(at, "s.never_filled_within_15s"),
                    "server_cpu_pct": at[0]["s"]["server_cpu_pct"] if at else None,
                    "host_cpu_pct": median_of(at, "s.host_cpu_pct"),
                    "client_cpu_pct": median_of(at, "s.client_cpu_pct"),
                }
            )
        item: dict[str, Any] = {"runs": len(rows), "curve": curve}
        if name == "peer-insert":
            item["max_accepted_per_s"] = max((c["accepted_per_s"] or 0) for c in curve)
        else:
            item["max_filled_per_s"] = max((c["filled_per_s"] or 0) for c in curve)
            item["knee_per_s"] = max(
                (
                    c["offered_per_s"]
                    for c in curve
                    if (c["submit_p99_ms"] or 1e9) <= TARGETS["submit_p99_ms"]
                    and (c["to_filled_p99_ms"] or 1e9) <= TARGETS["submit_to_socket_p99_ms"]
                    and not c["shed_503_per_s"]
                    and not c["never_filled"]
                ),
                default=None,
            )
            hot = [{"h": r["hot_account"]} for r in rows]
            item["hot_account"] = {
                "crowd_alone_to_filled_p99_ms": median_of(
                    hot, "h.crowd_alone.submit_to_filled.p99_ms"
                ),
                "crowd_with_hot_to_filled_p99_ms": median_of(
                    hot, "h.crowd_with_hot.submit_to_filled.p99_ms"
                ),
                "hot_to_filled_p99_ms": median_of(
                    hot, "h.crowd_with_hot.submit_to_filled_hot_account.p99_ms"
                ),
                "hot_accepted_submit_p99_ms": median_of(
                    hot, "h.crowd_with_hot.submit_202_hot_account.p99_ms"
                ),
                "never_filled": median_of(hot, "h.crowd_with_hot.never_filled_within_15s"),
            }
            over = [{"o": r["overload"]} for r in rows]
            item["overload_3x"] = {
                "offered_per_s": median_of(over, "o.offered_per_s"),
                "accepted_per_s": median_of(over, "o.accepted_per_s"),
                "shed_503_per_s": median_of(over, "o.shed_503_per_s"),
                "accepted_submit_p99_ms": median_of(over, "o.submit_202.p99_ms"),
                "accepted_to_filled_p99_ms": median_of(over, "o.submit_to_filled.p99_ms"),
                "never_filled": median_of(over, "o.never_filled_within_15s"),
                "serve_rss_first_mib": median_of(over, "o.serve_rss_mib.first"),
                "serve_rss_max_mib": median_of(over, "o.serve_rss_mib.max"),
            }
        summary[name] = item
    return summary


async def main(args: argparse.Namespace) -> None:
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    candidates = [c for c in args.only.split(",") if c]
    runs: list[list[dict[str, Any]]] = []
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
        "benchmark": "orders",
        "question": __doc__.split("\n\n")[0].replace("\n", " "),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([".venv/bin/python", *sys.argv]),
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
    path = write_report("orders", report, args.out)
    chart = plot_orders(report, path.with_suffix(".png"))
    print(json.dumps(report["summary"], indent=2))
    print(f"wrote {path} and {chart}", file=sys.stderr)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s phases, 1 run")
    parser.add_argument(
        "--rates", default="100,250,500,750,1000,1500", help="offered orders/s, one step each"
    )
    parser.add_argument("--users", type=int, default=500, help="accounts (plus one hot one)")
    parser.add_argument("--hot-rate", type=float, default=200.0, help="hot account's orders/s")
    parser.add_argument("--profile-rate", type=float, default=500.0, help="step py-spy records")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per step")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default=",".join(CANDIDATES))
    parser.add_argument("--profile", action="store_true", help="py-spy one step (first run)")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/orders-DATE.json)")
    parser.add_argument("--serve-peer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.runs, args.users = 3.0, 1.0, 1, 100
    args.rates = [float(r) for r in args.rates.split(",") if r]
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_peer:
        serve_peer(arguments.port, arguments.database_url)
    else:
        import uvloop

        uvloop.run(main(arguments))
