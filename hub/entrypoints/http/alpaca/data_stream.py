"""/v2/iex and /v2/sip: Alpaca's real-time stock data stream (what alpaca-py's StockDataStream
reads), over the engine's `quotes:<SYMBOL>` and `bars:<SYMBOL>` channels. Both paths serve the
same data: Hub has one feed.

msgpack both ways, or JSON (data_messages.py). Every server frame is an array of messages;
control messages (`success`, `error`, `subscription`) come one per frame.

    < [{"T":"success","msg":"connected"}]
    > {"action":"auth","key":"HK...","secret":"..."}
    < [{"T":"success","msg":"authenticated"}]
    > {"action":"subscribe","quotes":["AAPL"],"trades":["AAPL"],"bars":["*"]}
    < [{"T":"subscription","trades":["AAPL"],"quotes":["AAPL"],"bars":["*"],...}]
    < [{"T":"q","S":"AAPL","bp":189.1,...},{"T":"t","S":"AAPL","p":189.12,...}]

The key may also come in Alpaca's headers on the upgrade request. Errors carry Alpaca's codes:
400 invalid syntax, 401 not authenticated, 402 auth failed, 403 already authenticated, 404 auth
timeout, 405 symbol limit exceeded, 406 connection limit exceeded, 407 slow client, 410 a channel
Hub does not serve, 500 internal error. 402, 404, 406 and 407 close the connection.
"""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import structlog
from starlette.websockets import WebSocket

from hub.adapters.streaming_auth import principal_of
from hub.bootstrap import Container
from hub.domain.errors import InvalidInput
from hub.entrypoints.http.alpaca import params, sockets
from hub.entrypoints.http.alpaca.data_feed import MarketFeed, Wants
from hub.entrypoints.http.alpaca.data_messages import (
    UNSERVED,
    Codec,
    Error,
    Request,
    Subscription,
    Success,
)
from hub.services.market_data import MAX_LISTING
from hub.services.ports import AccessClaims
from streaming import BrokerUnavailable, CloseCode, TooManyConnections
from streaming.ratelimit import TokenBucket
from streaming.subscriber import Subscriber

log = structlog.get_logger("hub.alpaca.data")


async def data_stream(websocket: WebSocket) -> None:
    hub: Container = websocket.app.state.hub
    codec = Codec(websocket)
    await websocket.accept()
    sender = sockets.Sender(websocket, binary=codec.msgpack)

    async def refuse(code: int, msg: str, close: int) -> None:
        await sender.send(codec.encode([Error(code, msg)]))
        await sockets.close(websocket, close, msg)

    await sender.send(codec.encode([Success("connected")]))
    claims = await _authenticate(hub, websocket, codec, sender)
    if isinstance(claims, Error):
        timeout = claims.code == 404
        close = CloseCode.AUTHENTICATION_TIMEOUT if timeout else CloseCode.AUTHENTICATION_FAILED
        await refuse(claims.code, claims.msg, close)
        return
    async with contextlib.AsyncExitStack() as stack:
        try:
            ended = await stack.enter_async_context(hub.engine.lease(principal_of(claims)))
        except TooManyConnections:
            await refuse(406, "connection limit exceeded", CloseCode.TOO_MANY_CONNECTIONS)
            return
        await sender.send(codec.encode([Success("authenticated")]))
        connection = _Connection(hub, websocket, codec, sender)
        code, reason = await connection.run(ended)
    await sockets.close(websocket, code, reason)


async def _authenticate(
    hub: Container, websocket: WebSocket, codec: Codec, sender: sockets.Sender
) -> AccessClaims | Error:
    """The claims of the upgrade's key headers or of the first `auth` message."""
    headers = sockets.header_credentials(websocket)
    if headers is not None:
        claims = await sockets.check(hub, websocket, key_id=headers[0], secret=headers[1])
        return claims if claims is not None else Error(402, "auth failed")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + hub.engine.limits.auth_timeout
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                raw = await sockets.receive(websocket)
        except TimeoutError:
            return Error(404, "auth timeout")
        if raw is None:
            sender.gone = True
            return Error(402, "auth failed")
        try:
            request = codec.decode(raw)
        except msgspec.DecodeError:
            await sender.send(codec.encode([Error(400, "invalid syntax")]))
            continue
        if request.action != "auth":
            await sender.send(codec.encode([Error(401, "not authenticated")]))
            continue
        claims = await sockets.check(hub, websocket, key_id=request.key, secret=request.secret)
        return claims if claims is not None else Error(402, "auth failed")


class _Connection:
    """An authenticated connection: its subscriptions, its reader and its writer."""

    def __init__(
        self, hub: Container, websocket: WebSocket, codec: Codec, sender: sockets.Sender
    ) -> None:
        self._hub = hub
        self._websocket = websocket
        self._codec = codec
        self._sender = sender
        self._feed = MarketFeed(Wants())
        self._subscribers: dict[str, Subscriber] = {}
        self._finished: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._violations = 0

    def finish(self, code: int, reason: str) -> None:
        if not self._finished.done():
            self._finished.set_result((code, reason))

    async def run(self, ended: asyncio.Future[tuple[int, str]]) -> tuple[int, str]:
        ended.add_done_callback(self._lease_ended)
        tasks = [
            sockets.watch(
                asyncio.create_task(self._read(), name="alpaca-data-reader"), self.finish
            ),
            sockets.watch(
                asyncio.create_task(self._write(), name="alpaca-data-writer"), self.finish
            ),
        ]
        try:
            return await self._finished
        finally:
            await sockets.stop(tasks)
            for subscriber in self._subscribers.values():
                self._hub.engine.detach(subscriber)
            self._subscribers.clear()

    def _lease_ended(self, ended: asyncio.Future[tuple[int, str]]) -> None:
        if not ended.cancelled():  # expired, revoked, or the server is stopping
            self.finish(*ended.result())

    async def _write(self) -> None:
        feed = self._feed
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(feed.next_close()):
                    await feed.wake.wait()
            feed.wake.clear()
            if feed.failure is not None:
                await self._sender.send(self._codec.encode([Error(407, feed.failure)]))
                self.finish(CloseCode.SLOW_CONSUMER, feed.failure)
                return
            feed.close_due()
            while (batch := feed.take()) is not None:
                await self._sender.send(self._codec.encode(batch))
            if self._sender.gone:
                self.finish(CloseCode.NORMAL, "")
                return

    async def _read(self) -> None:
        limits = self._hub.engine.limits
        bucket = TokenBucket(limits.inbound_rate, limits.inbound_burst)
        while True:
            raw = await sockets.receive(self._websocket)
            if raw is None:
                self._sender.gone = True
                self.finish(CloseCode.NORMAL, "")
                return
            if not bucket.take():
                self._violation(Error(400, "too many messages; this one was ignored"))
                continue
            try:
                request = self._codec.decode(raw)
            except msgspec.DecodeError:
                self._violation(Error(400, "invalid syntax"))
                continue
            if request.action in ("subscribe", "unsubscribe"):
                try:
                    await self._change(request, add=request.action == "subscribe")
                except Exception:  # the instruments cannot be read, say: this request fails
                    log.exception("market data subscription change failed")
                    self._feed.control(Error(500, "internal error; try again"))
            elif request.action == "auth":
                self._feed.control(Error(403, "already authenticated"))
            else:
                self._violation(Error(400, "invalid syntax"))

    def _violation(self, error: Error) -> None:
        self._feed.control(error)
        self._violations += 1
        if self._violations > self._hub.engine.limits.max_violations:
            self.finish(CloseCode.POLICY_VIOLATION, "too many protocol errors")

    async def _change(self, request: Request, *, add: bool) -> None:
        unserved = [name for name in UNSERVED if getattr(request, _attr(name))]
        if unserved:
            listed = ", ".join(unserved)
            self._feed.control(Error(410, f"invalid subscribe action: {listed} not served"))
            if not (request.quotes or request.trades or request.bars or request.updated_bars):
                return
        known = [i.symbol for i in await self._hub.market_data.search(None, MAX_LISTING)]
        symbols = set(known)
        wanted = self._feed.wants.copy()
        for attr, names in (
            ("quotes", request.quotes),
            ("trades", request.trades),
            ("bars", request.bars),
            ("updated_bars", request.updated_bars),
        ):
            target: set[str] = getattr(wanted, attr)
            cleaned = {n if n == "*" else _symbol(n) for n in names}
            if add:
                target |= {n for n in cleaned if n == "*" or n in symbols}
            else:
                target -= cleaned
        channels = wanted.channels(known)
        if len(channels) > self._hub.engine.limits.max_subscriptions:
            self._feed.control(Error(405, "symbol limit exceeded"))
            return
        await self._resubscribe(wanted, channels)

    async def _resubscribe(self, wanted: Wants, channels: set[str]) -> None:
        engine, feed = self._hub.engine, self._feed
        feed.hold = True  # the `subscription` answer goes before the new channels' data
        try:
            before, feed.wants = feed.wants, wanted
            for channel in set(self._subscribers) - channels:
                engine.detach(self._subscribers.pop(channel))
                if channel.startswith("bars:"):
                    feed.forget(channel.removeprefix("bars:"))
            added = [engine.prepare(feed, c, c) for c in sorted(channels - set(self._subscribers))]
            self._subscribers.update((s.channel, s) for s in added)
            if added:
                try:
                    await engine.activate([(s, None) for s in added])
                except BrokerUnavailable as exc:
                    log.warning("market data subscribe failed", error=str(exc))
                    for subscriber in added:
                        engine.detach(self._subscribers.pop(subscriber.channel))
                    feed.wants = before  # a subscribe only adds: nothing was removed
                    feed.control(Error(500, "market data unavailable; subscribe again"))
            feed.control(Subscription.of(feed.wants))
        finally:
            feed.hold = False
            feed.wake.set()


def _attr(name: str) -> str:
    """A request field's Python name (its wire name is camelCase)."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _symbol(name: str) -> str:
    try:
        return params.symbol(name)
    except InvalidInput:  # not a symbol: it matches nothing
        return name.upper()
