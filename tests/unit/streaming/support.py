"""Shared test support: a fake Authorizer, a real uvicorn server on a free port, a WS client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from streaming import AuthenticationFailed, ChannelKind, Engine, Limits, Principal
from streaming.direct import DirectWebSocketProtocol
from streaming.sse import SseEndpoint
from streaming.websocket import WebSocketEndpoint

TOKENS = {"alice-token": "alice", "bob-token": "bob", "carol-token": "carol"}


def expiring_token(user: str, *, sid: str = "s1", ttl: float = 3600.0) -> str:
    """A token FakeAuthorizer accepts for `user` in login session `sid`, valid for `ttl` s."""
    return f"exp:{user}:{sid}:{time.time() + ttl!r}"


class FakeAuthorizer:
    """Tokens are looked up in TOKENS (they never expire), or made by `expiring_token`;
    "orders" is per user, "secret:*" is forbidden."""

    async def authenticate(self, token: str) -> Principal:
        user = TOKENS.get(token)
        if user is not None:
            return Principal(user)
        if token.startswith("exp:"):
            _, user, sid, expires_at = token.split(":")
            if float(expires_at) <= time.time():
                raise AuthenticationFailed("token expired")
            return Principal(user, expires_at=float(expires_at), sid=sid)
        raise AuthenticationFailed("unknown token")

    def resolve(self, principal: Principal, channel: str) -> str | None:
        if channel == "orders":
            return f"orders:{principal.id}"
        if channel.startswith(("quotes:", "events:")):
            return channel
        return None


def kind_of(channel: str) -> ChannelKind:
    if channel.startswith(("orders:", "events:")):
        return ChannelKind.RELIABLE
    return ChannelKind.LATEST


def make_engine(broker_url: str = "memory://", **kwargs: Any) -> Engine:
    kwargs.setdefault("limits", Limits())
    return Engine(broker_url, authorizer=FakeAuthorizer(), kind_of=kind_of, **kwargs)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # leave pytest's signal handling alone


#: The WebSocket protocol class `serve_app` gives uvicorn: what `hub serve` runs by default;
#: tests of the plain ASGI path set it to "websockets-sansio".
WS_PROTOCOL: list[Any] = [DirectWebSocketProtocol]


@contextlib.asynccontextmanager
async def serve_app(
    app: Any,
    *,
    sndbuf: int | None = None,
    lifespan: Literal["auto", "on", "off"] = "off",
    deflate: bool = False,
    ws_max_size: int = 16 * 1024 * 1024,
) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn in this loop on 127.0.0.1:<free port>; yields
    "host:port".

    `sndbuf` pins the kernel send buffer of accepted sockets (Linux copies it from the listening
    socket), so backpressure tests do not depend on TCP autotuning filling megabytes first.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sndbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan=lifespan,
        log_level="warning",
        ws=WS_PROTOCOL[0],
        ws_per_message_deflate=deflate,
        ws_max_size=ws_max_size,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def routes(engine: Engine) -> list[Route | WebSocketRoute]:
    """The engine's WebSocket and SSE endpoints, mounted as an application would."""
    return [
        WebSocketRoute("/ws", WebSocketEndpoint(engine)),
        Route("/sse", SseEndpoint(engine), methods=["GET"]),
    ]


@contextlib.asynccontextmanager
async def serve(
    engine: Engine, *, sndbuf: int | None = None, deflate: bool = False
) -> AsyncIterator[str]:
    """Serve the engine's endpoints at /ws and /sse (see serve_app)."""
    app = Starlette(routes=routes(engine))
    async with serve_app(app, sndbuf=sndbuf, deflate=deflate) as address:
        yield address


@contextlib.asynccontextmanager
async def running(
    broker_url: str = "memory://", *, sndbuf: int | None = None, **kwargs: Any
) -> AsyncIterator[tuple[Engine, str]]:
    """An entered engine plus a server for it."""
    async with make_engine(broker_url, **kwargs) as engine, serve(engine, sndbuf=sndbuf) as address:
        yield engine, address


class Client:
    """A WebSocket client that reads frames (JSON arrays) into a message list."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pending: list[dict[str, Any]] = []
        self.seen: list[dict[str, Any]] = []  # every message returned by next(), in order

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        if isinstance(message, dict):
            message = json.dumps(message)
        await self.ws.send(message)

    async def next(self, within: float = 5.0) -> dict[str, Any]:
        while not self.pending:
            async with asyncio.timeout(within):
                raw = await self.ws.recv()
            frame = json.loads(raw)
            assert isinstance(frame, list) and frame, f"frame is not a non-empty array: {raw!r}"
            self.pending.extend(frame)
        message = self.pending.pop(0)
        self.seen.append(message)
        return message

    async def expect(
        self,
        type_: str,
        where: Callable[[dict[str, Any]], bool] = lambda m: True,
        within: float = 5.0,
    ) -> dict[str, Any]:
        """Skip messages until one of `type_` matching `where` arrives."""
        async with asyncio.timeout(within):
            while True:
                message = await self.next(within)
                if message["type"] == type_ and where(message):
                    return message

    async def subscribe(
        self, *channels: str, since: dict[str, int] | None = None
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"action": "subscribe", "channels": list(channels)}
        if since:
            body["since"] = since
        await self.send(body)
        return [await self.expect("subscribed", _channel_is(c)) for c in channels]


def _channel_is(channel: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["channel"] == channel


async def read_until_closed(c: Client) -> ConnectionClosed:
    """Read (and discard) until the server closes; return the close exception."""
    try:
        async with asyncio.timeout(10):
            while True:
                await c.next()
    except ConnectionClosed as exc:
        return exc


def close_code(exc: ConnectionClosed) -> int | None:
    return exc.rcvd.code if exc.rcvd is not None else None


@contextlib.asynccontextmanager
async def client(
    address: str, token: str | None = "alice-token", *, header: bool = False, **kwargs: Any
) -> AsyncIterator[Client]:
    """Connect, authenticate (first frame or header) and consume `connected`."""
    headers = {"Authorization": f"Bearer {token}"} if header and token else None
    async with connect(f"ws://{address}/ws", additional_headers=headers, **kwargs) as ws:
        c = Client(ws)
        if token is not None:
            if not header:
                await c.send({"action": "auth", "token": token})
            await c.expect("connected")
        yield c


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until `predicate()` holds (state that the server updates asynchronously)."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - server state has no event to await
            await asyncio.sleep(0.01)
