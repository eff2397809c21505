"""Alpaca's market-data shapes: a quote, a trade and a bar with Alpaca's short keys, as the REST
answers (/v2/stocks/...) carry them and, tagged with `T` and the symbol `S`, as the stream
(/v2/iex, /v2/sip) sends them.

Hub's values stay Decimal up to these encoders. Alpaca's wire carries numbers (alpaca-py's
models are floats): the JSON encoder writes each Decimal as a JSON number with its exact digits,
and the msgpack encoder as a float64, as Alpaca's own stream does. Sizes are integers when whole
(stock lots), decimals otherwise (crypto fractions).

Hub is one simulated venue: every quote and trade names IEX's code `V` as its exchange (the one
Alpaca's free feed shows) and no tape. A trade is a quote's last trade (price `last`, size
`last_size`); its id `i` is its time in microseconds since the epoch, so that REST and the stream
give one trade the same id on every node.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from hub.domain.bars import Bar
from hub.domain.quotes import Quote
from hub.services.views import LiveBarView, vwap

EXCHANGE = "V"
TAPE = ""
QUOTE_CONDITIONS = ("R",)  # regular
TRADE_CONDITIONS = ("@",)  # regular sale
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

JSON = msgspec.json.Encoder(decimal_format="number")
MSGPACK = msgspec.msgpack.Encoder(decimal_format="number")  # a Decimal becomes a float64


def size(value: Decimal) -> int | Decimal:
    """A whole size as an integer (as Alpaca sends share counts), a fraction as it is."""
    return int(value) if value == value.to_integral_value() else value


def trade_id(at: datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class QuoteOut(msgspec.Struct, kw_only=True):
    t: datetime
    ax: str
    ap: Decimal
    ask_size: int | Decimal = msgspec.field(name="as")
    bx: str
    bp: Decimal
    bs: int | Decimal
    c: tuple[str, ...]
    z: str

    @classmethod
    def of(cls, q: Quote) -> QuoteOut:
        return cls(**_quote(q))


class TradeOut(msgspec.Struct, kw_only=True):
    t: datetime
    x: str
    p: Decimal
    s: int | Decimal
    i: int
    c: tuple[str, ...]
    z: str

    @classmethod
    def of(cls, q: Quote) -> TradeOut:
        return cls(**_trade(q))


class BarOut(msgspec.Struct, kw_only=True):
    t: datetime
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 (the wire name)
    c: Decimal
    v: int | Decimal
    n: int
    vw: Decimal

    @classmethod
    def of(cls, b: Bar) -> BarOut:
        return cls(t=b.t, o=b.o, h=b.h, l=b.l, c=b.c, v=size(b.v), n=b.n, vw=vwap(b))


class SnapshotOut(msgspec.Struct, kw_only=True, rename="camel"):
    latest_trade: TradeOut | None
    latest_quote: QuoteOut | None
    minute_bar: BarOut | None
    daily_bar: BarOut | None
    prev_daily_bar: BarOut | None


# --- the stream's messages: the same fields, tagged with T and carrying the symbol S ---------


class QuoteMessage(QuoteOut, tag_field="T", tag="q", kw_only=True):
    S: str

    @classmethod
    def of(cls, q: Quote) -> QuoteMessage:
        return cls(S=q.symbol, **_quote(q))


class TradeMessage(TradeOut, tag_field="T", tag="t", kw_only=True):
    S: str

    @classmethod
    def of(cls, q: Quote) -> TradeMessage:
        return cls(S=q.symbol, **_trade(q))


class BarMessage(BarOut, tag_field="T", tag="b", kw_only=True):
    """A minute bar, sent once its minute has closed."""

    S: str

    @classmethod
    def live(cls, b: LiveBarView) -> BarMessage:
        return cls(S=b.symbol, t=b.t, o=b.o, h=b.h, l=b.l, c=b.c, v=size(b.v), n=b.n, vw=b.vw)


class UpdatedBarMessage(BarMessage, tag="u", kw_only=True):
    """A minute bar sent again: a late trade changed it after it was sent."""


def _quote(q: Quote) -> dict[str, Any]:
    return {
        "t": q.timestamp,
        "ax": EXCHANGE,
        "ap": q.ask,
        "ask_size": size(q.ask_size),
        "bx": EXCHANGE,
        "bp": q.bid,
        "bs": size(q.bid_size),
        "c": QUOTE_CONDITIONS,
        "z": TAPE,
    }


def _trade(q: Quote) -> dict[str, Any]:
    return {
        "t": q.timestamp,
        "x": EXCHANGE,
        "p": q.last,
        "s": size(q.last_size),
        "i": trade_id(q.timestamp),
        "c": TRADE_CONDITIONS,
        "z": TAPE,
    }
