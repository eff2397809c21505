"""The cash account of a user: cash, the part reserved by open buy orders, and buying power."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

import msgspec


class Account(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    user_id: UUID
    cash: Decimal
    reserved_cash: Decimal
    currency: str
    created_at: datetime

    @property
    def buying_power(self) -> Decimal:
        """Cash not already promised to open buy orders."""
        return self.cash - self.reserved_cash
