"""Fan-out at scale: memory per idle connection, connections one process holds, market watch.

Three questions `fanout.py` (1,000 clients, one channel) does not answer:

- idle:   server RSS per idle WebSocket at 10,000 connections (authenticated, subscribed to one
          channel): RSS after they connected minus RSS before, / N. Hub and the naive Starlette
          endpoint of fanout.py.
- hold:   how many concurrent connections one Hub process holds: open as many as the open-file
          limit allows (target 50,000), hold them, then check that a publication reaches them.
- market: Hub with the Redis broker: 200 latest-value channels quotes:S000..S199, every client
          subscribed to 20 of them (Zipf-popular, seeded), quotes published at a fixed total rate
          (round robin over the 200 symbols); deliveries/s, publish-to-receive latency, the
          engine's conflation counters. Hub only: the peers have no broker or conflation.

    python benchmarks/fanout_scale.py idle --clients 10000 --runs 3
    python benchmarks/fanout_scale.py hold --clients 50000 --hold 10
    python benchmarks/fanout_scale.py market --clients 1000 --rates 2000,5000 --runs 3

Every process raises its soft open-file limit to the hard limit (`ulimit -Hn`); connections
beyond that limit cannot be opened, so `hold` caps the count there and says so. Client sockets
are spread over several loopback source addresses (127.0.0.1, .2, .3, ...) so that ephemeral
ports (~28k per source address and destination) are not the limit. Loopback only. The market
mode uses Redis database 14 with a key prefix and deletes only the keys under that prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # benchmarks/ is not a package
import fanout

ROOT = fanout.ROOT
REDIS_URL = "redis://127.0.0.1:6379/14?prefix=bench-fanout:"
PREFIX = "bench-fanout:"
SYMBOLS = [f"quotes:S{i:03d}" for i in range(200)]
PER_CLIENT = 20
P99_LIMIT_MS = 50.0
PUBLISHERS = 32  # concurrent publishes in flight (market mode)


# --- servers (own process: `fanout_scale.py serve --serve NAME --port P`) ------------------------


def serve_market(port: int, seed: int, http: bool = True) -> None:
    """Hub on the Redis broker; publishes at the rate set on stdin (`http=False`: publish only)."""
    from starlette.applications import Starlette

    from streaming import ChannelKind, Engine, Limits, Principal

    class Anyone:
        async def authenticate(self, token: str) -> Principal:
            return Principal(token)

        def resolve(self, principal: Principal, channel: str) -> str | None:
            return channel

    limits = Limits(max_connections_per_principal=100_000, idle_timeout=3600, ping_interval=3600)
    engine = Engine(
        REDIS_URL, authorizer=Anyone(), kind_of=lambda _: ChannelKind.LATEST, limits=limits
    )
    published = failures = 0

    async def publish_loop() -> None:
        nonlocal published, failures
        rng = random.Random(seed)
        prices = [50.0 + rng.uniform(0, 400) for _ in SYMBOLS]
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        rate, start, sent, nxt = 0.0, time.monotonic(), 0, 0

        def quote(i: int) -> dict[str, Any]:
            prices[i] = max(1.0, prices[i] + rng.uniform(-0.05, 0.05))
            return {
                "symbol": SYMBOLS[i][7:],
                "bid": f"{prices[i]:.2f}",
                "ask": f"{prices[i] + 0.02:.2f}",
                "size": rng.randint(1, 500),
                "t": time.time(),
            }

        async def commands() -> None:
            nonlocal rate, start, sent
            while line := await reader.readline():
                words = line.split()
                if words and words[0] == b"rate":
                    rate, start, sent = float(words[1]), time.monotonic(), 0
                elif words and words[0] == b"stats":
                    stats: dict[str, float] = {
                        **engine.stats(),
                        "published": published,
                        "failures": failures,
                    }
                    stats["t"] = time.monotonic()
                    print(json.dumps(stats), flush=True)
            os._exit(0)

        task = asyncio.create_task(commands())
        while not task.done():
            if rate > 0:
                due = int((time.monotonic() - start) * rate) - sent
                if due > 0:
                    batch = []
                    for _ in range(due):
                        batch.append((SYMBOLS[nxt], nxt))
                        nxt = (nxt + 1) % len(SYMBOLS)
                    # At most PUBLISHERS round trips to Redis in flight: the engine's redis-py
                    # pool is bounded and fails (not waits) beyond its size.
                    for i in range(0, len(batch), PUBLISHERS):
                        results = await asyncio.gather(
                            *(
                                engine.publish(ch, "quote", quote(k))
                                for ch, k in batch[i : i + PUBLISHERS]
                            ),
                            return_exceptions=True,
                        )
                        failed = [r for r in results if isinstance(r, BaseException)]
                        published += len(results) - len(failed)
                        failures += len(failed)
                    sent += due
            await asyncio.sleep(0.001)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        async with engine:
            task = asyncio.create_task(publish_loop())
            yield
            task.cancel()

    async def publish_only() -> None:
        async with engine:
            print("ready", flush=True)
            await publish_loop()

    if http:
        app = Starlette(routes=[engine.websocket_route("/ws")], lifespan=lifespan)
        fanout.run_uvicorn(app, port)
    else:
        asyncio.run(publish_only())


SERVERS: dict[str, Callable[[int, int], None]] = {
    "hub": fanout.serve_hub,
    "starlette": fanout.serve_starlette,
    "hub-market": serve_market,
    "publisher": lambda port, seed: serve_market(port, seed, http=False),
}


# --- load client ---------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: asyncio.subprocess.Process
    port: int

    async def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def stats(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        await self.command("stats")
        return dict(json.loads(await self.process.stdout.readline()))

    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def cpu(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    async def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def start_server(name: str, seed: int) -> Server:
    port = fanout.free_port()
    argv = [sys.executable, __file__, "serve", "--serve", name, "--port", str(port)]
    process = await asyncio.create_subprocess_exec(
        *argv, "--seed", str(seed), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    if not line.startswith(b"ready"):
        raise RuntimeError(f"{name} did not start")
    for _ in range(200 if name != "publisher" else 0):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            break
        except OSError:
            await asyncio.sleep(0.05)
    return Server(name, process, port)


class Quote(msgspec.Struct):
    t: float


class HubMessage(msgspec.Struct):
    type: str
    data: Quote | None = None


_hub = msgspec.json.Decoder(list[HubMessage])


class Tally:
    """Deliveries and latencies while recording; per-client receive counts."""

    def __init__(self) -> None:
        self.recording = False
        self.count = 0
        self.latencies: list[float] = []


class Client(fanout.WsClient):
    """fanout's client plus this benchmark's per-client state (set in connect_many)."""

    got: int  # quotes received
    pending: int  # `subscribed` replies still expected
    index: int  # position in the connection order


def hub_handler(tally: Tally, subscribe: Any) -> Any:
    """subscribe(client) -> (frame, n_channels); the client is ready after n `subscribed`."""

    def on_text(client: Client, payload: bytes) -> None:
        now = time.time()
        for message in _hub.decode(payload):
            kind = message.type
            if kind == "quote" and message.data is not None:
                client.got += 1
                if tally.recording:
                    tally.count += 1
                    tally.latencies.append(now - message.data.t)
            elif kind == "connected":
                frame, client.pending = subscribe(client)
                client.send(frame)
            elif kind == "subscribed":
                client.pending -= 1
                if client.pending == 0 and not client.ready.done():
                    client.ready.set_result(None)

    return on_text


def one_channel(client: Client) -> tuple[bytes, int]:
    return b'{"action":"subscribe","channels":["quotes:AAPL"]}', 1


def plain_handler(client: Client, payload: bytes) -> None:
    client.got += 1


async def connect_many(
    server: Server, n: int, on_text: Any, sources: int, concurrency: int = 200
) -> tuple[list[Client], list[str]]:
    """Open n connections, spread over `sources` loopback source addresses."""
    loop = asyncio.get_running_loop()
    hub = server.name.startswith("hub")
    headers = {"Authorization": "Bearer bench"} if hub else {}
    gate = asyncio.Semaphore(concurrency)
    clients: list[Client] = []
    errors: list[str] = []

    async def one(i: int) -> None:
        async with gate:
            client = Client("/ws", headers, on_text, ready_on_open=not hub)
            client.got = 0
            client.index = i
            source = f"127.0.0.{1 + i % sources}"
            try:
                await loop.create_connection(
                    lambda: client, "127.0.0.1", server.port, local_addr=(source, 0)
                )
                async with asyncio.timeout(60):
                    await client.ready
            except (OSError, RuntimeError, TimeoutError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:120])
                if client.transport is not None:
                    client.transport.close()
                return
            clients.append(client)

    await asyncio.gather(*(one(i) for i in range(n)))
    return clients, errors


def close_all(clients: list[Client]) -> None:
    for client in clients:
        if client.transport is not None:
            client.transport.close()


def pct(values: list[float], q: float) -> float:
    return round(fanout.percentile(values, q) * 1000, 2)


# --- idle: RSS per idle connection ---------------------------------------------------------------


async def run_idle(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {}
    for run in range(args.runs):
        for name in args.only.split(","):
            server = await start_server(name, args.seed + run)
            try:
                await asyncio.sleep(1.0)
                before = server.rss()
                t0 = time.monotonic()
                handler = hub_handler(Tally(), one_channel) if name == "hub" else plain_handler
                clients, errors = await connect_many(server, args.clients, handler, args.sources)
                opened = time.monotonic() - t0
                await asyncio.sleep(3.0)
                after = server.rss()
                row = {
                    "connections": len(clients),
                    "errors": len(errors),
                    "open_seconds": round(opened, 1),
                    "rss_before_mib": round(before / 2**20, 1),
                    "rss_after_mib": round(after / 2**20, 1),
                    "rss_per_idle_connection_kib": round((after - before) / len(clients) / 1024, 2),
                }
                close_all(clients)
            finally:
                await server.stop()
            print(f"run {run + 1} {name}: {row}", file=sys.stderr, flush=True)
            results.setdefault(name, []).append(row)
            await asyncio.sleep(2.0)
    summary = {
        name: {
            "rss_per_idle_connection_kib": statistics.median(
                r["rss_per_idle_connection_kib"] for r in rows
            ),
            "per_run": [r["rss_per_idle_connection_kib"] for r in rows],
        }
        for name, rows in results.items()
    }
    return {"summary": summary, "runs": results}


# --- hold: connections one process holds ---------------------------------------------------------


async def run_hold(args: argparse.Namespace, limit: int) -> dict[str, Any]:
    headroom = 100  # listening socket, epoll, pipes, redis, module files, ...
    n = min(args.clients, limit - headroom)
    capped = n < args.clients
    server = await start_server("hub", args.seed)
    tally = Tally()
    try:
        await asyncio.sleep(1.0)
        before = server.rss()
        t0 = time.monotonic()
        clients, errors = await connect_many(
            server, n, hub_handler(tally, one_channel), args.sources
        )
        opened = time.monotonic() - t0
        print(f"opened {len(clients)} in {opened:.1f}s", file=sys.stderr, flush=True)
        await asyncio.sleep(args.hold)
        alive = [c for c in clients if not c.closed.done()]
        rss = server.rss()
        # 2 publications/s for 3 s: every live client should receive about 6.
        await server.command("rate 2")
        await asyncio.sleep(3.0)
        await server.command("rate 0")
        await asyncio.sleep(2.0)
        reached = sum(1 for c in alive if c.got > 0)
        received = [c.got for c in alive]
        result = {
            "requested": args.clients,
            "attempted": n,
            "capped_by_open_file_limit": capped,
            "open_file_hard_limit": limit,
            "source_addresses": args.sources,
            "opened": len(clients),
            "open_errors": len(errors),
            "first_errors": sorted(set(errors))[:3],
            "open_seconds": round(opened, 1),
            "held_after_seconds": args.hold,
            "held": len(alive),
            "publication_reached": reached,
            "received_min_median_max": [min(received), statistics.median(received), max(received)]
            if received
            else None,
            "server_rss_mib": round(rss / 2**20, 1),
            "rss_per_connection_kib": round((rss - before) / max(len(alive), 1) / 1024, 2),
        }
        close_all(clients)
    finally:
        await server.stop()
    return result


# --- market: 200 channels through Redis ----------------------------------------------------------


def zipf_subscriptions(n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    weights = [1.0 / (k + 1) for k in range(len(SYMBOLS))]
    cumulative = list(__import__("itertools").accumulate(weights))
    result = []
    for _ in range(n):
        picked: set[int] = set()
        while len(picked) < PER_CLIENT:
            picked.add(rng.choices(range(len(SYMBOLS)), cum_weights=cumulative)[0])
        result.append([SYMBOLS[i] for i in sorted(picked)])
    return result


async def clean_redis() -> int:
    import redis.asyncio as redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/14")
    deleted = 0
    try:
        keys = [k async for k in client.scan_iter(match=PREFIX + "*", count=1000)]
        for i in range(0, len(keys), 500):
            deleted += await client.delete(*keys[i : i + 500])
    finally:
        await client.aclose()
    return deleted


async def run_market(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for run in range(args.runs):
        await clean_redis()
        subscriptions = zipf_subscriptions(args.clients, args.seed + run)
        popularity = [sum(s in subs for subs in subscriptions) for s in SYMBOLS]
        server = await start_server("hub-market", args.seed + run)
        # Separate publisher (the usual deployment: a market-data feed publishes to Redis, the
        # WebSocket node only fans out), or the WebSocket process publishes itself.
        publisher = server
        if args.publisher == "separate":
            publisher = await start_server("publisher", args.seed + run)
        tally = Tally()

        def subscribe(client: Client, subs: list[list[str]] = subscriptions) -> Any:
            channels = subs[client.index]
            return msgspec.json.encode({"action": "subscribe", "channels": channels}), len(channels)

        steps: list[dict[str, Any]] = []
        try:
            clients, errors = await connect_many(
                server, args.clients, hub_handler(tally, subscribe), 1, concurrency=50
            )
            await asyncio.sleep(1.0)
            for rate in args.rates:
                await publisher.command(f"rate {rate}")
                await asyncio.sleep(args.warmup)
                me = psutil.Process()
                c0, s0, st0 = sum(me.cpu_times()[:2]), server.cpu(), await server.stats()
                p0, pt0 = publisher.cpu(), await publisher.stats()
                tally.count, tally.latencies, tally.recording = 0, [], True
                await asyncio.sleep(args.step)
                tally.recording = False
                c1, s1, st1 = sum(me.cpu_times()[:2]), server.cpu(), await server.stats()
                p1, pt1 = publisher.cpu(), await publisher.stats()
                for key in ("published", "failures"):
                    st0[key], st1[key] = pt0[key], pt1[key]
                elapsed = st1["t"] - st0["t"]
                await publisher.command("rate 0")
                await asyncio.sleep(1.0)

                def per_s(key: str, a: dict[str, Any] = st0, b: dict[str, Any] = st1) -> float:
                    return float((b[key] - a[key]) / elapsed)  # noqa: B023

                published = per_s("published")
                offered = per_s("deliveries")  # handed to an outbox
                conflated = per_s("conflated")
                p99 = pct(tally.latencies, 0.99)
                step = {
                    "rate": rate,
                    "published_per_s": round(published),
                    "broker_messages_in_per_s": round(per_s("messages_in")),
                    "offered_deliveries_per_s": round(offered),
                    "conflated_per_s": round(conflated),
                    "conflated_pct": round(100 * conflated / offered, 1) if offered else 0.0,
                    "received_deliveries_per_s": round(tally.count / elapsed),
                    "p50_ms": pct(tally.latencies, 0.50),
                    "p99_ms": p99,
                    "server_cpu_pct": round(100 * (s1 - s0) / elapsed, 1),
                    "client_cpu_pct": round(100 * (c1 - c0) / elapsed, 1),
                    "publisher_cpu_pct": round(100 * (p1 - p0) / elapsed, 1)
                    if publisher is not server
                    else None,
                    "publish_failures": st1["failures"] - st0["failures"],
                    "slow_consumer_closes": st1["slow_consumer_closes"],
                    "kept_up": published >= 0.95 * rate
                    and per_s("messages_in") >= 0.95 * published
                    and p99 <= P99_LIMIT_MS,
                    "load_average_1m": round(os.getloadavg()[0], 2),
                }
                print(f"run {run + 1}: {step}", file=sys.stderr, flush=True)
                steps.append(step)
            alive = sum(1 for c in clients if not c.closed.done())
            close_all(clients)
        finally:
            await server.stop()
            if publisher is not server:
                await publisher.stop()
            deleted = await clean_redis()
        runs.append(
            {
                "connected": len(clients),
                "open_errors": len(errors),
                "alive_at_end": alive,
                "subscribers_per_channel_max_median_min": [
                    max(popularity),
                    statistics.median(popularity),
                    min(popularity),
                ],
                "redis_keys_deleted": deleted,
                "steps": steps,
            }
        )
        await asyncio.sleep(2.0)
    summary = {}
    for i, rate in enumerate(args.rates):
        rows = [r["steps"][i] for r in runs]
        summary[str(rate)] = {
            key: statistics.median(row[key] for row in rows)
            for key in rows[0]
            if key not in ("rate", "kept_up")
        } | {"kept_up_runs": sum(row["kept_up"] for row in rows), "runs": len(rows)}
    return {"summary": summary, "runs": runs}


async def main(args: argparse.Namespace) -> None:
    limit = _common.raise_nofile()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    if args.mode == "idle":
        result = await run_idle(args)
    elif args.mode == "hold":
        result = await run_hold(args, limit)
    else:
        result = await run_market(args)
    report = {
        "benchmark": f"fanout_scale {args.mode}",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started": started,
        "config": {k: v for k, v in vars(args).items() if k not in ("serve", "port")},
        "host": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "open_file_hard_limit": limit,
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "note": "server and load client share the same cores",
        },
        **result,
    }
    text = json.dumps(report, indent=2)
    if args.out:
        await asyncio.to_thread(Path(args.out).write_text, text + "\n")
    print(text)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["idle", "hold", "market", "serve"])
    parser.add_argument("--clients", type=int)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default="hub,starlette", help="idle: candidates")
    parser.add_argument("--sources", type=int, default=4, help="loopback source addresses")
    parser.add_argument("--hold", type=float, default=10.0, help="hold: seconds to hold")
    parser.add_argument("--rates", default="2000,5000", help="market: quotes/s, total")
    parser.add_argument("--step", type=float, default=8.0, help="market: seconds measured")
    parser.add_argument("--warmup", type=float, default=2.0, help="market: seconds before")
    parser.add_argument(
        "--publisher", choices=["separate", "same"], default="separate", help="market: where"
    )
    parser.add_argument("--out", help="also write the JSON report here")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    default = {"idle": 10_000, "hold": 50_000, "market": 1_000, "serve": 0}
    args.clients = args.clients or default[args.mode]
    args.rates = [int(r) for r in str(args.rates).split(",")]
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.mode == "serve":
        _common.raise_nofile()
        SERVERS[arguments.serve](arguments.port, arguments.seed)
    else:
        asyncio.run(main(arguments))
