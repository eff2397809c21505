"""A simulated market: a seeded geometric Brownian motion per symbol, priced on the tick.

Prices stay Decimal: the random shock is a plain number, but the price it moves is a Decimal and
the multiplier exp((mu - sigma^2/2) dt + sigma sqrt(dt) z) is computed with Decimal arithmetic.
Time runs at real speed (dt = seconds since the symbol's last quote, in trading years), so the
moves are the size a real market of that volatility would show.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from decimal import ROUND_CEILING, Decimal

from hub.adapters.seed import SeedInstrument
from hub.domain.instruments import Category, Instrument
from hub.domain.quotes import Quote
from hub.services.ports import Clock

SECONDS_PER_TRADING_YEAR = Decimal(252 * 6.5 * 3600)
SPREAD_FRACTION = Decimal("0.0004")  # about 4 basis points, wider than a tick for most names
HALF = Decimal("0.5")


class _Walk:
    def __init__(self, seed: SeedInstrument, now: datetime, price: Decimal | None) -> None:
        self.instrument: Instrument = seed.instrument
        self.sigma = seed.volatility
        start = seed.base_price if price is None or price <= 0 else price
        self.price = seed.instrument.round_to_tick(start)
        self.prev_close = self.price
        self.open = self.high = self.low = self.price
        self.at = now


class Simulator:
    """Produces quotes for a fixed set of instruments; `next_quote` is deterministic per seed.

    Each walk starts from its instrument's base price, or from `start_prices[symbol]` when
    given: the feed passes the last stored close, so that after a restart the price continues
    where the bars left off instead of jumping back to the base price."""

    def __init__(
        self,
        instruments: Sequence[SeedInstrument],
        *,
        clock: Clock,
        seed: int = 42,
        quotes_per_second: float = 50.0,
        start_prices: Mapping[str, Decimal] | None = None,
    ) -> None:
        if not instruments:
            raise ValueError("the simulator needs at least one instrument")
        now = clock.now()
        prices = start_prices or {}
        self._walks = [_Walk(s, now, prices.get(s.instrument.symbol)) for s in instruments]
        self._clock = clock
        self._rng = random.Random(seed)
        self._interval = 1.0 / quotes_per_second
        self._next = 0

    def next_quote(self, at: datetime | None = None) -> Quote:
        """Advance the next symbol (round robin) to `at` and quote it."""
        walk = self._walks[self._next]
        self._next = (self._next + 1) % len(self._walks)
        return self._advance(walk, at or self._clock.now())

    def _advance(self, walk: _Walk, at: datetime) -> Quote:
        elapsed = max(Decimal(str((at - walk.at).total_seconds())), Decimal("0.001"))
        dt = elapsed / SECONDS_PER_TRADING_YEAR
        z = Decimal(repr(self._rng.gauss(0.0, 1.0)))
        sigma = walk.sigma
        exponent = -(sigma * sigma) * HALF * dt + sigma * dt.sqrt() * z
        instrument = walk.instrument
        walk.price = instrument.round_to_tick(walk.price * exponent.exp())
        walk.at = at
        walk.high = max(walk.high, walk.price)
        walk.low = min(walk.low, walk.price)
        half_spread = _ceil_to_tick(walk.price * SPREAD_FRACTION * HALF, instrument.tick_size)
        bid = max(walk.price - half_spread, instrument.tick_size)
        lot = instrument.lot_size
        size_unit = lot * (100 if instrument.category is not Category.CRYPTO else 10)
        return Quote(
            symbol=instrument.symbol,
            bid=bid,
            ask=walk.price + half_spread,
            last=walk.price,
            # Every move of the last price is a trade: bars sum these sizes into volume.
            last_size=lot * self._rng.randint(1, 500),
            bid_size=size_unit * self._rng.randint(1, 20),
            ask_size=size_unit * self._rng.randint(1, 20),
            open=walk.open,
            high=walk.high,
            low=walk.low,
            prev_close=walk.prev_close,
            timestamp=at,
        )

    def snapshot(self) -> list[Quote]:
        """A quote for every symbol at once (so every symbol has a price from the start)."""
        return [self.next_quote() for _ in self._walks]

    async def run(self, sink: Callable[[Quote], Awaitable[None]]) -> None:
        """Emit quotes at the configured rate until cancelled. Sleeps to the schedule, not
        after each quote, so a slow sink does not slow the clock down."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            await sink(self.next_quote())
            due += self._interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:
                due = loop.time()  # far behind (the machine stalled): do not burst to catch up


def _ceil_to_tick(amount: Decimal, tick: Decimal) -> Decimal:
    ticks = (amount / tick).to_integral_value(rounding=ROUND_CEILING)
    return max(ticks, Decimal(1)) * tick
