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
import contextlib
import json
import random
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.grpc_load import measure_grpc
from harness.httpload import http_request, load_flags, metered_open_loop
from harness.hub import Hub, run_hub, scrape_metrics
from harness.procs import Proc, bench_python, free_port, spawn, stop_all, wait_ready
from harness.report import environment, finish, head, load_average, out_flag
from harness.services import RedisDeleter, fresh_schema, new_keys_deleted, services_env
from harness.stats import median_of, medians
from harness.users import register_and_login

REDIS_DB = 11
ADMIN_EMAIL = "bench-admin@example.com"
CANDIDATES = ("hub-hit", "hub-miss", "peer-memory", "peer-redis")
PACKAGES: tuple[str, ...]
PACKAGES = ("starlette", "uvicorn", "uvloop", "httptools", "msgspec", "redis", "asyncpg")
PACKAGES += ("grpcio", "protobuf", "PyJWT", "psutil")


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

        def delta(kind: str) -> int:
            key = f"hub_market_data_cache_{kind}_total"
            return int(after.get(key, 0) - before.get(key, 0))

        hits, misses = delta("hits"), delta("misses")
        row["cache"] = {
            "hits": hits,
            "misses": misses,
            "miss_ratio": round(misses / max(hits + misses, 1), 4),
            "errors": delta("errors"),
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
            **medians(rows, {"p50_ms": "latency.p50_ms", "p99_ms": "latency.p99_ms"}),
            "p99_ms_per_run": [r["latency"]["p99_ms"] for r in rows],
            **medians(rows, {k: k for k in ("completed_per_s", "client_cpu_pct", "host_cpu_pct")}),
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
            **medians(grpc, {"p50_ms": "latency.p50_ms", "p99_ms": "latency.p99_ms"}),
            "server_cpu_pct": median_of(grpc, "server_cpu_pct"),
            "runs": len(grpc),
        }
    return summary


@contextlib.asynccontextmanager
async def start_peers(
    candidates: list[str], bodies: dict[str, str], redis_url: str, auth: dict[str, str]
) -> AsyncIterator[dict[str, tuple[int, Proc]]]:
    """The peers among the candidates, answering; name -> (port, process)."""
    tmp = Path(tempfile.mkdtemp(prefix="md-bench-"))
    (tmp / "bodies.json").write_text(json.dumps(bodies))
    peers: dict[str, tuple[int, Proc]] = {}
    try:
        for name in ("peer-memory", "peer-redis"):
            if name not in candidates:
                continue
            port = free_port()
            argv = bench_python("harness.peers", name, "--port", str(port))
            argv += ["--bodies", str(tmp / "bodies.json"), "--redis-url", redis_url]
            peers[name] = (port, spawn(name, argv, {}, tmp))
        for port, proc in peers.values():
            symbol = next(iter(bodies))
            url = f"http://127.0.0.1:{port}/api/v1/market-data?symbols={symbol}"
            await wait_ready(url, proc, headers=auth)
        yield peers
    finally:
        await stop_all([p for _, p in peers.values()])


async def one_run(
    run: int,
    args: argparse.Namespace,
    hub: Hub,
    peers: dict[str, tuple[int, Proc]],
    token: str,
    sequence: list[str],
) -> dict[str, Any]:
    """Every candidate at every rate, then the gRPC callers."""
    rows = []
    for rate, name in [(r, n) for r in args.rates for n in args.only.split(",") if n]:
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
            hub.grpc_port,
            token,
            sequence,
            callers=args.grpc_callers,
            processes=args.grpc_procs,
            duration=args.duration,
            warmup=args.warmup,
            serve_pid=hub.serve.pid,
        )
        print(
            f"run {run + 1}/{args.runs} grpc: {grpc['calls_per_s']} calls/s "
            f"p50 {grpc['latency']['p50_ms']} ms p99 {grpc['latency']['p99_ms']} "
            f"ms, server cpu {grpc['server_cpu_pct']}%, "
            f"client cpu {grpc['client_cpu_pct']}",
            file=sys.stderr,
            flush=True,
        )
    return {"http": rows, "grpc": grpc}


async def main(args: argparse.Namespace) -> None:
    load_at_start = load_average()
    candidates = [c for c in args.only.split(",") if c]
    runs: list[dict[str, Any]] = []
    settings = {"HUB_CACHE_TTL": "3600", "HUB_ADMIN_EMAILS": ADMIN_EMAIL}
    settings["HUB_LOGIN_LIMIT_PER_CLIENT"] = "100000"
    settings["HUB_REGISTER_LIMIT_PER_CLIENT"] = "100000"
    async with new_keys_deleted(REDIS_DB), fresh_schema() as schema_url:
        # RabbitMQ carries only order work; GET /market-data and gRPC never touch it.
        env = services_env(schema_url, REDIS_DB, amqp=args.amqp, **settings)
        async with run_hub(env, feed=True, migrate_first=True) as hub:
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
            async with start_peers(candidates, bodies, env["HUB_REDIS_URL"], auth) as peers:
                for run in range(args.runs):
                    runs.append(await one_run(run, args, hub, peers, token, sequence))
    report = {
        **head("market_data", __doc__),
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
    finish("market_data", report, args.out)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    load_flags(parser, duration=10.0, quick="2 s per candidate, 1 run")
    parser.add_argument(
        "--rates", default="2000,1000", help="requests per second, each measured in turn"
    )
    parser.add_argument("--only", default=",".join(CANDIDATES))
    parser.add_argument("--grpc-callers", type=int, default=16, help="0 skips gRPC")
    parser.add_argument("--grpc-procs", type=int, default=1, help="gRPC client processes")
    parser.add_argument(
        "--no-amqp", dest="amqp", action="store_false", help="leave HUB_AMQP_URL unset"
    )
    out_flag(parser, "market_data")
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    args.rate = args.rates[0]
    if args.quick:
        args.duration, args.warmup, args.runs = 2.0, 1.0, 1
    return args


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(parse_args()))
