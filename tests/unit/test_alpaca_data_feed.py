"""What a market-data stream connection is sent (hub/entrypoints/http/alpaca/data_feed.py): the
newest quote, every trade, minute bars once their minute has closed (and again, as `u`, when a
late trade changes one), and the msgpack encoding alpaca-py decodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgpack  # type: ignore[import-untyped]
import msgspec
from alpaca.data.live.stock import StockDataStream
from alpaca.data.models import Bar, Quote, Trade

from hub.domain.quotes import Quote as HubQuote
from hub.entrypoints.http.alpaca.data_feed import BAR_GRACE, MINUTE, MarketFeed, Wants
from hub.entrypoints.http.alpaca.data_shapes import MSGPACK, QuoteMessage, trade_id
from hub.services.views import LiveBarView, QuoteView
from streaming import ChannelKind, Publication
from streaming.subscriber import Subscriber

T0 = datetime(2026, 3, 2, 15, 4, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = T0 + timedelta(seconds=30)

    def __call__(self) -> datetime:
        return self.at


def wants(**kinds: set[str]) -> Wants:
    w = Wants()
    for kind, names in kinds.items():
        setattr(w, kind, names)
    return w


def quote(at: datetime, last: str = "189.50", size: str = "100", symbol: str = "AAPL") -> QuoteView:
    q = HubQuote(
        symbol=symbol,
        bid=Decimal("189.40"),
        ask=Decimal("189.60"),
        last=Decimal(last),
        last_size=Decimal(size),
        bid_size=Decimal(300),
        ask_size=Decimal("0.5"),
        open=Decimal(189),
        high=Decimal(190),
        low=Decimal(188),
        prev_close=Decimal(188),
        timestamp=at,
    )
    return QuoteView.of(q)


def bar(t: datetime, c: str = "189.50", n: int = 1, symbol: str = "AAPL") -> LiveBarView:
    price = Decimal(c)
    return LiveBarView(
        symbol=symbol,
        timeframe="1Min",
        t=t,
        o=price,
        h=price,
        l=price,
        c=price,
        v=Decimal(n * 100),
        n=n,
        vw=price,
    )


class Feed:
    """A MarketFeed with a subscriber per channel, fed as the engine feeds it."""

    def __init__(self, w: Wants, clock: Clock, max_pending: int = 100) -> None:
        self.feed = MarketFeed(w, now=clock, max_pending=max_pending)
        self.subscribers: dict[str, Subscriber] = {}
        self.seq = 0

    def publish(self, channel: str, data: Any, *, snapshot: bool = False) -> None:
        subscriber = self.subscribers.get(channel)
        if subscriber is None:
            subscriber = Subscriber(self.feed, channel, channel, ChannelKind.LATEST)
            subscriber.go_live()
            self.subscribers[channel] = subscriber
        self.seq += 1
        type_ = "quote" if channel.startswith("quotes:") else "bar"
        publication = Publication(
            channel, ChannelKind.LATEST, self.seq, type_, msgspec.json.encode(data)
        )
        subscriber.replaying = snapshot
        subscriber.offer(publication)
        subscriber.replaying = False

    def sent(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while (batch := self.feed.take()) is not None:
            out += msgpack.unpackb(MSGPACK.encode(batch))
        return out


def test_quotes_are_conflated_trades_are_not() -> None:
    f = Feed(wants(quotes={"AAPL"}, trades={"AAPL"}), Clock())
    f.publish("quotes:AAPL", quote(T0, "189.50"), snapshot=True)  # on subscribe: not a trade
    f.publish("quotes:AAPL", quote(T0 + timedelta(seconds=1), "189.51"))
    f.publish("quotes:AAPL", quote(T0 + timedelta(seconds=2), "189.52", size="0"))  # no trade
    f.publish("quotes:AAPL", quote(T0 + timedelta(seconds=3), "189.53"))
    sent = f.sent()
    assert [(m["T"], m.get("p")) for m in sent] == [("t", 189.51), ("t", 189.53), ("q", None)]
    assert sent[-1]["t"].to_datetime() == T0 + timedelta(seconds=3)


def test_a_minute_bar_is_sent_once_the_next_minute_starts() -> None:
    f = Feed(wants(bars={"*"}), Clock())
    f.publish("bars:AAPL", bar(T0, "189.50", 1))
    f.publish("bars:AAPL", bar(T0, "189.70", 2))
    assert f.sent() == []  # still forming
    f.publish("bars:AAPL", bar(T0 + MINUTE, "189.80", 1))
    (closed,) = f.sent()
    assert closed["T"] == "b" and closed["S"] == "AAPL" and closed["c"] == 189.7
    assert closed["n"] == 2 and closed["v"] == 200 and closed["t"].to_datetime() == T0


def test_a_quiet_minute_is_sent_after_the_grace() -> None:
    clock = Clock()
    f = Feed(wants(bars={"AAPL"}), clock)
    f.publish("bars:AAPL", bar(T0))
    due = f.feed.next_close()
    assert due is not None and due == (T0 + MINUTE + BAR_GRACE - clock.at).total_seconds()
    f.feed.close_due()
    assert f.sent() == []
    clock.at = T0 + MINUTE + BAR_GRACE
    f.feed.close_due()
    assert [m["T"] for m in f.sent()] == ["b"]
    assert f.feed.next_close() is None
    f.publish("bars:AAPL", bar(T0, "190.00", 2))  # a late trade in that minute
    assert f.sent() == []  # nobody asked for updated bars
    f.feed.wants = wants(bars={"AAPL"}, updated_bars={"AAPL"})
    f.publish("bars:AAPL", bar(T0, "190.10", 3))
    (updated,) = f.sent()
    assert updated["T"] == "u" and updated["c"] == 190.1 and updated["n"] == 3


def test_a_past_minute_on_subscribe_is_history() -> None:
    clock = Clock()
    clock.at = T0 + 10 * MINUTE
    f = Feed(wants(bars={"AAPL"}), clock)
    f.publish("bars:AAPL", bar(T0), snapshot=True)
    f.feed.close_due()
    assert f.sent() == [] and f.feed.next_close() is None
    f.publish("bars:AAPL", bar(T0 + 10 * MINUTE))  # the symbol trades again
    assert f.sent() == []
    f.publish("bars:AAPL", bar(T0 + 11 * MINUTE))
    assert [m["t"].to_datetime() for m in f.sent()] == [T0 + 10 * MINUTE]


def test_only_what_was_asked_for() -> None:
    f = Feed(wants(quotes={"MSFT"}, bars={"MSFT"}), Clock())
    f.publish("quotes:AAPL", quote(T0))
    f.publish("bars:AAPL", bar(T0))
    f.publish("bars:AAPL", bar(T0 + MINUTE))
    assert f.sent() == []


def test_a_slow_reader_is_told() -> None:
    f = Feed(wants(trades={"AAPL"}), Clock(), max_pending=3)
    for i in range(4):
        f.publish("quotes:AAPL", quote(T0 + timedelta(seconds=i)))
    assert f.feed.failure == "slow client"
    assert len(f.sent()) == 3


def test_control_messages_come_first_and_alone() -> None:
    f = Feed(wants(quotes={"AAPL"}), Clock())
    f.publish("quotes:AAPL", quote(T0))
    f.feed.hold = True
    f.feed.control({"T": "subscription"})
    assert f.feed.take() == [{"T": "subscription"}]
    assert f.feed.take() is None  # held back
    f.feed.hold = False
    batch = f.feed.take()
    assert batch is not None and isinstance(batch[0], QuoteMessage)


def test_what_alpaca_py_decodes() -> None:
    """The encoded messages through StockDataStream's own decoding (msgpack, then its models):
    timestamps are msgpack Timestamps, prices floats, whole sizes integers."""
    f = Feed(wants(quotes={"*"}, trades={"*"}, bars={"*"}), Clock())
    at = T0 + timedelta(microseconds=123456)
    f.publish("quotes:BTC-USD", quote(at, size="0.25", symbol="BTC-USD"))
    f.publish("bars:AAPL", bar(T0))
    f.publish("bars:AAPL", bar(T0 + MINUTE))
    cast = StockDataStream("k", "s")._cast
    parsed = [cast(m) for m in f.sent()]
    trade, bar_, quote_ = parsed
    assert isinstance(trade, Trade) and trade.size == 0.25 and trade.timestamp == at
    assert trade.id == trade_id(at) and trade.exchange is not None
    assert isinstance(quote_, Quote) and quote_.bid_price == 189.4 and quote_.ask_size == 0.5
    assert quote_.bid_size == 300 and quote_.symbol == "BTC-USD"
    assert isinstance(bar_, Bar) and bar_.timestamp == T0 and bar_.vwap == 189.5
