"""How fast does GET /api/v1/market-data answer at 2,000 requests/s, for instrument-cache hits and
misses, and how many gRPC GetMarketData unary calls per second does one process serve?

Services mode: `hub serve` and `hub feed` on PostgreSQL, Redis (instrument cache-aside and the
latest quotes) and RabbitMQ, in a fresh schema and Redis database. Candidates, all measured in
the same run with the same open-loop generator, the same token and the same symbol sequence
(one symbol per request, the 34 seeded instruments in a seeded shuffled order):

- hub-hit:      Hub with the instrument cache warm (admin /cache/warm first); every request is a
                cache hit (Hub's hit/miss counters are scraped from /metrics to prove it).
- hub-miss:     the same server, but after each response the generator deletes that symbol's
                cache key in Redis (a raw DEL on its own connection, off the server's CPU), so
                the next request for it (34 requests later) misses: cache read, PostgreSQL read,
                cache fill. The miss ratio actually obtained is read from /metrics and reported.
- peer-memory:  a minimal Starlette app (uvicorn, uvloop, httptools, like Hub) that verifies the
                same HS256 JWT with the same claims and returns Hub's own body for that symbol from
                a dict: the floor of a Python server on this host.
- peer-redis:   the same, plus the two Redis MGETs Hub's hit path makes (instrument and quote
                keys), decoded and re-encoded: the floor of the cache-hit path's I/O.

The generator is open loop: request i is due at start + i/rate, whatever happened before, and
latency runs from that due time (waiting for a free connection counts). gRPC: N concurrent
callers (in a separate client process) call GetMarketData for a fixed time, closed loop.

    python benchmarks/market_data.py            # full: 2,000 req/s x 10 s per candidate, 3 runs
    python benchmarks/market_data.py --quick    # 2 s per candidate, 1 run

The generator, the servers and the services share the host's cores; the report says how much
CPU the generator itself used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    JWT_SECRET,
    CpuMeter,
    HostCpu,
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
    scrape_metrics,
    services_env,
    spawn,
    stop_all,
    wait_ready,
    write_report,
)

REDIS_DB = 11
ADMIN_EMAIL = "bench-admin@example.com"
CANDIDATES = ("hub-hit", "hub-miss", "peer-memory", "peer-redis")
PACKAGES: tuple[str, ...]
PACKAGES = ("starlette", "uvicorn", "uvloop", "httptools", "msgspec", "redis", "asyncpg")
PACKAGES += ("grpcio", "protobuf", "PyJWT", "psutil")

# --- the peers (each in its own process: `market_data.py --serve NAME --port P`) ---------------


def serve_peer(name: str, port: int, bodies_file: str, redis_url: str) -> None:
    import jwt
    import msgspec
    import uvicorn
    from redis.asyncio import Redis
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    bodies: dict[str, bytes] = {
        s: b.encode() for s, b in json.loads(Path(bodies_file).read_text()).items()
    }
    redis = Redis.from_url(redis_url)
    encoder, decode = msgspec.json.Encoder(), msgspec.json.decode

    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return False
        try:
            jwt.decode(
                header[7:],
                JWT_SECRET,
                algorithms=["HS256"],
                issuer="hub",
                audience="hub-api",
                options={"require": ["sub", "exp", "iat", "jti", "iss", "aud", "role"]},
            )
        except jwt.InvalidTokenError:
            return False
        return True

    async def from_memory(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse({"detail": "unauthorized"}, 401)
        symbol = request.query_params.get("symbols", "").upper()
        return Response(bodies[symbol], media_type="application/json")

    async def from_redis(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse({"detail": "unauthorized"}, 401)
        symbol = request.query_params.get("symbols", "").upper()
        (raw_instrument,) = await redis.mget([f"market_data:{symbol}"])
        (raw_quote,) = await redis.mget([f"hub:quote:{symbol}"])
        assert raw_instrument is not None  # the run warms the cache first
        i = decode(raw_instrument)
        item = {k: i[k] for k in ("symbol", "name", "category", "currency")}
        item["quote"] = decode(raw_quote) if raw_quote else None
        body = encoder.encode({"data": [item], "unknown_symbols": []})
        return Response(body, media_type="application/json")

    endpoint = from_memory if name == "peer-memory" else from_redis
    app = Starlette(routes=[Route("/api/v1/market-data", endpoint), Route("/readyz", endpoint)])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


# --- the gRPC client (its own process, default asyncio loop) ------------------------------------


def grpc_client(args: argparse.Namespace) -> None:
    asyncio.run(_grpc_client(args))


async def _grpc_client(args: argparse.Namespace) -> None:
    import psutil

    from hub.entrypoints.grpc.client import MarketDataClient

    symbols = args.symbols.split(",")
    latencies: list[float] = []
    errors = 0
    async with MarketDataClient(args.target, args.token) as client:
        await client.get_market_data([symbols[0]])
        t0 = time.perf_counter()
        measure_from = t0 + args.warmup
        stop_at = measure_from + args.duration
        calls = 0

        async def caller(k: int) -> None:
            nonlocal calls, errors
            i = k
            while (now := time.perf_counter()) < stop_at:
                try:
                    await client.get_market_data([symbols[i % len(symbols)]])
                except Exception:
                    errors += 1
                done = time.perf_counter()
                if now >= measure_from:
                    latencies.append(done - now)
                    calls += 1
                i += args.callers

        me = psutil.Process()
        await asyncio.sleep(0)
        cpu0 = me.cpu_times()
        await asyncio.gather(*(caller(k) for k in range(args.callers)))
        cpu1 = me.cpu_times()
        wall = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "calls": calls,
                "errors": errors,
                "latencies": latencies,
                "client_cpu_pct": round(100 * (sum(cpu1[:2]) - sum(cpu0[:2])) / wall, 1),
            }
        )
    )


async def measure_grpc(
    hub_grpc_port: int, token: str, symbols: list[str], args: argparse.Namespace, serve_pid: int
) -> dict[str, Any]:
    argv = [
        sys.executable,
        __file__,
        "--grpc-client",
        "--target",
        f"127.0.0.1:{hub_grpc_port}",
        "--token",
        token,
        "--symbols",
        ",".join(symbols),
        "--callers",
        str(args.grpc_callers // args.grpc_procs),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
    ]
    cpu, host = CpuMeter({"serve": serve_pid}), HostCpu()
    await asyncio.sleep(0.2)
    procs = [
        await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
        for _ in range(args.grpc_procs)
    ]
    await asyncio.sleep(args.warmup)
    cpu.start()
    host.start()
    outs = [json.loads((await p.communicate())[0]) for p in procs]
    server_cpu, host_cpu = cpu.stop(), host.stop()
    latencies = [x for o in outs for x in o["latencies"]]
    return {
        "callers": args.grpc_callers,
        "client_processes": args.grpc_procs,
        "calls_per_s": round(sum(o["calls"] for o in outs) / args.duration, 1),
        "errors": sum(o["errors"] for o in outs),
        "latency": latency_ms(latencies),
        "client_cpu_pct": [o["client_cpu_pct"] for o in outs],
        "server_cpu_pct": server_cpu["serve"],
        "host_cpu_pct": host_cpu,
    }


# --- the HTTP candidates ------------------------------------------------------------------------


class RedisDeleter:
    """Pipelines `DEL market_data:<SYMBOL>` to Redis on its own connection; replies are drained
    and counted, never awaited per command."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.sent = 0
        self.deleted = 0
        self._task = asyncio.create_task(self._drain())

    @classmethod
    async def open(cls, db: int) -> RedisDeleter:
        reader, writer = await asyncio.open_connection("127.0.0.1", 6379)
        writer.write(f"*2\r\n$6\r\nSELECT\r\n${len(str(db))}\r\n{db}\r\n".encode())
        await reader.readline()
        return cls(reader, writer)

    def delete(self, symbol: str) -> None:
        key = f"market_data:{symbol}"
        self.writer.write(f"*2\r\n$3\r\nDEL\r\n${len(key)}\r\n{key}\r\n".encode())
        self.sent += 1

    async def _drain(self) -> None:
        while line := await self.reader.readline():
            if line.startswith(b":1"):
                self.deleted += 1

    async def close(self) -> None:
        await asyncio.sleep(0.1)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.writer.close()


async def measure_http(
    name: str,
    port: int,
    token: str,
    sequence: list[str],
    args: argparse.Namespace,
    pids: dict[str, int],
    hub_url: str,
) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    requests = [http_request("GET", f"/api/v1/market-data?symbols={s}", auth) for s in sequence]
    deleter = await RedisDeleter.open(REDIS_DB) if name == "hub-miss" else None
    bad: list[bytes] = []

    def on_response(i: int, status: int, body: bytes, scheduled: float, done: float) -> None:
        if status != 200 and len(bad) < 3:
            bad.append(body[:300])
        if deleter is not None:
            deleter.delete(sequence[i % len(sequence)])

    if name in ("hub-hit", "peer-redis"):  # the miss candidate leaves the cache cold
        async with httpx.AsyncClient(base_url=hub_url, timeout=10) as http:
            r = await http.post(
                "/api/v1/admin/market-data/cache/warm",
                json={"symbols": sorted(set(sequence))},
                headers=auth,
            )
            r.raise_for_status()
    before = await scrape_metrics(hub_url, "hub_market_data_cache")
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
    after = await scrape_metrics(hub_url, "hub_market_data_cache")
    if deleter is not None:
        await deleter.close()
    row: dict[str, Any] = {
        "candidate": name,
        "offered_per_s": result.offered_per_s,
        "completed_per_s": result.completed_per_s,
        "latency": result.latency,
        "statuses": result.statuses,
        "unfinished": result.unfinished,
        "client_cpu_pct": result.client_cpu_pct,
        "dispatch_lateness_p99_ms": result.late_dispatch_ms_p99,
        "server_cpu_pct": server_cpu,
        "host_cpu_pct": host_cpu,
    }
    if name.startswith("hub"):
        hits = after.get("hub_market_data_cache_hits_total", 0) - before.get(
            "hub_market_data_cache_hits_total", 0
        )
        misses = after.get("hub_market_data_cache_misses_total", 0) - before.get(
            "hub_market_data_cache_misses_total", 0
        )
        row["cache"] = {
            "hits": int(hits),
            "misses": int(misses),
            "miss_ratio": round(misses / max(hits + misses, 1), 4),
            "errors": int(
                after.get("hub_market_data_cache_errors_total", 0)
                - before.get("hub_market_data_cache_errors_total", 0)
            ),
        }
    if bad:
        row["sample_errors"] = [b.decode(errors="replace") for b in bad]
    return row


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    floor: dict[float, float] = {}
    rates = sorted({r["offered_per_s"] for run in runs for r in run["http"]}, reverse=True)
    for rate, name in [(r, n) for r in rates for n in CANDIDATES]:
        key = f"{name}@{rate:g}/s"
        rows = [
            r
            for run in runs
            for r in run["http"]
            if r["candidate"] == name and r["offered_per_s"] == rate
        ]
        if not rows:
            continue
        summary[key] = {
            "p50_ms": median_of(rows, "latency.p50_ms"),
            "p99_ms": median_of(rows, "latency.p99_ms"),
            "p99_ms_per_run": [r["latency"]["p99_ms"] for r in rows],
            "completed_per_s": median_of(rows, "completed_per_s"),
            "client_cpu_pct": median_of(rows, "client_cpu_pct"),
            "host_cpu_pct": median_of(rows, "host_cpu_pct"),
            "miss_ratio": median_of(rows, "cache.miss_ratio"),
            "runs": len(rows),
        }
        if name == "peer-memory":
            floor[rate] = summary[key]["p99_ms"]
    for key, row in summary.items():
        rate = float(key.split("@")[1].removesuffix("/s"))
        if floor.get(rate) and row["p99_ms"] is not None:
            row["p99_ratio_to_peer_memory"] = round(row["p99_ms"] / floor[rate], 2)
    grpc = [run["grpc"] for run in runs if run.get("grpc")]
    if grpc:
        summary["grpc-GetMarketData"] = {
            "calls_per_s": median_of(grpc, "calls_per_s"),
            "calls_per_s_per_run": [g["calls_per_s"] for g in grpc],
            "p50_ms": median_of(grpc, "latency.p50_ms"),
            "p99_ms": median_of(grpc, "latency.p99_ms"),
            "server_cpu_pct": median_of(grpc, "server_cpu_pct"),
            "runs": len(grpc),
        }
    return summary


async def main(args: argparse.Namespace) -> None:
    import tempfile

    load_at_start = [round(x, 2) for x in __import__("os").getloadavg()]
    candidates = [c for c in args.only.split(",") if c]
    runs: list[dict[str, Any]] = []
    settings = {"HUB_CACHE_TTL": "3600", "HUB_ADMIN_EMAILS": ADMIN_EMAIL}
    settings["HUB_LOGIN_LIMIT_PER_CLIENT"] = "100000"
    settings["HUB_REGISTER_LIMIT_PER_CLIENT"] = "100000"
    async with fresh_schema() as schema_url:
        # RabbitMQ carries only order work; GET /market-data and gRPC never touch it.
        env = services_env(schema_url, REDIS_DB, amqp=args.amqp, **settings)
        async with run_hub(env, feed=True, migrate=True) as hub:
            token = (await register_and_login(hub.url, [ADMIN_EMAIL]))[ADMIN_EMAIL]["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=hub.url, timeout=10, headers=auth) as http:
                listed = (await http.get("/api/v1/instruments?limit=500")).json()
                symbols = sorted(i["symbol"] for i in listed)
                bodies = {
                    s: (await http.get(f"/api/v1/market-data?symbols={s}")).text for s in symbols
                }
            rng = random.Random(args.seed)
            sequence = symbols[:]
            rng.shuffle(sequence)
            tmp = Path(tempfile.mkdtemp(prefix="md-bench-"))
            (tmp / "bodies.json").write_text(json.dumps(bodies))
            peers: dict[str, tuple[int, Proc]] = {}
            try:
                for name in ("peer-memory", "peer-redis"):
                    if name not in candidates:
                        continue
                    port = free_port()
                    argv = [sys.executable, __file__, "--serve", name, "--port", str(port)]
                    argv += ["--bodies", str(tmp / "bodies.json")]
                    argv += ["--redis-url", env["HUB_REDIS_URL"]]
                    proc = spawn(name, argv, {}, tmp)
                    peers[name] = (port, proc)
                for port, proc in peers.values():
                    await wait_ready(
                        f"http://127.0.0.1:{port}/api/v1/market-data?symbols={symbols[0]}",
                        proc,
                        headers=auth,
                    )
                for run in range(args.runs):
                    rows = []
                    for rate, name in [(r, n) for r in args.rates for n in candidates]:
                        args.rate = rate
                        if name.startswith("hub"):
                            port, pids = hub.port, {"serve": hub.serve.pid}
                        else:
                            port, pids = peers[name][0], {"server": peers[name][1].pid}
                        row = await measure_http(name, port, token, sequence, args, pids, hub.url)
                        rows.append(row)
                        print(
                            f"run {run + 1}/{args.runs} {name} @ {rate:g}/s: "
                            f"{row['completed_per_s']}/s p50 {row['latency']['p50_ms']} ms "
                            f"p99 {row['latency']['p99_ms']} ms, client cpu "
                            f"{row['client_cpu_pct']}%, server cpu {row['server_cpu_pct']}, "
                            f"cache {row.get('cache')}",
                            file=sys.stderr,
                            flush=True,
                        )
                    grpc = None
                    if args.grpc_callers > 0:
                        grpc = await measure_grpc(
                            hub.grpc_port, token, sequence, args, hub.serve.pid
                        )
                        print(
                            f"run {run + 1}/{args.runs} grpc: {grpc['calls_per_s']} calls/s "
                            f"p50 {grpc['latency']['p50_ms']} ms p99 {grpc['latency']['p99_ms']} "
                            f"ms, server cpu {grpc['server_cpu_pct']}%, "
                            f"client cpu {grpc['client_cpu_pct']}",
                            file=sys.stderr,
                            flush=True,
                        )
                    runs.append({"http": rows, "grpc": grpc})
            finally:
                await stop_all([p for _, p in peers.values()])
    report = {
        "benchmark": "market_data",
        "question": __doc__.split("\n\n")[0].replace("\n", " "),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "settings": {
            "mode": "services (hub serve + hub feed; PostgreSQL, Redis, RabbitMQ)",
            "rates_per_s": args.rates,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "symbols_per_request": 1,
            "symbols": len(symbols),
            "seed": args.seed,
            "runs": args.runs,
            "grpc_callers": args.grpc_callers,
            "grpc_client_processes": args.grpc_procs,
            "hub_env": {k: v for k, v in env.items() if k != "HUB_JWT_SECRET"},
            "target": "hub-hit p99 <= 5 ms at 2,000 req/s",
        },
        "host": {**environment(PACKAGES), "load_average_at_start": load_at_start},
        "summary": summarize(runs),
        "runs": runs,
    }
    path = write_report("market_data", report, args.out)
    print(json.dumps(report["summary"], indent=2))
    print(f"wrote {path}", file=sys.stderr)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per candidate, 1 run")
    parser.add_argument(
        "--rates", default="2000,1000", help="requests per second, each measured in turn"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds sent, not measured")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default=",".join(CANDIDATES))
    parser.add_argument("--grpc-callers", type=int, default=16, help="0 skips gRPC")
    parser.add_argument("--grpc-procs", type=int, default=1, help="gRPC client processes")
    parser.add_argument(
        "--no-amqp", dest="amqp", action="store_false", help="leave HUB_AMQP_URL unset"
    )
    parser.add_argument("--out", help="JSON path (default benchmarks/results/market_data-DATE)")
    for hidden in ("--serve", "--bodies", "--redis-url", "--target", "--token", "--symbols"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--callers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--grpc-client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    args.rate = args.rates[0]
    if args.quick:
        args.duration, args.warmup, args.runs = 2.0, 1.0, 1
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve:
        serve_peer(arguments.serve, arguments.port, arguments.bodies, arguments.redis_url)
    elif arguments.grpc_client:
        grpc_client(arguments)
    else:
        import uvloop

        uvloop.run(main(arguments))
