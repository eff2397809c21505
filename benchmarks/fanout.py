"""How many quote deliveries per second can one server process fan out to 1,000 WebSockets?

The same workload against Hub's streaming engine and its peers, in one run:

- hub:       streaming.Engine (memory broker) under uvicorn, clients subscribed to quotes:AAPL
- socketio:  python-socketio AsyncServer, clients in one room, `emit(room=...)`, under uvicorn
- starlette: a plain Starlette endpoint; the publisher awaits `send_text` for each client in turn
- node-ws:   Node.js `ws` (installed from npm into a temp dir), only if `node` and `npm` exist

Each server runs in its own process and publishes ~100-byte quotes (seeded) itself at a rate the
load client sets over stdin; every quote carries its publish time. One load client process holds
N WebSocket connections (a minimal asyncio client, so the client is not the bottleneck), measures
publish-to-receive latency and counts deliveries. The rate rises step by step until p99 latency
passes 50 ms or fewer than 95% of the expected deliveries arrive ("the knee").

Reported per candidate (median of --runs runs): deliveries/s at the knee, p50/p99 latency at a
fixed 20,000 deliveries/s, server RSS per idle connection, and the load client's CPU.

    python benchmarks/fanout.py                 # full: 1,000 clients, 3 runs
    python benchmarks/fanout.py --quick         # 200 clients, 1 run, short steps
    python benchmarks/fanout.py --only hub,starlette --out /tmp/fanout.json

Servers and the load client share the machine's cores; read the figures with that in mind.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib.metadata
import json
import os
import platform
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec
import psutil

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "quotes:AAPL"
P99_LIMIT_MS = 50.0
FIXED_DELIVERIES = 20_000

# --- the quote every server publishes ----------------------------------------------------------


def quote_factory(seed: int) -> Callable[[], dict[str, Any]]:
    """Seeded ~100-byte quotes; `t` (publish time) is set at publish."""
    rng = random.Random(seed)
    price = 189.0

    def make() -> dict[str, Any]:
        nonlocal price
        price = max(1.0, price + rng.uniform(-0.05, 0.05))
        return {
            "symbol": "AAPL",
            "bid": f"{price:.2f}",
            "ask": f"{price + 0.02:.2f}",
            "size": rng.randint(1, 500),
            "t": time.time(),
        }

    return make


async def publish_at_rates(publish: Callable[[dict[str, Any]], Any], seed: int) -> None:
    """Read `rate R` lines on stdin; publish R quotes/s (catching up, never skipping)."""
    make = quote_factory(seed)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    rate = 0.0
    start = time.monotonic()
    sent = 0

    async def commands() -> None:
        nonlocal rate, start, sent
        while line := await reader.readline():
            words = line.split()
            if words and words[0] == b"rate":
                rate, start, sent = float(words[1]), time.monotonic(), 0
        os._exit(0)  # parent went away

    task = asyncio.create_task(commands())
    while not task.done():
        if rate > 0:
            due = int((time.monotonic() - start) * rate) - sent
            for _ in range(due):
                result = publish(make())
                if asyncio.iscoroutine(result):
                    await result
            sent += max(due, 0)
        await asyncio.sleep(0.001)


# --- the servers (each runs in its own process: `fanout.py --serve NAME --port P`) --------------


def serve_hub(port: int, seed: int) -> None:
    from starlette.applications import Starlette

    from streaming import ChannelKind, Engine, Limits, Principal

    class Anyone:
        async def authenticate(self, token: str) -> Principal:
            return Principal(token)

        def resolve(self, principal: Principal, channel: str) -> str | None:
            return channel

    limits = Limits(max_connections_per_principal=100_000, idle_timeout=3600, ping_interval=3600)
    # RELIABLE, so Hub delivers every quote like its peers do. With LATEST (Hub's real setting
    # for quotes) a reader that falls behind gets only the newest value, which would count as
    # "deliveries falling behind" here although it is the intended behaviour.
    engine = Engine(authorizer=Anyone(), kind_of=lambda _: ChannelKind.RELIABLE, limits=limits)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        async with engine:
            task = asyncio.create_task(
                publish_at_rates(lambda q: engine.publish(CHANNEL, "quote", q), seed)
            )
            yield
            task.cancel()

    run_uvicorn(Starlette(routes=[engine.websocket_route("/ws")], lifespan=lifespan), port)


def serve_socketio(port: int, seed: int) -> None:
    import socketio

    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")

    async def connect(sid: str, environ: dict[str, Any]) -> None:
        await sio.enter_room(sid, CHANNEL)

    sio.on("connect", connect)  # what `@sio.event` does, minus the untyped decorator

    tasks: set[asyncio.Task[None]] = set()

    async def start() -> None:
        publish = lambda q: sio.emit("quote", q, room=CHANNEL)  # noqa: E731
        tasks.add(asyncio.create_task(publish_at_rates(publish, seed)))

    run_uvicorn(socketio.ASGIApp(sio, on_startup=start), port)


def serve_starlette(port: int, seed: int) -> None:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    clients: set[WebSocket] = set()
    encoder = msgspec.json.Encoder()

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        clients.add(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            clients.discard(websocket)

    async def publish(quote: dict[str, Any]) -> None:
        text = encoder.encode(quote).decode()
        for websocket in list(clients):  # the naive loop: one slow socket stalls the rest
            with contextlib.suppress(Exception):
                await websocket.send_text(text)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        task = asyncio.create_task(publish_at_rates(publish, seed))
        yield
        task.cancel()

    run_uvicorn(Starlette(routes=[WebSocketRoute("/ws", endpoint)], lifespan=lifespan), port)


def run_uvicorn(app: Any, port: int, lifespan: Literal["auto", "on", "off"] = "on") -> None:
    import uvicorn

    # Without deflate, as `hub serve` runs by default (HUB_WS_DEFLATE); the clients offer it.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="error",
        lifespan=lifespan,
        backlog=4096,
        ws_per_message_deflate=False,
    )
    print("ready", flush=True)
    uvicorn.Server(config).run()


NODE_SERVER = r"""
const { WebSocketServer } = require("ws");
const readline = require("readline");
const port = Number(process.argv[2]);
let seed = Number(process.argv[3]) >>> 0;
function rand() {  // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0; let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
let price = 189.0;
function quote() {
  price = Math.max(1, price + (rand() * 0.1 - 0.05));
  return JSON.stringify({symbol: "AAPL", bid: price.toFixed(2), ask: (price + 0.02).toFixed(2),
                         size: 1 + Math.floor(rand() * 500), t: Date.now() / 1000});
}
const wss = new WebSocketServer(
  { host: "127.0.0.1", port, perMessageDeflate: false, backlog: 4096 });
let rate = 0, start = 0, sent = 0;
function now() { return performance.now() / 1000; }
function tick() {
  if (rate > 0) {
    const due = Math.floor((now() - start) * rate) - sent;
    for (let i = 0; i < due; i++) {
      const msg = quote();
      for (const c of wss.clients) if (c.readyState === 1) c.send(msg);
    }
    if (due > 0) sent += due;
  }
  setTimeout(tick, 1);
}
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const [cmd, value] = line.trim().split(/\s+/);
  if (cmd === "rate") { rate = Number(value); start = now(); sent = 0; }
}).on("close", () => process.exit(0));
wss.on("listening", () => { console.log("ready"); tick(); });
"""

# --- a minimal WebSocket client (so the load generator costs as little as possible) -------------


class WsClient(asyncio.Protocol):
    """Just enough RFC 6455: handshake, unfragmented server frames, masked client text frames."""

    def __init__(
        self,
        path: str,
        headers: dict[str, str],
        on_text: Callable[[WsClient, bytes], None],
        ready_on_open: bool,
    ) -> None:
        self.path = path
        self.ready_on_open = ready_on_open
        self.headers = headers
        self.on_text = on_text
        self.buffer = b""
        self.open = False
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.path} HTTP/1.1",
            "Host: 127.0.0.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            # What every browser offers. The servers here run their default policy, which is to
            # decline it (Hub's and Node ws's); a server that accepted would fail the run below.
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            *(f"{k}: {v}" for k, v in self.headers.items()),
        ]
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if not self.open:
            head, sep, rest = buffer.partition(b"\r\n\r\n")
            if not sep:
                self.buffer = buffer
                return
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                self._fail(RuntimeError(f"handshake failed: {head[:80]!r}"))
                return
            if b"permessage-deflate" in head.lower():
                self._fail(RuntimeError("server accepted permessage-deflate; this client can't"))
                return
            self.open = True
            if self.ready_on_open:
                self.ready.set_result(None)
            buffer = rest
        pos, end = 0, len(buffer)
        while end - pos >= 2:
            b0, b1 = buffer[pos], buffer[pos + 1] & 0x7F
            header = 2
            if b1 == 126:
                if end - pos < 4:
                    break
                (b1,) = struct.unpack_from("!H", buffer, pos + 2)
                header = 4
            elif b1 == 127:
                if end - pos < 10:
                    break
                (b1,) = struct.unpack_from("!Q", buffer, pos + 2)
                header = 10
            if end - pos < header + b1:
                break
            payload = buffer[pos + header : pos + header + b1]
            pos += header + b1
            opcode = b0 & 0x0F
            if opcode == 1:
                self.on_text(self, payload)
            elif opcode == 9:
                self.send(payload, opcode=10)
            elif opcode == 8:
                self._fail(ConnectionError(f"closed by server: {payload[:2].hex()}"))
                return
        self.buffer = buffer[pos:]

    def send(self, payload: bytes, opcode: int = 1) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert self.transport is not None
        self.transport.write(head + mask + masked)

    def _fail(self, exc: Exception) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
        if not self.closed.done():
            self.closed.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("connection lost"))


@dataclass
class Meter:
    """Latencies and counts of the current measurement window."""

    recording: bool = False
    count: int = 0
    latencies: list[float] = field(default_factory=list)

    def record(self, sent_at: float, now: float) -> None:
        if self.recording:
            self.count += 1
            self.latencies.append(now - sent_at)


class Quote(msgspec.Struct):
    t: float  # the only field the client needs; msgspec skips the rest without building it


class HubMessage(msgspec.Struct):
    type: str
    data: Quote | None = None


_hub = msgspec.json.Decoder(list[HubMessage])
_sio = msgspec.json.Decoder(tuple[str, Quote])
_plain = msgspec.json.Decoder(Quote)


def make_handler(candidate: str, meter: Meter) -> Callable[[WsClient, bytes], None]:
    """Per-candidate message parsing; marks the client ready once it is subscribed."""
    if candidate == "hub":

        def on_hub(client: WsClient, payload: bytes) -> None:
            now = time.time()
            for message in _hub.decode(payload):
                kind = message.type
                if kind == "quote" and message.data is not None:
                    meter.record(message.data.t, now)
                elif kind == "connected":
                    client.send(b'{"action":"subscribe","channels":["' + CHANNEL.encode() + b'"]}')
                elif kind == "subscribed" and not client.ready.done():
                    client.ready.set_result(None)

        return on_hub
    if candidate == "socketio":

        def on_sio(client: WsClient, payload: bytes) -> None:
            kind = payload[:2]
            if kind == b"42":
                now = time.time()
                meter.record(_sio.decode(payload[2:])[1].t, now)
            elif payload == b"2":
                client.send(b"3")  # engine.io pong
            elif kind[:1] == b"0":
                client.send(b"40")  # connect to the default namespace
            elif kind == b"40" and not client.ready.done():
                client.ready.set_result(None)

        return on_sio

    def on_plain(client: WsClient, payload: bytes) -> None:
        meter.record(_plain.decode(payload).t, time.time())

    return on_plain


PATHS = {
    "hub": "/ws",
    "socketio": "/socket.io/?EIO=4&transport=websocket",
    "starlette": "/ws",
    "node-ws": "/",
}


# --- orchestration -----------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: asyncio.subprocess.Process
    port: int

    async def rate(self, value: float) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"rate {value}\n".encode())
        await self.process.stdin.drain()

    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)

    async def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_server(name: str, seed: int, node_dir: Path | None) -> Server:
    port = free_port()
    if name == "node-ws":
        assert node_dir is not None
        argv = ["node", str(node_dir / "server.js"), str(port), str(seed)]
    else:
        argv = [sys.executable, __file__, "--serve", name, "--port", str(port), "--seed", str(seed)]
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=node_dir or ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    if not line.startswith(b"ready"):
        raise RuntimeError(f"{name} did not start")
    for _ in range(200):  # "ready" is printed just before the socket listens
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            break
        except OSError:
            await asyncio.sleep(0.05)
    return Server(name, process, port)


async def connect_all(server: Server, n: int, meter: Meter) -> list[WsClient]:
    loop = asyncio.get_running_loop()
    handler = make_handler(server.name, meter)
    headers = {"Authorization": "Bearer bench"} if server.name == "hub" else {}
    gate = asyncio.Semaphore(50)
    clients: list[WsClient] = []

    async def one() -> None:
        async with gate:
            plain = server.name in ("starlette", "node-ws")  # no subscribe step
            client = WsClient(PATHS[server.name], headers, handler, ready_on_open=plain)
            await loop.create_connection(lambda: client, "127.0.0.1", server.port)
            clients.append(client)

    await asyncio.gather(*(one() for _ in range(n)))
    async with asyncio.timeout(60):
        for client in clients:
            await client.ready
    return clients


def _busy(before: Any, after: Any) -> float:
    return float((after.user - before.user) + (after.system - before.system))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def measure(
    server: Server, meter: Meter, n: int, rate: float, seconds: float
) -> dict[str, Any]:
    """Publish at `rate` for a warm-up, then measure a window of `seconds`."""
    await server.rate(rate)
    await asyncio.sleep(min(1.0, seconds / 2))
    me, them = psutil.Process(), psutil.Process(server.process.pid)
    cpu0, server0, t0 = me.cpu_times(), them.cpu_times(), time.monotonic()
    meter.count, meter.latencies, meter.recording = 0, [], True
    await asyncio.sleep(seconds)
    meter.recording = False
    cpu1, server1, elapsed = me.cpu_times(), them.cpu_times(), time.monotonic() - t0
    await server.rate(0)
    await asyncio.sleep(0.5)  # let the backlog drain before the next step
    expected = rate * n
    delivered = meter.count / elapsed
    return {
        "rate": rate,
        "expected_per_s": expected,
        "deliveries_per_s": round(delivered),
        "p50_ms": round(percentile(meter.latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(meter.latencies, 0.99) * 1000, 2),
        "client_cpu_pct": round(100 * _busy(cpu0, cpu1) / elapsed, 1),
        "server_cpu_pct": round(100 * _busy(server0, server1) / elapsed, 1),
        "kept_up": delivered >= 0.95 * expected,
        "ok": delivered >= 0.95 * expected
        and percentile(meter.latencies, 0.99) * 1000 <= P99_LIMIT_MS,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


async def bench_candidate(
    name: str, args: argparse.Namespace, seed: int, node_dir: Path | None
) -> dict[str, Any]:
    server = await start_server(name, seed, node_dir)
    meter = Meter()
    try:
        await asyncio.sleep(0.5)
        rss_before = server.rss()
        clients = await connect_all(server, args.clients, meter)
        await asyncio.sleep(1.0)
        rss_idle = server.rss()
        fixed = await measure(
            server, meter, args.clients, FIXED_DELIVERIES / args.clients, args.step
        )
        steps = []
        knee: int | None = None  # None: not even the first step met both bars
        sustained: int | None = None
        latency_ok = True
        for deliveries in args.steps:
            step = await measure(server, meter, args.clients, deliveries / args.clients, args.step)
            steps.append(step)
            # Keep climbing while deliveries keep up, so that the throughput ceiling is known
            # even when latency (sensitive to whatever else runs on the host) failed earlier.
            if not step["kept_up"]:
                break
            sustained = max(sustained or 0, step["deliveries_per_s"])
            latency_ok = latency_ok and step["ok"]
            if latency_ok:
                knee = max(knee or 0, step["deliveries_per_s"])
        for client in clients:
            if client.transport is not None:
                client.transport.close()
        return {
            "candidate": name,
            "rss_per_idle_connection_kib": round((rss_idle - rss_before) / args.clients / 1024, 1),
            "at_20k": fixed,
            "knee_deliveries_per_s": knee,
            "max_sustained_deliveries_per_s": sustained,
            "steps": steps,
        }
    finally:
        await server.stop()


def install_node_ws() -> tuple[Path | None, str | None]:
    if not (shutil.which("node") and shutil.which("npm")):
        return None, None
    directory = Path(tempfile.mkdtemp(prefix="fanout-node-"))
    (directory / "server.js").write_text(NODE_SERVER)
    subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", "ws@8"],
        cwd=directory,
        check=True,
        capture_output=True,
        timeout=300,
    )
    package = json.loads((directory / "node_modules/ws/package.json").read_text())
    return directory, str(package["version"])


def environment(node_version: str | None) -> dict[str, Any]:
    versions = {}
    for package in ("starlette", "uvicorn", "websockets", "msgspec", "python-socketio", "uvloop"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    if node_version:
        versions["node"] = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        versions["ws (npm)"] = node_version
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "versions": versions,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "note": "servers and the load client share the same cores",
    }


def summarize(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in [r["candidate"] for r in runs[0]]:
        rows = [r for run in runs for r in run if r["candidate"] == name]

        def med(get: Callable[[dict[str, Any]], float], rows: list[dict[str, Any]] = rows) -> float:
            return statistics.median(get(r) for r in rows)

        summary[name] = {
            "knee_deliveries_per_s": round(med(lambda r: r["knee_deliveries_per_s"] or 0)),
            "knee_per_run": [r["knee_deliveries_per_s"] for r in rows],
            "max_sustained_deliveries_per_s": round(
                med(lambda r: r["max_sustained_deliveries_per_s"] or 0)
            ),
            "p50_ms_at_20k": med(lambda r: r["at_20k"]["p50_ms"]),
            "p99_ms_at_20k": med(lambda r: r["at_20k"]["p99_ms"]),
            "delivered_at_20k": round(med(lambda r: r["at_20k"]["deliveries_per_s"])),
            "rss_per_idle_connection_kib": med(lambda r: r["rss_per_idle_connection_kib"]),
            "client_cpu_pct_at_20k": med(lambda r: r["at_20k"]["client_cpu_pct"]),
            "server_cpu_pct_at_20k": med(lambda r: r["at_20k"]["server_cpu_pct"]),
            "runs": len(rows),
        }
    return summary


async def main(args: argparse.Namespace) -> None:
    node_dir, node_version = (None, None)
    candidates = [c for c in args.only.split(",") if c]
    if "node-ws" in candidates:
        node_dir, node_version = install_node_ws()
        if node_dir is None:
            candidates.remove("node-ws")
            print("node/npm not found: skipping node-ws", file=sys.stderr)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    runs = []
    try:
        for run in range(args.runs):
            results = []
            for name in candidates:
                print(f"run {run + 1}/{args.runs}: {name} ...", file=sys.stderr, flush=True)
                result = await bench_candidate(name, args, args.seed + run, node_dir)
                print(
                    f"  knee {result['knee_deliveries_per_s']}/s, "
                    f"sustained {result['max_sustained_deliveries_per_s']}/s, at 20k: "
                    f"p50 {result['at_20k']['p50_ms']} ms p99 {result['at_20k']['p99_ms']} ms, "
                    f"rss/conn {result['rss_per_idle_connection_kib']} KiB",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(result)
            runs.append(results)
    finally:
        if node_dir is not None:
            shutil.rmtree(node_dir, ignore_errors=True)
    report = {
        "benchmark": "fanout",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": {
            "clients": args.clients,
            "step_seconds": args.step,
            "steps_deliveries_per_s": args.steps,
            "p99_limit_ms": P99_LIMIT_MS,
            "seed": args.seed,
            "runs": args.runs,
        },
        "host": {**environment(node_version), "load_average_at_start": load_at_start},
        "summary": summarize(runs),
        "runs": runs,
    }
    text = json.dumps(report, indent=2)
    if args.out:
        await asyncio.to_thread(Path(args.out).write_text, text + "\n")
    print(text)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 clients, 1 run, short steps")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--step", type=float, default=3.0, help="seconds measured per step")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default="hub,socketio,starlette,node-ws")
    parser.add_argument("--out", help="also write the JSON report here")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.clients, args.runs, args.step = 200, 1, 1.5
    base = [10_000, 20_000, 40_000, 60_000, 80_000, 100_000, 130_000, 160_000, 200_000]
    args.steps = [*base, 250_000, 300_000, 400_000] if not args.quick else base[:6]
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve:
        {"hub": serve_hub, "socketio": serve_socketio, "starlette": serve_starlette}[
            arguments.serve
        ](arguments.port, arguments.seed)
    else:
        asyncio.run(main(arguments))
