"""A quote: the best bid and ask, the last trade (price and size) and the day's range, all
Decimal on the tick."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

from hub.domain.orders.model import Side


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    bid: Decimal
    ask: Decimal
    last: Decimal
    # The size of the last trade (at `last`). Zero where the source reports none, and on quotes
    # stored before trade sizes existed (so they still decode).
    last_size: Decimal = Decimal(0)
    bid_size: Decimal
    ask_size: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    prev_close: Decimal
    timestamp: datetime

    @property
    def day_change(self) -> Decimal:
        return self.last - self.prev_close

    @property
    def day_change_percent(self) -> Decimal:
        if self.prev_close == 0:
            return Decimal(0)
        # "+ 0" turns a negative zero ("-0.00") into a plain zero.
        return (self.day_change / self.prev_close * 100).quantize(Decimal("0.01")) + 0

    def touch(self, side: Side) -> Decimal:
        """The price an order of this side trades at now: the ask for a buy, the bid for a
        sell (zero or less when that side of the book is empty)."""
        return self.ask if side is Side.BUY else self.bid

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2
