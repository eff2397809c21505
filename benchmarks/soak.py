"""Does Hub stay flat under a long mixed load? Sockets, orders and logins for minutes, in services
mode, with the resources that leak sampled every 10 s.

The load, all at once for --minutes (default 10):
- --sockets WebSockets (default 5,000) from the C load client (benchmarks/wsload), each
  authenticated and subscribed to 5 quote channels and its user's `orders` channel, offering
  permessage-deflate as browsers do; `hub feed` publishes 50 quotes/s;
- --orders-per-s market orders (default 200), open loop, over --users registered users (each
  account opened with HUB_PAPER_CASH large enough for the whole run);
- --logins-per-s logins (default 2), open loop, the same users' passwords (argon2 each).

`hub serve` + one `hub worker` + `hub feed` on PostgreSQL, Redis and RabbitMQ. Every 10 s:
each Hub process's RSS and open file descriptors, `hub serve`'s asyncio task count (from
/metrics), PostgreSQL backends in the database, Redis connected clients, and the sockets the
client holds. "Flat" is judged on the second half of the run (after warm-up): the slope of a
least-squares line, per minute, next to the value itself.

    python benchmarks/soak.py                 # 10 minutes
    python benchmarks/soak.py --quick         # 1 minute, 500 sockets, 50 orders/s

JSON and a PNG (each series against time) in benchmarks/results/soak-DATE.*. Schema, Redis keys
and RabbitMQ queues are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import psutil
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.charts import figure
from harness.config import CLIENT_CPUS, PASSWORD
from harness.httpload import http_request, open_loop
from harness.hub import Hub, run_hub, scrape_metrics
from harness.procs import raise_nofile
from harness.report import environment, write_report
from harness.services import fresh_schema, redis_prefix, services_env
from harness.stats import slope_per_min
from harness.users import register_and_login, user_id
from harness.wsload import WsLoad, build, cpu_pct, subscribed_clients

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM"]
SAMPLE_EVERY_S = 10.0
REDIS_DB = 13


async def sample(
    hub: Hub, client: WsLoad, pg: asyncpg.Connection, rds: aioredis.Redis
) -> dict[str, Any]:
    row: dict[str, Any] = {"t": time.time()}
    for name, pid in hub.pids().items():
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            row[f"{name}_rss_mib"] = round(proc.memory_info().rss / 2**20, 1)
            row[f"{name}_fds"] = proc.num_fds()
    metrics = await scrape_metrics(hub.url, "hub_process_tasks")
    row["serve_tasks"] = next(iter(metrics.values()), None)
    row["postgres_backends"] = await pg.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    )
    row["redis_clients"] = (await rds.info("clients"))["connected_clients"]
    stats = await client.stats()
    row["sockets_open"] = stats["open"]
    row["deliveries_per_s"] = round(stats["deliveries"] / stats["interval_s"])
    row["client_cpu_pct"] = cpu_pct(stats)
    row["closed_by_server"] = stats["closed_by_server"]
    return row


def requests(tokens: list[str], emails: list[str]) -> tuple[list[bytes], list[bytes]]:
    """The seeded market orders (over the users' tokens) and the logins (one a user)."""
    rng = random.Random(7)
    orders = [
        http_request(
            "POST",
            "/api/v1/orders",
            {"Authorization": f"Bearer {tokens[k % len(tokens)]}"},
            msgspec.json.encode(
                {"symbol": rng.choice(SYMBOLS), "side": "buy", "type": "market", "qty": "1"}
            ),
        )
        for k in range(len(tokens) * 8)
    ]
    logins = [
        http_request(
            "POST",
            "/api/v1/auth/login",
            # Logins come from many addresses (the per-address limit would refuse one
            # address at 2/s); uvicorn trusts X-Forwarded-For from 127.0.0.1.
            {
                "Content-Type": "application/json",
                "X-Forwarded-For": f"10.9.{k // 250}.{k % 250 + 1}",
            },
            msgspec.json.encode({"email": e, "password": PASSWORD}),
        )
        for k, e in enumerate(emails)
    ]
    return orders, logins


async def run(args: argparse.Namespace) -> dict[str, Any]:
    binary, _ = build()
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        return await measure(args, binary, workdir)
    finally:
        shutil.rmtree(binary.parent, ignore_errors=True)


async def measure(args: argparse.Namespace, binary: Path, workdir: Path) -> dict[str, Any]:
    async with fresh_schema() as schema, redis_prefix(REDIS_DB) as (redis_url, _prefix):
        env = services_env(
            schema,
            REDIS_DB,
            HUB_PAPER_CASH="100000000",
            HUB_ACCESS_TOKEN_TTL="10800",
            HUB_FEED_QPS="50",
            # The setup registers and logs in every user from 127.0.0.1.
            HUB_LOGIN_LIMIT_PER_CLIENT="100000",
            HUB_REGISTER_LIMIT_PER_CLIENT="100000",
        )
        env["HUB_REDIS_URL"] = redis_url
        async with run_hub(env, workers=1, feed=True, migrate_first=True) as hub:
            emails = [f"soak-{i}-{uuid.uuid4().hex[:6]}@bench.local" for i in range(args.users)]
            logged = await register_and_login(hub.url, emails, concurrency=4)
            tokens = [logged[e]["access_token"] for e in emails]
            needed = -(-args.sockets // 16)  # sockets per user are capped at 16
            if needed > len(tokens):
                raise SystemExit(f"--users must be at least {needed} for {args.sockets} sockets")
            user_ids = [uuid.UUID(await user_id(hub.url, t)) for t in tokens[:needed]]
            channels = [f"quotes:{s}" for s in SYMBOLS[:5]] + ["orders"]
            client = await WsLoad.start(
                binary,
                hub.port,
                args.sockets,
                "--sources",
                "4",
                "--deflate-share",
                "1.0",
                *subscribed_clients(args.sockets, channels, workdir, user_ids),
                # Answer the server's heartbeat as hubclient.js does, or the sockets would be
                # closed as idle (4004) after 75 s.
                "--reply-on",
                '"type":"ping"',
                "--reply",
                '{"action":"pong"}',
                cpus=CLIENT_CPUS,
            )
            ready = await client.ready()
            print(f"sockets ready: {ready}", flush=True)
            pg = await asyncpg.connect(env["HUB_DATABASE_URL"].split("?")[0])
            rds = aioredis.from_url(redis_url.split("?")[0])
            orders, logins = requests(tokens, emails)
            duration = args.minutes * 60

            def cycle(requests: list[bytes], rate: float, connections: int) -> Any:
                return asyncio.create_task(
                    open_loop(
                        hub.host,
                        hub.port,
                        lambda i: requests[i % len(requests)],
                        rate=rate,
                        duration=duration,
                        warmup=0,
                        connections=connections,
                    )
                )

            loads = [cycle(orders, args.orders_per_s, 32), cycle(logins, args.logins_per_s, 4)]
            rows = []
            try:
                start = time.monotonic()
                while time.monotonic() - start < duration:
                    row = await sample(hub, client, pg, rds)
                    row["elapsed_s"] = round(time.monotonic() - start, 1)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    await asyncio.sleep(SAMPLE_EVERY_S)
                order_result, login_result = await asyncio.gather(*loads)
            finally:
                for task in loads:
                    task.cancel()
                await client.stop()
                await pg.close()
                await rds.aclose()
    second_half = rows[len(rows) // 2 :]
    keys = [k for k in rows[0] if k not in ("t", "elapsed_s")] if rows else []
    return {
        "ready": ready,
        "samples": rows,
        "orders": vars(order_result),
        "logins": vars(login_result),
        "flatness": {
            key: {
                "first": rows[0].get(key),
                "last": rows[-1].get(key),
                "max": max(
                    (r[key] for r in rows if isinstance(r.get(key), int | float)), default=None
                ),
                "slope_per_min_second_half": slope_per_min(second_half, key),
            }
            for key in keys
        },
    }


def plot(report: dict[str, Any], path: Path) -> Path:
    rows = report["samples"]
    x = [r["elapsed_s"] / 60 for r in rows]
    panels = [
        ("RSS, MiB", ["serve_rss_mib", "worker1_rss_mib", "feed_rss_mib"]),
        ("open file descriptors", ["serve_fds", "worker1_fds", "feed_fds"]),
        ("hub serve asyncio tasks", ["serve_tasks"]),
        ("connections", ["postgres_backends", "redis_clients"]),
        ("sockets held / deliveries per s / 100", ["sockets_open", "deliveries_per_s"]),
    ]
    with figure(path, (20, 4), ncols=len(panels), dpi=100) as (fig, axes):
        for ax, (title, keys) in zip(axes, panels, strict=True):
            for key in keys:
                ys = [r.get(key) for r in rows]
                if key == "deliveries_per_s":
                    ys = [y / 100 if isinstance(y, int | float) else None for y in ys]
                ax.plot(
                    x, [y if y is not None else float("nan") for y in ys], "-o", ms=3, label=key
                )
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("minutes")
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=7)
        s = report["settings"]
        fig.suptitle(
            f"soak: {s['sockets']} sockets + {s['orders_per_s']} orders/s + {s['logins_per_s']}"
            f" logins/s for {s['minutes']} min, services mode; Hub {report['host']['git_commit']},"
            f" {report['date']}",
            fontsize=9,
        )
    return path


async def main(args: argparse.Namespace) -> None:
    raise_nofile()
    body = await run(args)
    report = {
        "benchmark": "soak",
        "date": time.strftime("%Y-%m-%d"),
        "host": environment(["uvicorn", "asyncpg", "redis", "aio-pika"]),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        **body,
    }
    path = write_report("soak", report, args.out)
    print(f"wrote {path}\nchart {plot(report, path.with_suffix('.png'))}")
    print(json.dumps(report["flatness"], indent=1))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--orders-per-s", type=float, default=200)
    parser.add_argument("--logins-per-s", type=float, default=2)
    parser.add_argument("--users", type=int, default=320)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.sockets, args.orders_per_s, args.users = 1, 500, 50, 40
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
