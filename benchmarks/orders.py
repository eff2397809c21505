"""In services mode, how many orders/s go from submit to filled end to end, what is the submit
latency p50/p99 at 500 orders/s, and the submit-to-filled-event-on-the-socket latency p50/p99?

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

Workload: 50 registered users, each with its own WebSocket on /ws subscribed to `orders`; market
buys of 1 share of 8 liquid stocks, round-robin over users and symbols (seeded order).

1. fixed rate: open loop at --rate (500/s) for --duration s after a warm-up. Submit latency runs
   from the scheduled send time to the 202 (waiting for a free connection counts); submit-to-
   socket latency from the same scheduled time to the arrival of the order's `filled` event.
2. saturation: open loop at --saturation-rate (default 1,500/s, above the 1,000/s target) for
   --duration s; throughput = `filled` events that arrived on the sockets during the window / s.

    python benchmarks/orders.py                   # full: every candidate, 3 runs, 10 s phases
    python benchmarks/orders.py --quick           # 3 s phases, 1 run
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    JWT_SECRET,
    POSTGRES_URL,
    RESULTS,
    CpuMeter,
    HostCpu,
    Hub,
    Proc,
    environment,
    free_port,
    fresh_schema,
    http_request,
    latency_ms,
    median_of,
    metered_open_loop,
    open_loop,
    register_and_login,
    run_hub,
    services_env,
    spawn,
    stop_all,
    wait_ready,
    write_report,
)

REDIS_DB = 12
USERS = 50
SYMBOLS = ("AAPL", "MSFT", "AMZN", "GOOGL", "META", "NVDA", "JPM", "KO")
CANDIDATES = ("services-1w", "services-2w", "services-inproc", "embedded", "peer-insert")
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


async def fixed_rate(
    port: int,
    requests: list[bytes],
    sockets: Sockets | None,
    args: argparse.Namespace,
    pids: dict[str, int],
) -> dict[str, Any]:
    submitted: dict[str, float] = {}  # order id -> scheduled send time (measured ones only)
    first_measured = int(args.rate * args.warmup)
    bad: list[str] = []

    def on_response(i: int, status: int, body: bytes, scheduled: float, done: float) -> None:
        if status != 202:
            if len(bad) < 3:
                bad.append(body[:300].decode(errors="replace"))
            return
        if i >= first_measured:
            submitted[msgspec.json.decode(body, type=OrderData).id] = scheduled

    result, server_cpu, host_cpu = await metered_open_loop(
        pids,
        "127.0.0.1",
        port,
        lambda i: requests[i % len(requests)],
        rate=args.rate,
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        on_response=on_response,
    )
    row: dict[str, Any] = {
        "offered_per_s": args.rate,
        "submit": result.latency,
        "submits_completed_per_s": result.completed_per_s,
        "statuses": result.statuses,
        "unfinished_submits": result.unfinished,
        "client_cpu_pct": result.client_cpu_pct,
        "server_cpu_pct": server_cpu,
        "host_cpu_pct": host_cpu,
    }
    if sockets is not None:
        deadline = time.perf_counter() + 15
        while time.perf_counter() < deadline and any(  # noqa: ASYNC110
            oid not in sockets.filled_at for oid in submitted
        ):
            await asyncio.sleep(0.05)
        to_socket = [
            sockets.filled_at[o] - t for o, t in submitted.items() if o in sockets.filled_at
        ]
        row["submit_to_filled_on_socket"] = latency_ms(to_socket)
        row["never_filled_within_15s"] = sum(1 for o in submitted if o not in sockets.filled_at)
        row["other_terminal_events"] = dict(sockets.other_terminal)
    if bad:
        row["sample_errors"] = bad
    return row


async def saturation(
    port: int,
    requests: list[bytes],
    sockets: Sockets | None,
    args: argparse.Namespace,
    pids: dict[str, int],
) -> dict[str, Any]:
    """Offer more than the target; count the fills that arrive during the measured window."""
    cpu, host = CpuMeter(pids), HostCpu()
    window: list[float] = []

    async def watch() -> None:
        await asyncio.sleep(args.warmup)
        cpu.start()
        host.start()
        window.append(time.perf_counter())
        before = len(sockets.filled_times) if sockets else 0
        await asyncio.sleep(args.duration)
        window.append(time.perf_counter())
        window.append(float((len(sockets.filled_times) if sockets else 0) - before))

    watcher = asyncio.create_task(watch())
    result = await open_loop(
        "127.0.0.1",
        port,
        lambda i: requests[i % len(requests)],
        rate=args.saturation_rate,
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        drain_timeout=5.0,
    )
    await watcher
    server_cpu, host_cpu = cpu.stop(), host.stop()
    start, end, filled = window
    row: dict[str, Any] = {
        "offered_per_s": args.saturation_rate,
        "submits_completed_per_s": result.completed_per_s,
        "submit": result.latency,
        "statuses": result.statuses,
        "client_cpu_pct": result.client_cpu_pct,
        "server_cpu_pct": server_cpu,
        "host_cpu_pct": host_cpu,
    }
    if sockets is not None:
        row["filled_per_s"] = round(filled / (end - start), 1)
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
        env = services_env(schema_url, REDIS_DB, **common)
        async with run_hub(env, workers=workers, feed=True, migrate=True) as hub:
            yield hub


async def bench_hub(name: str, run: int, args: argparse.Namespace) -> dict[str, Any]:
    async with fresh_schema() as schema_url, start_candidate(name, schema_url, args) as hub:
        emails = [f"bench-{uuid.uuid4().hex[:8]}-{k}@example.com" for k in range(USERS)]
        logins = await register_and_login(hub.url, emails)
        tokens = [logins[e]["access_token"] for e in emails]
        sockets = Sockets()
        await sockets.open(hub.url.replace("http://", "ws://") + "/ws", tokens)
        try:
            requests = order_requests(tokens, args.seed + run)
            pids = hub.pids()
            profilers = []
            if args.profile and run == 0:
                profilers = await py_spy(pids, args.warmup + args.duration, name)
            fixed = await fixed_rate(hub.port, requests, sockets, args, pids)
            for p in profilers:
                await p.wait()
            sat = await saturation(hub.port, requests, sockets, args, pids)
        finally:
            await sockets.close()
        return {"candidate": name, "fixed": fixed, "saturation": sat}


async def bench_peer(run: int, args: argparse.Namespace) -> dict[str, Any]:
    tokens = [issue_token() for _ in range(USERS)]
    async with fresh_schema() as schema_url:
        port = free_port()
        logdir = Path(tempfile.mkdtemp(prefix="orders-peer-"))
        argv = [sys.executable, __file__, "--serve-peer", "--port", str(port)]
        proc: Proc = spawn("peer", [*argv, "--database-url", schema_url], {}, logdir)
        try:
            await wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
            requests = order_requests(tokens, args.seed + run)
            pids = {"server": proc.pid}
            fixed = await fixed_rate(port, requests, None, args, pids)
            sat = await saturation(port, requests, None, args, pids)
        finally:
            await stop_all([proc])
    return {"candidate": "peer-insert", "fixed": fixed, "saturation": sat}


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


def summarize(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in CANDIDATES:
        rows = [r for run in runs for r in run if r["candidate"] == name and "error" not in r]
        if not rows:
            continue
        item = {
            "submit_p50_ms_at_rate": median_of(rows, "fixed.submit.p50_ms"),
            "submit_p99_ms_at_rate": median_of(rows, "fixed.submit.p99_ms"),
            "submit_to_socket_p50_ms_at_rate": median_of(
                rows, "fixed.submit_to_filled_on_socket.p50_ms"
            ),
            "submit_to_socket_p99_ms_at_rate": median_of(
                rows, "fixed.submit_to_filled_on_socket.p99_ms"
            ),
            "never_filled_at_rate": median_of(rows, "fixed.never_filled_within_15s"),
            "filled_per_s_saturation": median_of(rows, "saturation.filled_per_s"),
            "submits_per_s_saturation": median_of(rows, "saturation.submits_completed_per_s"),
            "server_cpu_pct_at_rate": rows[0]["fixed"]["server_cpu_pct"],
            "client_cpu_pct_at_rate": median_of(rows, "fixed.client_cpu_pct"),
            "host_cpu_pct_at_rate": median_of(rows, "fixed.host_cpu_pct"),
            "runs": len(rows),
        }
        if name != "peer-insert":
            item["vs_targets"] = {
                "end_to_end_per_s": ratio(item["filled_per_s_saturation"], 1000),
                "submit_p99": ratio(item["submit_p99_ms_at_rate"], 20),
                "submit_to_socket_p99": ratio(item["submit_to_socket_p99_ms_at_rate"], 100),
            }
        summary[name] = item
    return summary


def ratio(value: float | None, target: float) -> float | None:
    return None if value is None else round(value / target, 2)


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
            else:
                f, s = row["fixed"], row["saturation"]
                print(
                    f"  at {args.rate}/s: submit p50 {f['submit']['p50_ms']} p99 "
                    f"{f['submit']['p99_ms']} ms; to socket "
                    f"{f.get('submit_to_filled_on_socket')}; never filled "
                    f"{f.get('never_filled_within_15s')}; cpu {f['server_cpu_pct']} client "
                    f"{f['client_cpu_pct']}% | saturation: filled {s.get('filled_per_s')}/s "
                    f"submits {s['submits_completed_per_s']}/s",
                    file=sys.stderr,
                    flush=True,
                )
            rows.append(row)
        runs.append(rows)
    report = {
        "benchmark": "orders",
        "question": __doc__.split("\n\n")[0].replace("\n", " "),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "settings": {
            "users": USERS,
            "symbols": list(SYMBOLS),
            "order": "market buy, qty 1",
            "rate_per_s": args.rate,
            "saturation_rate_per_s": args.saturation_rate,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "seed": args.seed,
            "runs": args.runs,
            "hub_env": {
                "HUB_PAPER_CASH": "1000000000",
                "HUB_LOGIN_LIMIT_PER_CLIENT": "100000",
                "HUB_FEED_QPS": "50 (default)",
                "HUB_WORKER_PREFETCH": "32 (default)",
            },
            "postgres": POSTGRES_URL,
            "targets": TARGETS,
        },
        "host": {**environment(PACKAGES), "load_average_at_start": load_at_start},
        "summary": summarize(runs),
        "runs": runs,
    }
    path = write_report("orders", report, args.out)
    print(json.dumps(report["summary"], indent=2))
    print(f"wrote {path}", file=sys.stderr)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s phases, 1 run")
    parser.add_argument("--rate", type=float, default=500.0, help="orders/s, fixed-rate phase")
    parser.add_argument("--saturation-rate", type=float, default=1500.0)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default=",".join(CANDIDATES))
    parser.add_argument("--profile", action="store_true", help="py-spy the first fixed phase")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/orders-DATE.json)")
    parser.add_argument("--serve-peer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.runs = 3.0, 1.0, 1
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_peer:
        serve_peer(arguments.port, arguments.database_url)
    else:
        import uvloop

        uvloop.run(main(arguments))
