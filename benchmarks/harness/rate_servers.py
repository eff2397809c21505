"""Engine-only servers for the Python load clients (fanout.py, fanout_scale_*): each runs in its
own process and publishes seeded ~100-byte quotes at the rate set over its stdin (`rate R`
lines), every quote carrying its publish time `t`; the Node peer does the same.

Child side: `main()` (`bench_python("harness.rate_servers", NAME, PORT, SEED)`), then "ready"
on stdout. Parent side: `start_rate_server` and `RateServer`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import psutil

from .config import ROOT
from .procs import bench_python, free_port, raise_nofile, terminate, wait_listening

if TYPE_CHECKING:
    from streaming import ChannelKind, Engine

CHANNEL = "quotes:AAPL"

# --- the child side ------------------------------------------------------------------------------


def quote_factory(seed: int) -> Callable[[], dict[str, Any]]:
    """Seeded ~100-byte quotes; `t` (publish time) is set at publish."""
    rng = random.Random(seed)
    price = 189.0

    def make() -> dict[str, Any]:
        nonlocal price
        price = max(1.0, price + rng.uniform(-0.05, 0.05))
        return quote("AAPL", price, rng)

    return make


def quote(symbol: str, price: float, rng: random.Random) -> dict[str, Any]:
    """A ~100-byte quote at `price` (a random size), stamped with its publish time `t`."""
    return {
        "symbol": symbol,
        "bid": f"{price:.2f}",
        "ask": f"{price + 0.02:.2f}",
        "size": rng.randint(1, 500),
        "t": time.time(),
    }


class StdinRate:
    """The publishing rate, set by `rate R` lines on stdin (R/s from now on); other commands go
    to `on_command`. Stdin closing means the parent went away: the process exits."""

    def __init__(self, on_command: Callable[[bytes], None] | None = None) -> None:
        self.on_command = on_command
        self.rate = 0.0
        self.start = time.monotonic()
        self.sent = 0  # publications since `start`

    async def listen(self) -> asyncio.Task[None]:
        """Start reading stdin; the task ends only with the process."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        return asyncio.create_task(self._commands(reader))

    async def _commands(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            words = line.split()
            if words and words[0] == b"rate":
                self.rate, self.start, self.sent = float(words[1]), time.monotonic(), 0
            elif words and self.on_command is not None:
                self.on_command(words[0])
        os._exit(0)  # parent went away

    def due(self) -> int:
        """Publications due by now and not yet sent (catching up, never skipping)."""
        return int((time.monotonic() - self.start) * self.rate) - self.sent


async def publish_at_rates(publish: Callable[[dict[str, Any]], Any], seed: int) -> None:
    """Publish the rate set on stdin, quotes/s."""
    make = quote_factory(seed)
    control = StdinRate()
    task = await control.listen()
    while not task.done():
        if control.rate > 0:
            due = control.due()
            for _ in range(due):
                result = publish(make())
                if asyncio.iscoroutine(result):
                    await result
            control.sent += max(due, 0)
        await asyncio.sleep(0.001)


def open_engine(kind: ChannelKind, broker_url: str = "memory://") -> Engine:
    """An Engine that lets anyone in (the token is the principal) to any channel of `kind`."""
    from streaming import Engine, Limits, Principal

    class Anyone:
        async def authenticate(self, token: str) -> Principal:
            return Principal(token)

        def resolve(self, principal: Principal, channel: str) -> str | None:
            return channel

    limits = Limits(max_connections_per_principal=100_000, idle_timeout=3600, ping_interval=3600)
    return Engine(broker_url, authorizer=Anyone(), kind_of=lambda _: kind, limits=limits)


def websocket_route(engine: Engine, path: str = "/ws") -> Any:
    """A Starlette route serving the engine's WebSocket protocol (docs/protocol.md)."""
    from starlette.routing import WebSocketRoute

    from streaming.websocket import WebSocketEndpoint

    return WebSocketRoute(path, WebSocketEndpoint(engine))


def serve_hub(port: int, seed: int) -> None:
    from starlette.applications import Starlette

    from streaming import ChannelKind

    # RELIABLE, so Hub delivers every quote like its peers do. With LATEST (Hub's real setting
    # for quotes) a reader that falls behind gets only the newest value, which would count as
    # "deliveries falling behind" here although it is the intended behaviour.
    engine = open_engine(ChannelKind.RELIABLE)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        async with engine:
            task = asyncio.create_task(
                publish_at_rates(lambda q: engine.publish(CHANNEL, "quote", q), seed)
            )
            yield
            task.cancel()

    run_uvicorn(Starlette(routes=[websocket_route(engine)], lifespan=lifespan), port)


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


def main() -> None:
    parser = argparse.ArgumentParser(description="one rate-driven server (benchmarks' child)")
    parser.add_argument("name")
    parser.add_argument("port", type=int)
    parser.add_argument("seed", type=int)
    parser.add_argument("--broker", help="hub-market, publisher: the broker URL")
    args = parser.parse_args()
    raise_nofile()
    if args.name in ("hub-market", "publisher"):
        from .market_server import REDIS_URL, serve_market

        http = args.name == "hub-market"
        serve_market(args.port, args.seed, http=http, broker_url=args.broker or REDIS_URL)
    else:
        {"hub": serve_hub, "socketio": serve_socketio, "starlette": serve_starlette}[args.name](
            args.port, args.seed
        )


# --- the parent side -----------------------------------------------------------------------------


@dataclass
class RateServer:
    name: str
    process: asyncio.subprocess.Process
    port: int

    async def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def rate(self, value: float) -> None:
        await self.command(f"rate {value}")

    async def stats(self) -> dict[str, Any]:
        """The engine's stats() plus the publisher's counters (hub-market and publisher)."""
        assert self.process.stdout is not None
        await self.command("stats")
        return dict(json.loads(await self.process.stdout.readline()))

    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def cpu(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    async def stop(self) -> None:
        await terminate(self.process)


async def start_rate_server(
    name: str,
    seed: int,
    node_dir: Path | None = None,
    *,
    broker: str | None = None,
    cpus: str | None = None,
) -> RateServer:
    """Start one server (`node-ws` from node_dir; `hub-market` and `publisher` on `broker`, by
    default market_server's) and wait until it says "ready" and, unless it is the HTTP-less
    publisher, listens. `cpus`: pinned there with taskset."""
    port = free_port()
    if name == "node-ws":
        assert node_dir is not None
        argv = ["node", str(node_dir / "server.js"), str(port), str(seed)]
    else:
        argv = bench_python("harness.rate_servers", name, str(port), str(seed))
        argv += ["--broker", broker] if broker else []
    argv = ["taskset", "-c", cpus, *argv] if cpus else argv
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=node_dir or ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    if not line.startswith(b"ready"):
        raise RuntimeError(f"{name} did not start")
    if name != "publisher":  # "ready" is printed just before the socket listens
        await wait_listening(port)
    return RateServer(name, process, port)
