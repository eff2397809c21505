"""What one market-data stream connection (/v2/iex, /v2/sip) is sent: the engine's publications
on `quotes:<SYMBOL>` and `bars:<SYMBOL>`, turned into Alpaca's messages, and held until the
connection's writer takes them. This is the engine Sink of that connection.

- `q`: the newest quote of each symbol (conflated: a slow reader gets the newest quote, as on
  Hub's own latest-value channels).
- `t`: a quote's last trade (when its size is not zero), every one, in order.
- `b`: a minute bar once its minute has closed, as Alpaca sends minute bars: when the symbol's
  first trade of a later minute arrives, or `BAR_GRACE` after the minute's end. The channel
  carries the forming bar with every trade; the last state of a minute is its final bar.
- `u`: a bar sent again because a late trade changed it after it was sent (Alpaca's
  updatedBars).

Trades and bars wait in one bounded queue; past `max_pending` the connection is too slow and is
closed (Alpaca's 407). Control messages go first, each in a frame of its own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec

from hub.entrypoints.http.alpaca.data_shapes import (
    BarMessage,
    QuoteMessage,
    TradeMessage,
    UpdatedBarMessage,
)
from hub.services.views import LiveBarView, QuoteView
from streaming import StreamingError
from streaming.publication import Publication
from streaming.subscriber import Subscriber

MINUTE = timedelta(minutes=1)
BAR_GRACE = timedelta(seconds=2)  # a minute's bar is sent this long after its end at the latest
MAX_PENDING = 10_000
MAX_BATCH = 1000  # data messages per frame

T = TypeVar("T")


class _Decoded:
    """The last publication decoded on each channel: every connection of this process that
    follows the channel is handed the same Publication, and decodes it once between them."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[Publication, Any]] = {}

    def get(self, channel: str, publication: Publication, decoder: msgspec.json.Decoder[T]) -> T:
        held = self._held.get(channel)
        if held is not None and held[0] is publication:
            decoded: T = held[1]
            return decoded
        value = decoder.decode(publication.data)
        self._held[channel] = (publication, value)
        return value


_decoded = _Decoded()
_quotes = msgspec.json.Decoder(QuoteView)
_bars = msgspec.json.Decoder(LiveBarView)


@dataclass(slots=True)
class _Minute:
    bar: LiveBarView
    sent: bool  # already sent as `b` (or too old to send)


class Wants:
    """What the client asked for, per Alpaca channel: symbols, or "*" for every symbol."""

    def __init__(self) -> None:
        self.quotes: set[str] = set()
        self.trades: set[str] = set()
        self.bars: set[str] = set()
        self.updated_bars: set[str] = set()

    def copy(self) -> Wants:
        other = Wants()
        other.quotes, other.trades = set(self.quotes), set(self.trades)
        other.bars, other.updated_bars = set(self.bars), set(self.updated_bars)
        return other

    def channels(self, known: list[str]) -> set[str]:
        """The engine channels these wants need, `known` being every symbol there is."""

        def expand(names: set[str]) -> set[str]:
            return set(known) if "*" in names else names

        quotes = expand(self.quotes) | expand(self.trades)
        bars = expand(self.bars) | expand(self.updated_bars)
        return {f"quotes:{s}" for s in quotes} | {f"bars:{s}" for s in bars}


def _has(names: set[str], symbol: str) -> bool:
    return symbol in names or "*" in names


class MarketFeed:
    """The Sink of one connection's engine subscriptions (called synchronously by the engine)."""

    def __init__(
        self,
        wants: Wants,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.wants = wants
        self._now = now
        self._max_pending = max_pending
        self._control: deque[Any] = deque()
        self._ordered: deque[Any] = deque()  # trades and bars
        self._quotes: dict[str, QuoteMessage] = {}
        self._minutes: dict[str, _Minute] = {}
        self.wake = asyncio.Event()
        self.hold = False  # while set, data is kept back (control messages must come first)
        self.failure: str | None = None  # why the connection must close

    # --- Sink ----------------------------------------------------------------------------------

    def deliver(self, subscriber: Subscriber, publication: Publication) -> None:
        channel = subscriber.channel
        if channel.startswith("quotes:"):
            quote = _decoded.get(channel, publication, _quotes)
            self._quote(quote, snapshot=subscriber.replaying)
        elif channel.startswith("bars:"):
            bar = _decoded.get(channel, publication, _bars)
            self._bar(bar, snapshot=subscriber.replaying)

    def subscribed(self, subscriber: Subscriber, seq: int, recovered: bool | None) -> None:
        return None

    def lost(self, subscriber: Subscriber, error: StreamingError) -> None:
        self.failure = f"subscription lost: {error}"
        self.wake.set()

    # --- what the connection does --------------------------------------------------------------

    def control(self, message: Any) -> None:
        self._control.append(message)
        self.wake.set()

    def forget(self, symbol: str) -> None:
        """The symbol's bars are no longer followed."""
        self._minutes.pop(symbol, None)

    def next_close(self) -> float | None:
        """Seconds until a held minute is due to be sent (None: none is held)."""
        pending = [m.bar.t for m in self._minutes.values() if not m.sent]
        if not pending:
            return None
        due = min(pending) + MINUTE + BAR_GRACE
        return max((due - self._now()).total_seconds(), 0.0)

    def close_due(self) -> None:
        """Send the bars whose minute ended more than BAR_GRACE ago."""
        cutoff = self._now() - MINUTE - BAR_GRACE
        for minute in self._minutes.values():
            if not minute.sent and minute.bar.t <= cutoff:
                minute.sent = True
                self._bar_closed(minute.bar)

    def take(self) -> list[Any] | None:
        """The next frame's messages: one control message alone, or a batch of data."""
        if self._control:
            return [self._control.popleft()]
        if self.hold:
            return None
        batch: list[Any] = []
        while self._ordered and len(batch) < MAX_BATCH:
            batch.append(self._ordered.popleft())
        while self._quotes and len(batch) < MAX_BATCH:
            batch.append(self._quotes.pop(next(iter(self._quotes))))
        return batch or None

    # --- internals -----------------------------------------------------------------------------

    def _queue(self, message: Any) -> None:
        if len(self._ordered) >= self._max_pending:
            self.failure = "slow client"
        else:
            self._ordered.append(message)
        self.wake.set()

    def _quote(self, quote: QuoteView, *, snapshot: bool) -> None:
        symbol = quote.symbol
        if _has(self.wants.quotes, symbol):
            self._quotes[symbol] = QuoteMessage.of(quote)
            self.wake.set()
        # The current quote on subscribe is not a new trade.
        if not snapshot and quote.last_size and _has(self.wants.trades, symbol):
            self._queue(TradeMessage.of(quote))

    def _bar(self, bar: LiveBarView, *, snapshot: bool) -> None:
        held = self._minutes.get(bar.symbol)
        if held is None:
            # On subscribe, the channel's latest bar may be a minute long past (a quiet
            # symbol): history, not news.
            ended = bar.t + MINUTE + BAR_GRACE <= self._now()
            self._minutes[bar.symbol] = _Minute(bar, sent=snapshot and ended)
            self.wake.set()  # the writer's timer must learn of it
        elif bar.t > held.bar.t:  # a later minute: the held one is final
            if not held.sent:
                self._bar_closed(held.bar)
            self._minutes[bar.symbol] = _Minute(bar, sent=False)
            self.wake.set()
        elif bar.t == held.bar.t:
            held.bar = bar
            if held.sent and not snapshot and _has(self.wants.updated_bars, bar.symbol):
                self._queue(UpdatedBarMessage.live(bar))

    def _bar_closed(self, bar: LiveBarView) -> None:
        if _has(self.wants.bars, bar.symbol):
            self._queue(BarMessage.live(bar))
