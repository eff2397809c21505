"""A client connection, independent of transport: subscriptions, outbox and writer wake-up,
and the engine as a connection sees it (`Host`)."""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

from streaming._revocation import CHANNEL as REVOKED
from streaming.auth import Authorizer, Principal
from streaming.channels import ChannelKind
from streaming.errors import BrokerUnavailable, StreamingError
from streaming.flusher import Flusher
from streaming.limits import Limits
from streaming.outbox import Outbox
from streaming.protocol import (
    CloseCode,
    Error,
    ErrorCode,
    ServerMessage,
    Subscribed,
    Unsubscribed,
)
from streaming.publication import Publication
from streaming.stats import Counters
from streaming.subscriber import Sink, Subscriber

T = TypeVar("T")
log = logging.getLogger("streaming.session")


class Host(Protocol):
    """The engine as its sessions and their transport endpoints see it; `Engine` implements it.

    Sessions and endpoints depend on this, never on the engine module, so the engine can build
    sessions (leases) without an import cycle.
    """

    @property
    def limits(self) -> Limits: ...

    @property
    def counters(self) -> Counters: ...

    @property
    def authorizer(self) -> Authorizer: ...

    @property
    def running(self) -> bool:
        """Inside `async with engine:` (and not stopping): new connections are admitted."""
        ...

    @property
    def flusher(self) -> Flusher:
        """The flush scheduler shared by the engine's WebSocket connections."""
        ...

    async def authenticate(self, token: str) -> Principal:
        """Who `token` is (raises AuthenticationFailed)."""
        ...

    def admits(self, principal: Principal) -> bool:
        """Whether a new connection of `principal` would be admitted now."""
        ...

    def open_session(self, session: Session[Any]) -> bool:
        """Admit a connection; False if its principal already has too many."""
        ...

    def close_session(self, session: Session[Any]) -> None:
        """Release a connection's subscriptions and slot."""
        ...

    def prepare(self, sink: Sink, name: str, channel: str) -> Subscriber:
        """Register a subscriber (catching up) on the internal `channel`."""
        ...

    async def activate(self, pending: Sequence[tuple[Subscriber, int | None]]) -> None:
        """Read the snapshots and switch the subscribers to live."""
        ...

    def detach(self, subscriber: Subscriber) -> None:
        """Remove a subscriber."""
        ...


class SessionState(enum.Enum):
    """Where a connection is in its life; it only ever moves down this list."""

    #: Delivering: publications and control messages are queued for the transport.
    OPEN = "open"
    #: A close was requested (`close_request` holds its code and reason): nothing more is
    #: queued, and the transport says goodbye and closes.
    CLOSING = "closing"
    #: Released by the engine: no subscriptions, no connection slot.
    CLOSED = "closed"


_OPEN, _CLOSING, _CLOSED = SessionState  # module constants: `deliver` is the hot path


class Session(Generic[T]):
    """Everything one client connection owns; transports subclass it to choose the item format.

    Publishing code calls `deliver` synchronously: it renders (cached per publication), appends
    to the bounded outbox and sets the writer's wake-up event only if it is not already set, so a
    burst of publications costs one writer wake-up per connection, not one per message.
    `state` says where the connection is in its life (a SessionState).
    """

    def __init__(self, engine: Host, principal: Principal) -> None:
        self.engine = engine
        self.limits = engine.limits
        self.principal = principal
        self.id = secrets.token_hex(8)
        self.state = _OPEN
        self.subscriptions: dict[str, Subscriber] = {}
        self.outbox: Outbox[T] = Outbox(self.limits.max_outbox_bytes)
        #: Resolves with (CloseCode, reason) when the connection leaves OPEN.
        self.close_request: asyncio.Future[tuple[int, str]] = (
            asyncio.get_running_loop().create_future()
        )
        self.last_received = self.last_sent = time.monotonic()
        # Pull-mode transports (SSE) wait on this; push-mode ones (WebSocket) never do, so it
        # is created on first use: an idle socket does not carry an Event and its deque.
        self._wakeup: asyncio.Event | None = None
        self._counters = engine.counters

    # --- formats, chosen by the transport ---------------------------------------------------

    def render(self, subscriber: Subscriber, publication: Publication) -> tuple[T, int]:
        raise NotImplementedError

    def render_message(self, message: ServerMessage) -> tuple[T, int]:
        raise NotImplementedError

    # --- Sink -----------------------------------------------------------------------------------

    def deliver(self, subscriber: Subscriber, publication: Publication) -> None:
        if self.state is not _OPEN:
            return
        item, size = self.render(subscriber, publication)
        if subscriber.kind is ChannelKind.LATEST:
            if self.outbox.put_latest(subscriber.name, item, size):
                self._counters.conflated += 1
        elif not self.outbox.push(item, size, bounded=not subscriber.replaying):
            self._slow_consumer()
            return
        self._counters.deliveries += 1
        self._notify()

    def subscribed(self, subscriber: Subscriber, seq: int, recovered: bool | None) -> None:
        kind = subscriber.kind.value
        self.send(Subscribed(subscriber.name, kind, seq, recovered))

    def lost(self, subscriber: Subscriber, error: StreamingError) -> None:
        # Continuity is gone; the client reconnects and recovers with `since` (or resyncs).
        self.send(Error(ErrorCode.SUBSCRIPTION_LOST, str(error), subscriber.name))
        self.request_close(CloseCode.SERVICE_RESTART, "subscription lost, reconnect")

    # --- outbound ---------------------------------------------------------------------------

    def send(self, message: ServerMessage) -> None:
        """Queue a control message (same byte budget as reliable publications)."""
        if self.state is not _OPEN:
            return
        if isinstance(message, Error):
            self._counters.errors += 1
        item, size = self.render_message(message)
        if not self.outbox.push(item, size):
            self._slow_consumer()
            return
        self._notify()

    def error(self, code: ErrorCode, message: str, channel: str | None = None) -> None:
        self.send(Error(code, message, channel))

    def _slow_consumer(self) -> None:
        self._counters.slow_consumer_closes += 1
        self.request_close(CloseCode.SLOW_CONSUMER, "slow consumer")

    def request_close(self, code: int, reason: str) -> None:
        """Ask the transport to close this connection (first request wins)."""
        if self.state is not _OPEN:
            return
        self.state = _CLOSING
        if not self.close_request.done():  # a lease's holder may have cancelled its future
            self.close_request.set_result((code, reason))
        if self._wakeup is not None:
            self._wakeup.set()

    def end(self, code: CloseCode, error: ErrorCode, message: str) -> None:
        """Tell the client why (an `error` message, where the transport has one), then close."""
        self.send(Error(error, message))
        self.request_close(code, message)

    def expires_in(self) -> float | None:
        """Seconds until the credentials expire (None: never), as `connected` reports it."""
        expires_at = self.principal.expires_at
        if expires_at is None:
            return None
        return max(round(expires_at - time.time(), 3), 0.0)

    def heartbeat(self, now: float) -> None:
        """Called by the engine every heartbeat tick; transports that need liveness override."""

    def _notify(self) -> None:
        """Something was queued. Pull-mode transports (SSE) wait in `next_batch`; push-mode
        transports (WebSocket) override this to schedule a flush."""
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.is_set():
            wakeup.set()

    async def next_batch(self) -> list[T]:
        """Wait until something is pending (or a close is requested) and take a batch of it."""
        wakeup = self._wakeup
        if wakeup is None:
            wakeup = self._wakeup = asyncio.Event()
        if not self.outbox and self.state is _OPEN:
            await wakeup.wait()
        if self.limits.flush_interval:
            await asyncio.sleep(self.limits.flush_interval)
        items = self.outbox.drain(self.limits.max_batch_bytes)
        if not self.outbox:
            wakeup.clear()
        return items

    # --- subscriptions ----------------------------------------------------------------------

    async def subscribe(self, channels: Sequence[str], since: Mapping[str, int]) -> None:
        engine = self.engine
        pending: list[tuple[Subscriber, int | None]] = []
        for name in dict.fromkeys(channels):
            if name in self.subscriptions:
                self.error(ErrorCode.ALREADY_SUBSCRIBED, "already subscribed", name)
                continue
            if len(self.subscriptions) >= self.limits.max_subscriptions:
                limit = self.limits.max_subscriptions
                self.error(ErrorCode.TOO_MANY_SUBSCRIPTIONS, f"at most {limit} channels", name)
                continue
            try:
                internal = engine.authorizer.resolve(self.principal, name)
                if internal is None or internal == REVOKED:  # the engine's own control channel
                    self.error(ErrorCode.FORBIDDEN, "channel not found or not allowed", name)
                    continue
                subscriber = engine.prepare(self, name, internal)
            except Exception:
                # An application bug (Authorizer, kind_of) fails this channel, not the others.
                log.exception("cannot subscribe to %r", name)
                self.error(ErrorCode.INTERNAL, "internal error", name)
                continue
            self.subscriptions[name] = subscriber
            pending.append((subscriber, since.get(name)))
        if not pending:
            return
        try:
            await engine.activate(pending)
        except Exception as exc:
            if isinstance(exc, BrokerUnavailable):
                code, detail = ErrorCode.UNAVAILABLE, str(exc)
            else:
                log.exception("subscribe failed")
                code, detail = ErrorCode.INTERNAL, "internal error"
            for subscriber, _ in pending:
                if self.subscriptions.get(subscriber.name) is subscriber:
                    del self.subscriptions[subscriber.name]
                engine.detach(subscriber)
                self.error(code, detail, subscriber.name)

    def unsubscribe(self, channels: Sequence[str]) -> None:
        for name in dict.fromkeys(channels):
            subscriber = self.subscriptions.pop(name, None)
            if subscriber is not None:
                self.engine.detach(subscriber)
                self.outbox.discard_latest(name)
            self.send(Unsubscribed(name))

    def release(self) -> None:
        """Drop every subscription (the connection is gone)."""
        self.state = _CLOSED
        for subscriber in self.subscriptions.values():
            self.engine.detach(subscriber)
        self.subscriptions.clear()
