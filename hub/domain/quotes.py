"""A quote: the best bid and ask, the last trade and the day's range, all Decimal on the tick."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    bid: Decimal
    ask: Decimal
    last: Decimal
    bid_size: Decimal
    ask_size: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    prev_close: Decimal
    timestamp: datetime

    @property
    def change(self) -> Decimal:
        return self.last - self.prev_close

    @property
    def change_percent(self) -> Decimal:
        if self.prev_close == 0:
            return Decimal(0)
        # "+ 0" turns a negative zero ("-0.00") into a plain zero.
        return (self.change / self.prev_close * 100).quantize(Decimal("0.01")) + 0

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2
