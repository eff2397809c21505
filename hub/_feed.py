"""Wiring the market feed: the simulator, the bar recorder and their background tasks. Part of
the composition root (bootstrap): it picks adapters and holds no logic of its own."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import datetime

import structlog

from hub._background import background
from hub._persistence import Ports, ReadinessCheck
from hub.adapters.clock import SystemClock
from hub.adapters.history import backfill
from hub.adapters.seed import SeedInstrument, seed_instruments
from hub.adapters.simulator import Simulator
from hub.config import Settings
from hub.domain.bars import Bar
from hub.services.bars import BarRecorder, History
from hub.services.feed import FeedService
from hub.services.ports import Publisher

log = structlog.get_logger("hub.bootstrap")


async def start_feed(
    settings: Settings,
    ports: Ports,
    publisher: Publisher,
    stack: AsyncExitStack,
    readiness: dict[str, ReadinessCheck],
) -> FeedService:
    """Resume the bars from the store, start the simulated walk from their last closes, and
    run the feed and the recorder until the stack closes (the recorder writes last)."""
    instruments = seed_instruments()
    clock = SystemClock()
    recorder = BarRecorder(
        ports.bars,
        clock,
        [s.instrument.symbol for s in instruments],
        history=history_of(settings, instruments),
    )
    closes = await recorder.open()
    simulator = Simulator(
        instruments,
        clock=clock,
        seed=settings.feed_seed,
        quotes_per_second=settings.feed_quotes_per_second,
        start_prices=closes,
    )
    feed = FeedService(simulator, ports.quotes, publisher, bars=recorder)
    # Closed in reverse: the feed stops, then the recorder's timer, then its last write.
    stack.push_async_callback(recorder.aclose)
    await feed.prime()
    background(stack, recorder.run(), "bar-recorder")
    background(stack, feed.run(), "market-feed")

    async def history_loaded() -> None:
        if not recorder.live:
            raise ConnectionError("the bar history is still loading")

    # Not ready until the history is in: a chart read before would show a few bars only.
    readiness["bars"] = history_loaded
    log.info(
        "simulated market feed running",
        quotes_per_second=settings.feed_quotes_per_second,
        resumed=len(closes),
    )
    return feed


def history_of(settings: Settings, instruments: Sequence[SeedInstrument]) -> History | None:
    """The backfill the settings ask for, as the recorder calls it; None for none."""
    minute_days, daily_days = settings.backfill_minute_days, settings.backfill_daily_days
    if not minute_days and not daily_days:
        return None
    by_symbol = {s.instrument.symbol: s for s in instruments}
    # The live pace per symbol, so that volume does not jump where history ends.
    per_minute = max(1, settings.feed_quotes_per_second * 60 // len(instruments))

    def history(symbols: Sequence[str], end: datetime) -> list[Bar]:
        return backfill(
            [by_symbol[s] for s in symbols if s in by_symbol],
            seed=settings.feed_seed,
            end=end,
            minute_days=minute_days,
            daily_days=daily_days,
            trades_per_minute=per_minute,
        )

    return history
