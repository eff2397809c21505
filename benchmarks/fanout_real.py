"""Fan-out through the real path: `hub feed` -> Redis -> `hub serve` -> browser-like sockets.

Every figure here is measured on the path a deployment runs, not on the engine alone:

- Hub: `hub serve` in services mode (PostgreSQL, Redis, RabbitMQ), pinned to core 0; `hub feed`
  (its simulator, at a set quotes/s) publishes through the Redis broker from core 1.
- node-ws (the peer): Node.js `ws` on core 0, fed from the same Redis pub/sub channels by
  node-redis, forwarding each publication to its subscribers as one frame (its defaults: no
  permessage-deflate). Both are installed from npm into a temp dir.
- bare-uvicorn (the floor, for handshakes and idle memory only): an ASGI WebSocket endpoint that
  accepts and waits, under the same uvicorn settings `hub serve` uses.

The load client is `benchmarks/wsload/wsload.c`, built here from source with `cc` (C, epoll,
zlib), pinned to core 1, so the client is not the bottleneck; its CPU is reported beside every
figure. Its clients behave like browsers: they offer permessage-deflate (share set by
--deflate-share, default every client), authenticate with a first frame and subscribe to all 34
quote channels in a second one. Latency is wall clock from the quote's `timestamp` (set by the
feed when it makes the quote) to its arrival at the client.

    python benchmarks/fanout_real.py ladder   # F1, F2: deliveries/s ladder, knee, p99 at 20k/s
    python benchmarks/fanout_real.py idle     # F3: RSS per idle connection at 10,000
    python benchmarks/fanout_real.py storm    # connect + auth + subscribe 34 vs bare handshakes
    python benchmarks/fanout_real.py ladder --quick   # one short run, for a smoke test
    python benchmarks/fanout_real.py --chart ladder.json [more.json ...]  # redraw, others beside

Every run deletes the Redis keys under its prefix, its schema and its RabbitMQ queues.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

ROOT = _common.ROOT
WSLOAD_SOURCE = ROOT / "benchmarks" / "wsload" / "wsload.c"
SERVER_CPUS, CLIENT_CPUS = "0", "1"
P99_LIMIT_MS = 50.0
TARGETS = {"knee_vs_node": 1.5, "p99_at_20k_ms": 20.0, "idle_kib": 16.0, "storm_vs_bare": 0.7}

NODE_SERVER = r"""
// The peer: ws + node-redis. Subscribes (pattern) to the Hub broker's quote channels and sends
// each publication as one frame to every socket subscribed to its channel.
const { WebSocketServer } = require('ws');
const { createClient } = require('redis');
const [port, prefix, redisUrl] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const subscribers = new Map();
const wss = new WebSocketServer({ host: '127.0.0.1', port });
wss.on('connection', (ws) => {
  const mine = [];
  ws.on('message', (raw) => {
    let m; try { m = JSON.parse(raw); } catch { return; }
    if (m.action !== 'subscribe') return;
    const acks = [];
    for (const ch of m.channels) {
      let set = subscribers.get(ch);
      if (!set) subscribers.set(ch, set = new Set());
      set.add(ws); mine.push(set);
      acks.push(JSON.stringify({ type: 'subscribed', channel: ch, kind: 'latest', seq: 0 }));
    }
    ws.send('[' + acks.join(',') + ']');
  });
  ws.on('close', () => { for (const set of mine) set.delete(ws); });
});
(async () => {
  const sub = createClient({ url: redisUrl });
  await sub.connect();
  const head = prefix + 'ch:';
  await sub.pSubscribe(head + 'quotes:*', (message, channel) => {
    const name = channel.slice(head.length);
    const a = message.indexOf('\n'), b = message.indexOf('\n', a + 1);
    const frame = '[{"type":"' + message.slice(a + 1, b) + '","channel":"' + name + '","seq":' +
      message.slice(0, a) + ',"data":' + message.slice(b + 1) + '}]';
    const set = subscribers.get(name);
    if (set) for (const ws of set) ws.send(frame);
  });
  console.log('ready');
})();
"""

BARE_SERVER = """
import os, sys, uvicorn

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
            ws=os.environ.get("BARE_WS", "websockets-sansio"), ws_per_message_deflate=False,
            access_log=False,
            log_level="warning")
"""


# --- the load client ----------------------------------------------------------------------------


def build_wsload() -> Path:
    """Compile the C load client into a temp dir (needs cc and zlib's headers)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("fanout_real needs a C compiler (cc) to build its load client")
    out = Path(tempfile.mkdtemp(prefix="wsload-")) / "wsload"
    subprocess.run(
        [cc, "-O2", "-Wall", "-Wextra", "-o", str(out), str(WSLOAD_SOURCE), "-lz"], check=True
    )
    return out


class WsLoad:
    """One wsload process, driven over stdin/stdout (JSON lines)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, binary: Path, port: int, clients: int, *extra: str) -> WsLoad:
        argv = ["taskset", "-c", CLIENT_CPUS, str(binary), "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--clients", str(clients), *extra]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        return cls(proc)

    async def line(self, seconds: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), seconds)
        if not raw:
            raise RuntimeError("wsload exited")
        result: dict[str, Any] = json.loads(raw)
        return result

    async def ready(self, seconds: float = 300) -> dict[str, Any]:
        return await self.line(seconds)

    async def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"stats\n")
        await self.proc.stdin.drain()
        return await self.line(30)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                assert self.proc.stdin is not None
                self.proc.stdin.write(b"quit\n")
                await self.proc.stdin.drain()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def cpu_pct(stats: dict[str, Any]) -> float:
    busy = float(stats["cpu_user_s"] + stats["cpu_sys_s"])
    return round(100 * busy / float(stats["interval_s"]), 1)


# --- the servers --------------------------------------------------------------------------------


@dataclass
class Target:
    """A running server under test: where to connect and which process to meter."""

    name: str
    port: int
    pid: int
    path: str
    prefix: str


def symbols() -> list[str]:
    from hub.adapters.seed import seed_instruments

    return [s.instrument.symbol for s in seed_instruments()]


def auth_file(user_ids: list[uuid.UUID], sockets: int, workdir: Path) -> Path:
    """One `auth` frame per socket (socket i is user i mod len(user_ids)), tokens minted with
    the benchmark's JWT secret and valid for 3 hours, as lines for wsload's --send-file."""
    from hub.domain.users import Role
    from hub.services.tokens import AccessTokens

    tokens = AccessTokens(
        _common.JWT_SECRET, ttl=timedelta(hours=3), issuer="hub", audience="hub-api"
    )
    now = datetime.now(UTC)
    frames = [
        json.dumps({"action": "auth", "token": tokens.issue(uid, Role.USER, now)})
        for uid in user_ids
    ]
    path = workdir / "auth.txt"
    path.write_text("\n".join(frames[i % len(frames)] for i in range(sockets)) + "\n")
    return path


def client_messages(clients: int, channels: list[str], workdir: Path) -> list[str]:
    """wsload arguments for browser-like clients: a per-connection auth frame (a distinct user
    each) and one subscribe frame."""
    auth = auth_file([uuid.uuid4() for _ in range(clients)], clients, workdir)
    subscribe = json.dumps({"action": "subscribe", "channels": channels})
    return ["--send-file", str(auth), "--send", subscribe]


@contextlib.asynccontextmanager
async def redis_prefix() -> AsyncIterator[tuple[str, str]]:
    """A Redis URL with a fresh key prefix (db 13); every key under it deleted afterwards."""
    prefix = f"bench-real-{uuid.uuid4().hex[:8]}:"
    url = f"{_common.REDIS_BASE}/13"
    try:
        yield f"{url}?prefix={prefix}", prefix
    finally:
        client = aioredis.from_url(url)
        # The streaming broker's keys are under the prefix; Hub's quote store and instrument
        # cache write `hub:*` keys that the prefix does not cover (db 13 is this benchmark's).
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        keys += [k async for k in client.scan_iter(match="hub:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@contextlib.asynccontextmanager
async def hub_target(deflate: bool) -> AsyncIterator[tuple[Target, dict[str, str]]]:
    async with _common.fresh_schema() as schema, redis_prefix() as (redis_url, prefix):
        env = _common.services_env(schema, 13, HUB_WS_DEFLATE=str(deflate).lower())
        env["HUB_REDIS_URL"] = redis_url
        async with _common.run_hub(env, migrate=True, serve_cpus=SERVER_CPUS) as hub:
            name = "hub-deflate" if deflate else "hub"
            yield Target(name, hub.port, hub.serve.pid, "/ws", prefix), hub.env


@contextlib.asynccontextmanager
async def node_target(node_dir: Path, redis_url: str, prefix: str) -> AsyncIterator[Target]:
    port = _common.free_port()
    url = redis_url.split("?")[0]
    proc = await asyncio.create_subprocess_exec(
        "taskset",
        "-c",
        SERVER_CPUS,
        "node",
        str(node_dir / "server.js"),
        str(port),
        prefix,
        url,
        cwd=node_dir,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"node peer did not start: {line!r}")
        yield Target("node-ws", port, proc.pid, "/", prefix)
    finally:
        proc.terminate()
        await proc.wait()


@contextlib.asynccontextmanager
async def node_world(node_dir: Path) -> AsyncIterator[tuple[Target, dict[str, str]]]:
    """The peer plus what `hub feed` needs to publish to it (a schema and a Redis prefix)."""
    async with _common.fresh_schema() as schema, redis_prefix() as (redis_url, prefix):
        env = _common.services_env(schema, 13, amqp=False)
        env["HUB_REDIS_URL"] = redis_url
        await migrate(env)
        async with node_target(node_dir, redis_url, prefix) as target:
            yield target, env


@contextlib.asynccontextmanager
async def bare_target(ws: str) -> AsyncIterator[Target]:
    port = _common.free_port()
    proc = await asyncio.create_subprocess_exec(
        "taskset",
        "-c",
        SERVER_CPUS,
        sys.executable,
        "-c",
        BARE_SERVER,
        str(port),
        env={**os.environ, "BARE_WS": ws},
    )
    try:
        for _ in range(300):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.05)
        yield Target("bare-uvicorn", port, proc.pid, "/", "")
    finally:
        proc.terminate()
        await proc.wait()


def install_node() -> tuple[Path | None, dict[str, str]]:
    if not (shutil.which("node") and shutil.which("npm")):
        return None, {}
    directory = Path(tempfile.mkdtemp(prefix="fanout-real-node-"))
    (directory / "server.js").write_text(NODE_SERVER)
    subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", "ws@8", "redis@4"],
        cwd=directory,
        check=True,
        capture_output=True,
        timeout=300,
    )
    versions = {  # "node-redis", not "redis": that key is redis-py's in the report
        f"node-{name}": json.loads((directory / f"node_modules/{name}/package.json").read_text())[
            "version"
        ]
        for name in ("ws", "redis")
    }
    versions["node"] = subprocess.run(
        ["node", "--version"], capture_output=True, text=True
    ).stdout.strip()
    return directory, versions


# --- the feed -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def feed(env: dict[str, str], quotes_per_s: float, logdir: Path) -> AsyncIterator[None]:
    """`hub feed` on the client's core, publishing quotes_per_s over all 34 symbols."""
    full = {
        **os.environ,
        **env,
        "HUB_FEED_QPS": str(max(1, round(quotes_per_s))),
        "HUB_FEED_SEED": "7",
    }
    argv = ["taskset", "-c", CLIENT_CPUS, *_common.hub_argv("feed")]
    proc = _common.spawn(
        "feed", argv, {k: v for k, v in full.items() if k.startswith("HUB_")}, logdir
    )
    try:
        yield
    finally:
        await _common.stop_all([proc])


class PublicationCounter:
    """Counts what reaches Redis pub/sub on the quote channels (independent of the servers)."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self._client = aioredis.from_url(redis_url.split("?")[0])
        self._pattern = f"{prefix}ch:quotes:*"
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PublicationCounter:
        pubsub = self._client.pubsub()
        await pubsub.psubscribe(self._pattern)

        async def run() -> None:
            async for message in pubsub.listen():
                if message["type"] == "pmessage":
                    self.count += 1

        self._task = asyncio.create_task(run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()


# --- ladder: F1 (knee) and F2 (p99 at 20k deliveries/s) ----------------------------------------


async def ladder_one(
    target: Target, env: dict[str, str], binary: Path, args: argparse.Namespace, redis_url: str
) -> dict[str, Any]:
    channels = [f"quotes:{s}" for s in symbols()]
    workdir = Path(tempfile.mkdtemp(prefix="fanout-real-"))
    client = await WsLoad.start(
        binary,
        target.port,
        args.clients,
        "--path",
        target.path,
        "--deflate-share",
        str(args.deflate_share),
        "--ready-marker",
        '"subscribed"',
        "--ready-count",
        str(len(channels)),
        *client_messages(args.clients, channels, workdir),
    )
    steps: list[dict[str, Any]] = []
    try:
        ready = await client.ready()
        if ready["ready"] != args.clients:
            raise RuntimeError(f"{target.name}: only {ready} clients ready")
        server = psutil.Process(target.pid)
        for rate in args.rates:
            qps = rate / args.clients  # every client is subscribed to every symbol
            async with (
                PublicationCounter(redis_url, target.prefix) as counter,
                feed(env, qps, workdir),
            ):
                await asyncio.sleep(args.warmup)
                await client.stats()
                published0, cpu0, t0 = counter.count, server.cpu_times(), time.monotonic()
                await asyncio.sleep(args.step)
                stats = await client.stats()
                cpu1, wall = server.cpu_times(), time.monotonic() - t0
                published = counter.count - published0
            expected = published * args.clients
            row = {
                "offered_deliveries_per_s": rate,
                "published_per_s": round(published / wall, 1),
                "expected_per_s": round(expected / wall),
                "received_per_s": round(stats["deliveries"] / stats["interval_s"]),
                "received_share": round(stats["deliveries"] / expected, 4) if expected else None,
                "p50_ms": stats["lat_ms"]["p50"],
                "p90_ms": stats["lat_ms"]["p90"],
                "p99_ms": stats["lat_ms"]["p99"],
                "max_ms": stats["lat_ms"]["max"],
                "server_cpu_pct": round(
                    100 * (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall, 1
                ),
                "server_rss_mib": round(server.memory_info().rss / 2**20, 1),
                "client_cpu_pct": cpu_pct(stats),
                "frames_per_s": round(stats["messages"] / stats["interval_s"]),
                "wire_bytes_per_s": round(stats["wire_bytes"] / stats["interval_s"]),
                "closed_by_server": stats["closed_by_server"],
            }
            row["kept_up"] = bool(
                row["received_share"] is not None
                and row["received_share"] >= 0.95
                and row["p99_ms"] <= P99_LIMIT_MS
                and row["published_per_s"] >= 0.95 * qps
            )
            steps.append(row)
            print(f"  {target.name} {rate:>7}/s: {row}", flush=True)
            if not row["kept_up"] and len(steps) >= 2 and not steps[-2]["kept_up"]:
                break  # two steps past the knee: the rest only takes time
    finally:
        await client.stop()
    knee = max((s["offered_deliveries_per_s"] for s in steps if s["kept_up"]), default=0)
    at_20k = next((s for s in steps if s["offered_deliveries_per_s"] == 20_000), None)
    return {
        "ready": ready,
        "steps": steps,
        "knee_deliveries_per_s": knee,
        "p99_at_20k_ms": at_20k["p99_ms"] if at_20k else None,
        "p50_at_20k_ms": at_20k["p50_ms"] if at_20k else None,
        "client_cpu_at_20k_pct": at_20k["client_cpu_pct"] if at_20k else None,
        "server_cpu_at_20k_pct": at_20k["server_cpu_pct"] if at_20k else None,
    }


async def run_ladder(
    args: argparse.Namespace, binary: Path, node_dir: Path | None
) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {}
    for run in range(args.runs):
        for name in args.only:
            print(f"run {run + 1}/{args.runs}: {name}", flush=True)
            if name in ("hub", "hub-deflate"):
                async with hub_target(name == "hub-deflate") as (target, env):
                    redis_url = env["HUB_REDIS_URL"]
                    result = await ladder_one(target, env, binary, args, redis_url)
            elif name == "node-ws" and node_dir is not None:
                async with node_world(node_dir) as (target, env):
                    result = await ladder_one(target, env, binary, args, env["HUB_REDIS_URL"])
            else:
                continue
            results.setdefault(name, []).append(result)
    return {"runs": results, "summary": ladder_summary(results)}


def contiguous_knee(steps: list[dict[str, Any]]) -> int:
    """The highest rate up to which every step kept up (stricter than the knee, which is the
    highest step that kept up even if a lower one, disturbed by a neighbour, did not)."""
    knee = 0
    for step in steps:
        if not step["kept_up"]:
            break
        knee = step["offered_deliveries_per_s"]
    return knee


def ladder_summary(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name, runs in results.items():
        summary[name] = {
            "knee_deliveries_per_s": statistics.median(r["knee_deliveries_per_s"] for r in runs),
            "knee_per_run": [r["knee_deliveries_per_s"] for r in runs],
            "contiguous_knee_deliveries_per_s": statistics.median(
                contiguous_knee(r["steps"]) for r in runs
            ),
            "contiguous_knee_per_run": [contiguous_knee(r["steps"]) for r in runs],
            "p99_at_20k_ms": _common.median_of(runs, "p99_at_20k_ms"),
            "p50_at_20k_ms": _common.median_of(runs, "p50_at_20k_ms"),
            "server_cpu_at_20k_pct": _common.median_of(runs, "server_cpu_at_20k_pct"),
            "client_cpu_at_20k_pct": _common.median_of(runs, "client_cpu_at_20k_pct"),
            "curve": median_curve(runs),
        }
    hub, node = summary.get("hub"), summary.get("node-ws")
    if hub and node and node["knee_deliveries_per_s"]:
        hub["knee_vs_node"] = round(hub["knee_deliveries_per_s"] / node["knee_deliveries_per_s"], 2)
        if node["contiguous_knee_deliveries_per_s"]:
            hub["contiguous_knee_vs_node"] = round(
                hub["contiguous_knee_deliveries_per_s"] / node["contiguous_knee_deliveries_per_s"],
                2,
            )
    return summary


def median_curve(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rates = sorted({s["offered_deliveries_per_s"] for r in runs for s in r["steps"]})
    curve = []
    for rate in rates:
        rows = [s for r in runs for s in r["steps"] if s["offered_deliveries_per_s"] == rate]
        point: dict[str, Any] = {"offered_deliveries_per_s": rate, "runs": len(rows)}
        for key in ("received_per_s", "p50_ms", "p99_ms", "server_cpu_pct", "client_cpu_pct"):
            point[key] = _common.median_of(rows, key)
        curve.append(point)
    return curve


async def migrate(env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        *_common.hub_argv("migrate"),
        cwd=_common.HUB_ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    if await proc.wait() != 0:
        raise RuntimeError("hub migrate failed")


# --- idle: F3 (RSS per idle connection) ---------------------------------------------------------


async def idle_one(
    target: Target, binary: Path, args: argparse.Namespace, env: dict[str, str] | None
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="fanout-real-"))
    server = psutil.Process(target.pid)
    before = server.memory_info().rss
    extra = ["--path", target.path, "--deflate-share", str(args.deflate_share)]
    if target.name != "bare-uvicorn":
        extra += ["--ready-marker", '"subscribed"', "--ready-count", "1"]
        extra += client_messages(args.idle_clients, ["quotes:AAPL"], workdir)
    client = await WsLoad.start(binary, target.port, args.idle_clients, "--sources", "4", *extra)
    try:
        ready = await client.ready()
        await asyncio.sleep(3)
        after = server.memory_info().rss
    finally:
        await client.stop()
    return {
        "ready": ready["ready"],
        "failed": ready["failed"],
        "rss_before_mib": round(before / 2**20, 1),
        "rss_after_mib": round(after / 2**20, 1),
        "kib_per_connection": round((after - before) / 1024 / max(ready["ready"], 1), 2),
        "open_s": ready["elapsed_s"],
    }


# --- storm: connect + authenticate + subscribe to 34 channels -----------------------------------


async def storm_one(
    target: Target, binary: Path, args: argparse.Namespace, env: dict[str, str] | None
) -> dict[str, Any]:
    """Open N sockets at once (at most --storm-concurrency handshakes in flight) and time until
    each is ready: for Hub and the peer, authenticated and subscribed to all 34 channels (the
    last `subscribed` seen) while the feed publishes, as after a restart in market hours."""
    workdir = Path(tempfile.mkdtemp(prefix="fanout-real-"))
    extra = ["--path", target.path, "--deflate-share", str(args.deflate_share)]
    extra += ["--concurrency", str(args.storm_concurrency), "--sources", "4"]
    if target.name != "bare-uvicorn":
        channels = [f"quotes:{s}" for s in symbols()]
        extra += ["--ready-marker", '"subscribed"', "--ready-count", str(len(channels))]
        extra += client_messages(args.storm_clients, channels, workdir)
    server = psutil.Process(target.pid)
    async with contextlib.AsyncExitStack() as stack:
        if env is not None and args.storm_feed_qps > 0:
            await stack.enter_async_context(feed(env, args.storm_feed_qps, workdir))
            await asyncio.sleep(2)  # the feed primes every symbol, then publishes steadily
        cpu0 = server.cpu_times()
        client = await WsLoad.start(binary, target.port, args.storm_clients, *extra)
        metered = psutil.Process(client.proc.pid)
        try:
            ready = await client.ready()
            used = metered.cpu_times()
        finally:
            await client.stop()
        cpu1 = server.cpu_times()
    elapsed = ready["elapsed_s"]
    return {
        "ready": ready["ready"],
        "failed": ready["failed"],
        "elapsed_s": elapsed,
        "per_s": round(ready["ready"] / elapsed, 1) if elapsed else None,
        "connect_ms": ready.get("connect_ms"),
        "server_cpu_s": round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 2),
        "server_cpu_ms_per_socket": round(
            1000 * (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / max(ready["ready"], 1), 3
        ),
        "client_cpu_s": round(used.user + used.system, 2),
        "deflate_accepted": ready.get("deflate_accepted"),
    }


async def run_per_target(
    args: argparse.Namespace, binary: Path, node_dir: Path | None, one: Any, names: list[str]
) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {}
    for run in range(args.runs):
        for name in names:
            if name not in args.only:
                continue
            print(f"run {run + 1}/{args.runs}: {name}", flush=True)
            if name in ("hub", "hub-deflate"):
                async with hub_target(name == "hub-deflate") as (target, env):
                    result = await one(target, binary, args, env)
            elif name == "bare-uvicorn":
                async with bare_target(args.bare_ws) as target:
                    result = await one(target, binary, args, None)
            elif name == "node-ws" and node_dir is not None:
                async with node_world(node_dir) as (target, env):
                    result = await one(target, binary, args, env)
            else:
                continue
            print(f"  {name}: {result}", flush=True)
            results.setdefault(name, []).append(result)
    return {"runs": results}


# --- the report ---------------------------------------------------------------------------------


def plot(report: dict[str, Any], path: Path, *others: dict[str, Any]) -> Path:
    """The ladder's curves; `others` are more ladder reports (e.g. an older commit, or Hub with
    deflate) drawn beside it, each series labelled with its commit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"hub": "tab:blue", "hub-deflate": "tab:purple", "node-ws": "tab:gray"}
    series = list(report["summary"].items())
    for other in others:
        commit = other["host"].get("git_commit", "?")
        series += [(f"{name} @ {commit}", item) for name, item in other["summary"].items()]
    extra = iter(["tab:green", "tab:brown", "tab:olive", "tab:pink"])
    fig, (lat, thr) = plt.subplots(1, 2, figsize=(13, 5))
    for name, item in series:
        curve = item["curve"]
        x = [c["offered_deliveries_per_s"] for c in curve]
        color = colors.get(name) or next(extra, "black")
        lat.plot(x, [c["p99_ms"] for c in curve], "-o", color=color, label=f"{name}: p99")
        lat.plot(
            x, [c["p50_ms"] for c in curve], "--^", color=color, alpha=0.6, label=f"{name}: p50"
        )
        thr.plot(
            x, [c["received_per_s"] for c in curve], "-o", color=color, label=f"{name}: received/s"
        )
    lat.axhline(
        TARGETS["p99_at_20k_ms"], color="tab:red", lw=0.8, ls="-.", label="F2 target (at 20k/s)"
    )
    lat.axhline(P99_LIMIT_MS, color="tab:orange", lw=0.8, ls=":", label="knee bar: p99 50 ms")
    lat.set_xscale("log")
    lat.set_yscale("log")
    lat.set_xlabel("offered deliveries/s (quotes/s x 1,000 sockets)")
    lat.set_ylabel("publish -> socket latency, ms (log)")
    lat.set_title("Latency against offered load")
    lat.legend(fontsize=7)
    top = max(report["settings"]["rates"])
    thr.plot([0, top], [0, top], color="lightgray", lw=0.8)
    thr.set_xlabel("offered deliveries/s")
    thr.set_ylabel("received deliveries/s")
    thr.set_title("Throughput against offered load")
    thr.legend(fontsize=7)
    host = report["host"]
    fig.suptitle(
        f"fanout_real: feed -> Redis -> server (core 0) -> {report['settings']['clients']} sockets"
        f" (C client, core 1); Hub {host.get('git_commit', '?')}, {report['date']},"
        f" {report['settings']['runs']} run(s), medians",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


async def main(args: argparse.Namespace) -> None:
    _common.raise_nofile()
    binary = build_wsload()
    node_dir, node_versions = install_node() if "node-ws" in args.only else (None, {})
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "chart")}
    if args.mode == "ladder":
        body = await run_ladder(args, binary, node_dir)
    elif args.mode == "idle":
        body = await run_per_target(
            args, binary, node_dir, idle_one, ["hub", "hub-deflate", "bare-uvicorn", "node-ws"]
        )
        body["summary"] = {
            name: {
                "kib_per_connection": _common.median_of(runs, "kib_per_connection"),
                "open_s": _common.median_of(runs, "open_s"),
            }
            for name, runs in body["runs"].items()
        }
    else:
        body = await run_per_target(
            args, binary, node_dir, storm_one, ["hub", "hub-deflate", "bare-uvicorn", "node-ws"]
        )
        body["summary"] = {
            name: {
                "per_s": _common.median_of(runs, "per_s"),
                "elapsed_s": _common.median_of(runs, "elapsed_s"),
                "server_cpu_ms_per_socket": _common.median_of(runs, "server_cpu_ms_per_socket"),
                "client_cpu_s": _common.median_of(runs, "client_cpu_s"),
            }
            for name, runs in body["runs"].items()
        }
        hub, bare = body["summary"].get("hub"), body["summary"].get("bare-uvicorn")
        if hub and bare and hub["per_s"] and bare["per_s"]:
            hub["vs_bare"] = round(hub["per_s"] / bare["per_s"], 2)
    host = _common.environment(["uvicorn", "websockets", "starlette", "redis", "uvloop", "msgspec"])
    host["versions"].update(node_versions)
    report = {
        "benchmark": f"fanout_real {args.mode}",
        "date": time.strftime("%Y-%m-%d"),
        "host": host,
        "settings": settings,
        "targets": TARGETS,
        **body,
    }
    path = _common.write_report(f"fanout_real-{args.mode}", report, args.out)
    print(f"wrote {path}")
    if args.mode == "ladder":
        print(f"chart {plot(report, path.with_suffix('.png'))}")
    print(json.dumps(report["summary"], indent=2))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("mode", choices=["ladder", "idle", "storm"])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument(
        "--rates",
        default="10000,20000,35000,50000,75000,100000,150000,200000",
        help="offered deliveries/s (the feed publishes rate / clients quotes/s)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--step", type=float, default=8.0, help="seconds measured per rate")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--deflate-share", type=float, default=1.0)
    parser.add_argument("--idle-clients", type=int, default=10_000)
    parser.add_argument("--storm-clients", type=int, default=1000)
    parser.add_argument("--storm-concurrency", type=int, default=256)
    parser.add_argument(
        "--storm-feed-qps", type=int, default=50, help="quotes/s during the storm (0: no feed)"
    )
    parser.add_argument("--only", default="hub,node-ws,bare-uvicorn")
    parser.add_argument(
        "--bare-ws",
        default="websockets-sansio",
        choices=["websockets-sansio", "wsproto", "websockets"],
        help="uvicorn's WebSocket implementation for bare-uvicorn",
    )
    parser.add_argument("--quick", action="store_true", help="1 run, 200 clients, short steps")
    parser.add_argument("--out")
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",")]
    args.only = args.only.split(",")
    if args.quick:
        args.runs, args.clients, args.step, args.warmup = 1, 200, 3.0, 2.0
        args.rates = [r // 5 for r in args.rates[:4]]
        args.idle_clients, args.storm_clients = 1000, 200
    return args


def rechart(source: Path, *others: Path) -> None:
    """Recompute a ladder report's summary from its runs and redraw its chart, with the ladders
    in `others` (e.g. the same benchmark on an older commit) drawn beside it."""
    report = json.loads(source.read_text())
    report["summary"] = ladder_summary(report["runs"])
    source.write_text(json.dumps(report, indent=2) + "\n")
    extra = [json.loads(other.read_text()) for other in others]
    print(plot(report, source.with_suffix(".png"), *extra))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--chart"]:
        rechart(Path(sys.argv[2]), *(Path(a) for a in sys.argv[3:]))
    else:
        asyncio.run(main(parse_args()))
