"""/stream: Alpaca's trade_updates stream (what alpaca-py's TradingStream reads), over Hub's
reliable `orders` channel. JSON in binary frames, as Alpaca's own (docs/alpaca.md).

    > {"action":"authenticate","data":{"key_id":"HK...","secret_key":"..."}}
    < {"stream":"authorization","data":{"action":"authenticate","status":"authorized"}}
    > {"action":"listen","data":{"streams":["trade_updates"]}}
    < {"stream":"listening","data":{"streams":["trade_updates"],"seq":41}}
    < {"stream":"trade_updates","data":{"event":"fill","order":{...},"price":"189.12",...}}

The first frame must authenticate, within the engine's auth timeout: with an API key (also in
Alpaca's older form `{"action":"auth","key":...,"secret":...}`) or a Hub access token
(`{"data":{"oauth_token":...}}`). The next frame answers it; a refusal closes with 4001.

Beyond Alpaca: `listen` may carry `since` (the `seq` of the last event processed, which every
trade update and `listening` carry): the events missed since are replayed from the channel's
history, and `listening` says `"recovered": true`; or `false` when the history no longer reaches
back, and the orders must be read again over REST.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import structlog
from starlette.websockets import WebSocket

from hub.adapters.streaming_auth import principal_of
from hub.bootstrap import Container
from hub.domain.instruments import Category
from hub.entrypoints.http.alpaca import sockets
from hub.entrypoints.http.alpaca.trade_updates import STREAM, Frame, decoder, trade_update
from hub.services.channels import orders_channel
from hub.services.ports import AccessClaims
from streaming import CloseCode, SlowConsumer, StreamingError, TooManyConnections
from streaming.publication import Publication
from streaming.ratelimit import TokenBucket

log = structlog.get_logger("hub.alpaca.stream")

MAX_PENDING = 1000  # events queued for a slow reader before it is disconnected (4009)
_encoder = msgspec.json.Encoder()


class _Auth(msgspec.Struct):
    key_id: str | None = None
    secret_key: str | None = None
    oauth_token: str | None = None


class _Listen(msgspec.Struct):
    streams: list[str] = msgspec.field(default_factory=list)
    since: int | None = None


class _Message(msgspec.Struct):
    action: str
    data: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))
    key: str | None = None  # Alpaca's older auth frame
    secret: str | None = None


_messages = msgspec.json.Decoder(_Message)
_auth = msgspec.json.Decoder(_Auth | None)
_listen = msgspec.json.Decoder(_Listen)


def frame(stream: str, data: Any) -> bytes:
    return _encoder.encode(Frame(stream, data))


def authorization(status: str, message: str | None = None) -> bytes:
    data: dict[str, str] = {"action": "authenticate", "status": status}
    if message:
        data["message"] = message
    return frame("authorization", data)


def error(code: str, message: str) -> bytes:
    return frame("error", {"code": code, "message": message})


async def trade_stream(websocket: WebSocket) -> None:
    hub: Container = websocket.app.state.hub
    await websocket.accept()
    sender = sockets.Sender(websocket, binary=True)
    claims = await _authenticate(hub, websocket, sender)
    if not isinstance(claims, AccessClaims):
        await sender.send(authorization("unauthorized"))
        await sockets.close(websocket, claims, "unauthorized")
        return
    async with contextlib.AsyncExitStack() as stack:
        try:
            ended = await stack.enter_async_context(hub.engine.lease(principal_of(claims)))
        except TooManyConnections:
            limit = hub.engine.limits.max_connections_per_principal
            await sender.send(authorization("unauthorized", f"too many connections ({limit})"))
            await sockets.close(websocket, CloseCode.TOO_MANY_CONNECTIONS, "too many connections")
            return
        await sender.send(authorization("authorized"))
        stream = _TradeStream(hub, websocket, sender, str(claims.user_id))
        code, reason = await stream.run(ended)
    await sockets.close(websocket, code, reason)


async def _authenticate(
    hub: Container, websocket: WebSocket, sender: sockets.Sender
) -> AccessClaims | int:
    """The claims of the first frame's credentials, or the close code that refuses them."""
    try:
        async with asyncio.timeout(hub.engine.limits.auth_timeout):
            raw = await sockets.receive(websocket)
    except TimeoutError:
        return CloseCode.AUTHENTICATION_TIMEOUT
    if raw is None:
        sender.gone = True
        return CloseCode.NORMAL
    claims = None
    try:
        message = _messages.decode(raw)
        if message.action == "auth":  # Alpaca's older form
            claims = await sockets.check(hub, websocket, key_id=message.key, secret=message.secret)
        elif message.action == "authenticate":
            data = _auth.decode(message.data) or _Auth()
            claims = await sockets.check(
                hub, websocket, key_id=data.key_id, secret=data.secret_key, token=data.oauth_token
            )
    except msgspec.DecodeError:
        pass
    return CloseCode.AUTHENTICATION_FAILED if claims is None else claims


class _TradeStream:
    """One authorized connection: the reader, the pump of the orders channel, and the close."""

    def __init__(
        self, hub: Container, websocket: WebSocket, sender: sockets.Sender, user_id: str
    ) -> None:
        self._hub = hub
        self._websocket = websocket
        self._sender = sender
        self._channel = orders_channel(user_id)
        self._pump: asyncio.Task[None] | None = None
        self._finished: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._violations = 0
        self.seq = 0

    def finish(self, code: int, reason: str) -> None:
        if not self._finished.done():
            self._finished.set_result((code, reason))

    async def run(self, ended: asyncio.Future[tuple[int, str]]) -> tuple[int, str]:
        """Serve until the client goes, the lease ends or a pump fails; the close to send."""
        ended.add_done_callback(self._lease_ended)
        reader = sockets.watch(
            asyncio.create_task(self._read(), name="alpaca-stream-reader"), self.finish
        )
        try:
            return await self._finished
        finally:
            await sockets.stop([t for t in (reader, self._pump) if t is not None])

    def _lease_ended(self, ended: asyncio.Future[tuple[int, str]]) -> None:
        if not ended.cancelled():  # expired, revoked, or the server is stopping
            self.finish(*ended.result())

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
                await self._violation("rate_limited", "too many messages; this one was ignored")
                continue
            try:
                message = _messages.decode(raw)
                if message.action == "listen":
                    await self._listen(_listen.decode(message.data))
                elif message.action in ("authenticate", "auth"):
                    await self._violation("already_authenticated", "already authenticated")
                else:
                    await self._violation("unknown_action", f"unknown action {message.action!r}")
            except msgspec.DecodeError as exc:
                await self._violation("invalid_message", f"invalid message: {exc}")

    async def _violation(self, code: str, message: str) -> None:
        await self._sender.send(error(code, message))
        self._violations += 1
        if self._violations > self._hub.engine.limits.max_violations:
            self.finish(CloseCode.POLICY_VIOLATION, "too many protocol errors")

    async def _listen(self, wanted: _Listen) -> None:
        if wanted.since is not None and wanted.since < 0:
            await self._violation("invalid_message", "since must not be negative")
            return
        listen = STREAM in wanted.streams
        if listen and self._pump is None:
            # The pump answers `listening` once it is subscribed: then `seq` is known, and
            # the answer precedes the first event.
            pump = asyncio.create_task(self._run_pump(wanted.since), name="alpaca-pump")
            self._pump = sockets.watch(pump, self.finish)
            return
        if not listen and self._pump is not None:
            await sockets.stop([self._pump])
            self._pump = None
        streams = [STREAM] if listen else []
        await self._sender.send(frame("listening", {"streams": streams, "seq": self.seq}))

    async def _run_pump(self, since: int | None) -> None:
        engine = self._hub.engine
        try:
            async with engine.subscribe(self._channel, since=since, max_pending=MAX_PENDING) as sub:
                self.seq = sub.seq
                listening: dict[str, Any] = {"streams": [STREAM], "seq": sub.seq}
                if sub.recovered is not None:
                    listening["recovered"] = sub.recovered
                await self._sender.send(frame("listening", listening))
                async for publication in sub:
                    self.seq = publication.seq
                    payload = await self._event(publication)
                    if payload is not None:
                        await self._sender.send(payload)
        except SlowConsumer:
            self.finish(CloseCode.SLOW_CONSUMER, "slow consumer")
            return
        except StreamingError as exc:  # the broker is unreachable, or continuity was lost
            log.warning("trade_updates subscription failed", error=str(exc))
            await self._sender.send(error("unavailable", f"{exc}; listen again with since"))
            self.finish(CloseCode.SERVICE_RESTART, "subscription lost, reconnect")
            return
        self.finish(CloseCode.GOING_AWAY, "server shutting down")  # the engine stopped

    async def _event(self, publication: Publication) -> bytes | None:
        try:
            update = decoder.decode(publication.data)
        except msgspec.DecodeError:
            log.error("undecodable order publication", seq=publication.seq)
            return None
        found = await self._hub.market_data.instruments([update.symbol])
        category = found[update.symbol].category if update.symbol in found else Category.STOCK
        out = trade_update(update, category, publication.seq)
        return None if out is None else frame(STREAM, out)
