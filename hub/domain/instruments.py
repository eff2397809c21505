"""Tradable instruments, and the tick and lot rules every price and quantity obeys."""

from __future__ import annotations

import enum
from decimal import Decimal

import msgspec


class Category(enum.StrEnum):
    STOCK = "stock"
    ETF = "etf"
    CRYPTO = "crypto"


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    name: str
    category: Category
    currency: str
    tick_size: Decimal
    lot_size: Decimal
    tradable: bool = True

    @property
    def trades_around_the_clock(self) -> bool:
        return self.category is Category.CRYPTO

    def on_tick(self, price: Decimal) -> bool:
        return price > 0 and price % self.tick_size == 0

    def round_to_tick(self, price: Decimal) -> Decimal:
        """Nearest price on the tick grid, never below one tick."""
        ticks = (price / self.tick_size).to_integral_value()
        return max(ticks, Decimal(1)) * self.tick_size

    def whole_lots(self, qty: Decimal) -> bool:
        return qty > 0 and qty % self.lot_size == 0
