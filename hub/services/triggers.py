"""Resting limit and stop orders, indexed by symbol and price so that a quote finds the orders
it makes executable by bisection: the cost of a quote grows with the orders it triggers, not
with the orders that rest.

For each symbol, four sorted books:
  buy limits   executable when ask <= limit    -> the entries with limit >= ask
  sell limits  executable when bid >= limit    -> the entries with limit <= bid
  buy stops    triggered when last/ask >= stop -> the entries with stop <= max(last, ask)
  sell stops   triggered when last/bid <= stop -> the entries with stop >= min(last, bid)
A triggered stop_limit moves to the limit book once the worker records the trigger.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

from hub.domain.orders import MATCHABLE_STATUSES, Order, OrderType, Side, effective_type
from hub.domain.quotes import Quote

# How long a triggered order is not triggered again while its message is in flight.
IN_FLIGHT_S = 2.0


@dataclass
class _Books:
    buy_limits: list[tuple[Decimal, UUID]] = field(default_factory=list)
    sell_limits: list[tuple[Decimal, UUID]] = field(default_factory=list)
    buy_stops: list[tuple[Decimal, UUID]] = field(default_factory=list)
    sell_stops: list[tuple[Decimal, UUID]] = field(default_factory=list)


class TriggerIndex:
    def __init__(self) -> None:
        self._books: dict[str, _Books] = {}
        self._where: dict[UUID, tuple[str, str, tuple[Decimal, UUID]]] = {}
        self._in_flight: dict[UUID, float] = {}

    def __len__(self) -> int:
        return len(self._where)

    def update(self, orders: Iterable[Order]) -> None:
        """Add or move working orders; drop the ones that stopped working."""
        for order in orders:
            self._remove(order.id)
            if order.status in MATCHABLE_STATUSES:
                self._add(order)

    def _add(self, order: Order) -> None:
        kind = effective_type(order)
        if kind is OrderType.MARKET:
            # A triggered stop executes at any price: file it where every quote reaches it.
            buy = order.side is Side.BUY
            book, price = ("buy_stops", Decimal(0)) if buy else ("sell_stops", _INFINITY)
        elif kind is OrderType.LIMIT:
            assert order.limit_price is not None
            book = "buy_limits" if order.side is Side.BUY else "sell_limits"
            price = order.limit_price
        else:  # an untriggered stop or stop_limit
            assert order.stop_price is not None
            book = "buy_stops" if order.side is Side.BUY else "sell_stops"
            price = order.stop_price
        entry = (price, order.id)
        books = self._books.setdefault(order.symbol, _Books())
        bisect.insort(getattr(books, book), entry)
        self._where[order.id] = (order.symbol, book, entry)

    def _remove(self, order_id: UUID) -> None:
        where = self._where.pop(order_id, None)
        if where is None:
            return
        symbol, book, entry = where
        entries: list[tuple[Decimal, UUID]] = getattr(self._books[symbol], book)
        i = bisect.bisect_left(entries, entry)
        if i < len(entries) and entries[i] == entry:
            del entries[i]

    def on_quote(self, quote: Quote) -> list[UUID]:
        """The orders this quote makes executable (or triggers), not already in flight."""
        books = self._books.get(quote.symbol)
        if books is None:
            return []
        hits: list[UUID] = []
        if quote.ask > 0:
            i = bisect.bisect_left(books.buy_limits, (quote.ask,))
            hits += [oid for _, oid in books.buy_limits[i:]]
        if quote.bid > 0:
            i = bisect.bisect_right(books.sell_limits, (quote.bid, _MAX_UUID))
            hits += [oid for _, oid in books.sell_limits[:i]]
        high = max(quote.last, quote.ask)
        if high > 0:
            i = bisect.bisect_right(books.buy_stops, (high, _MAX_UUID))
            hits += [oid for _, oid in books.buy_stops[:i]]
        sides = [p for p in (quote.last, quote.bid) if p > 0]
        if sides:
            low = min(sides)
            i = bisect.bisect_left(books.sell_stops, (low,))
            hits += [oid for _, oid in books.sell_stops[i:]]
        now = time.monotonic()
        fresh = [oid for oid in hits if self._in_flight.get(oid, 0.0) <= now]
        for oid in fresh:
            self._in_flight[oid] = now + IN_FLIGHT_S
        if len(self._in_flight) > 4 * len(self._where) + 1000:
            self._in_flight = {k: v for k, v in self._in_flight.items() if v > now}
        return fresh


_MAX_UUID = UUID(int=(1 << 128) - 1)
_INFINITY = Decimal("Infinity")
