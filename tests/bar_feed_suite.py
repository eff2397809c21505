"""The feed's bars over a bar store (memory and PostgreSQL): a feed stopped mid-minute and
started again on the same store (FeedService + BarRecorder, their real timer loop) stores the
bars of an unbroken run, exactly; the history is backfilled once however often the feed starts."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hub.adapters.history import backfill
from hub.adapters.memory.market import MemoryQuotes
from hub.adapters.seed import seed_instruments
from hub.domain.bar_builder import BarBuilder
from hub.domain.bars import Bar, Timeframe, Trade
from hub.domain.quotes import Quote
from hub.services.bar_ports import BarStore
from hub.services.bars import BarRecorder, History
from hub.services.feed import FeedService, QuoteListener
from tests.bars_suite import T0

SYMBOLS = ("AAPL", "BTC-USD")
TICK = {"AAPL": Decimal("0.01"), "BTC-USD": Decimal("0.01")}
LOT = {"AAPL": Decimal(1), "BTC-USD": Decimal("0.0001")}


class ManualClock:
    """The feed's time: the time of the latest quote sent."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


class Recorded:
    """A Publisher that keeps what it was given."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, Any]] = []

    async def publish(self, channel: str, type_: str, data: Any) -> object:
        self.items.append((channel, type_, data))
        return len(self.items)

    async def publish_many(self, items: Sequence[tuple[str, str, Any]]) -> None:
        self.items.extend(items)


class Scripted:
    """A quote source that sends the quotes it is given as fast as the sink takes them, moving
    the clock to each quote's time, and yielding to the loop between quotes (so the
    recorder's timer runs among them)."""

    def __init__(self, quotes: Sequence[Quote], clock: ManualClock) -> None:
        self._quotes = quotes
        self._clock = clock
        self.done = asyncio.Event()

    def snapshot(self) -> list[Quote]:
        return []

    async def run(self, sink: QuoteListener) -> None:
        for q in self._quotes:
            self._clock.at = q.timestamp
            await sink(q)
            await asyncio.sleep(0)
        self.done.set()
        await asyncio.Event().wait()  # a live source never ends


def quotes(count: int, *, seed: int = 5, start: datetime = T0) -> list[Quote]:
    """Quotes of SYMBOLS in turn, 0.1 to 1.5 s apart, on the tick, some without a trade."""
    rng = random.Random(seed)
    prices = {"AAPL": Decimal("189.50"), "BTC-USD": Decimal("67250.00")}
    at = start + timedelta(seconds=3)
    out: list[Quote] = []
    for i in range(count):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        at += timedelta(milliseconds=rng.randint(100, 1500))
        prices[symbol] += TICK[symbol] * rng.randint(-5, 5)
        size = LOT[symbol] * rng.randint(0, 500)  # 0: a price without a trade
        p = prices[symbol]
        out.append(
            Quote(
                symbol=symbol,
                bid=p - TICK[symbol],
                ask=p + TICK[symbol],
                last=p,
                last_size=size,
                bid_size=Decimal(100),
                ask_size=Decimal(100),
                open=p,
                high=p,
                low=p,
                prev_close=p,
                timestamp=at,
            )
        )
    return out


async def run_feed(
    store: BarStore, sent: Sequence[Quote], *, history: History | None = None
) -> tuple[BarRecorder, Recorded]:
    """Start a feed with bars on `store` (as bootstrap does), send `sent`, stop it gracefully."""
    clock = ManualClock(sent[0].timestamp)
    recorder = BarRecorder(store, clock, SYMBOLS, history=history, flush_interval_s=0.001)
    await recorder.open()
    source = Scripted(sent, clock)
    publisher = Recorded()
    feed = FeedService(source, MemoryQuotes(), publisher, bars=recorder)
    tasks = [asyncio.create_task(recorder.run()), asyncio.create_task(feed.run())]
    try:
        async with asyncio.timeout(30):
            await source.done.wait()
            while not recorder.live:  # noqa: ASYNC110 - the history loads in threads
                await asyncio.sleep(0.01)
    finally:
        for task in reversed(tasks):  # as the exit stack: the feed first, then the timer
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await recorder.aclose()
    return recorder, publisher


def unbroken(sent: Sequence[Quote]) -> dict[tuple[str, Timeframe], list[Bar]]:
    """The bars of every symbol and timeframe, built in one go from the same trades."""
    builders = {s: BarBuilder(s) for s in SYMBOLS}
    bars: dict[tuple[str, Timeframe], list[Bar]] = {}
    for q in sent:
        update = builders[q.symbol].apply(Trade(q.timestamp, q.last, q.last_size))
        for bar in update.closed:
            bars.setdefault((bar.symbol, bar.timeframe), []).append(bar)
    for builder in builders.values():
        for bar in builder.forming():
            bars.setdefault((bar.symbol, bar.timeframe), []).append(bar)
    return bars


async def stored(store: BarStore) -> dict[tuple[str, Timeframe], list[Bar]]:
    found: dict[tuple[str, Timeframe], list[Bar]] = {}
    for symbol in SYMBOLS:
        for timeframe in Timeframe:
            bars = await store.query(symbol, timeframe, limit=10_000)
            if bars:
                found[(symbol, timeframe)] = bars
    return found


def small_history(calls: list[list[str]]) -> History:
    instruments = [s for s in seed_instruments() if s.instrument.symbol in SYMBOLS]

    def history(symbols: Sequence[str], end: datetime) -> list[Bar]:
        calls.append(list(symbols))
        chosen = [s for s in instruments if s.instrument.symbol in symbols]
        return backfill(chosen, seed=3, end=end, minute_days=1, daily_days=3)

    return history


class BarFeedContract:
    async def test_a_restart_mid_minute_neither_loses_nor_doubles_a_bar(
        self, store: BarStore
    ) -> None:
        sent = quotes(400)
        cut = 151
        assert sent[cut].timestamp.second not in (0, 59)  # mid-minute
        await run_feed(store, sent[:cut])
        # Started again on the same store; the source replays the last quote it sent.
        recorder, publisher = await run_feed(store, sent[cut - 1 :])
        expected = unbroken(sent)
        assert await stored(store) == expected
        for symbol in SYMBOLS:
            minutes = expected[(symbol, Timeframe.MINUTE)]
            traded = [q.last_size for q in sent if q.symbol == symbol]
            assert sum((b.v for b in minutes), Decimal(0)) == sum(traded, Decimal(0))
            assert sum(b.n for b in minutes) == sum(1 for size in traded if size)
            assert len(minutes) >= 3
        assert recorder.counts.late == 1  # the replayed quote, skipped
        # Each quote's forming minute went out with it, as the channel's payload.
        bars = [(c, data) for c, kind, data in publisher.items if kind == "bar"]
        assert len(bars) == len(sent) - cut
        channel, last = bars[-1]
        final = expected[(sent[-1].symbol, Timeframe.MINUTE)][-1]
        assert channel == f"bars:{sent[-1].symbol}"
        assert (last.t, last.c, last.v, last.n) == (final.t, final.c, final.v, final.n)

    async def test_the_history_is_backfilled_once(self, store: BarStore) -> None:
        calls: list[list[str]] = []
        sent = quotes(60, start=T0 + timedelta(hours=2))
        first, _ = await run_feed(store, sent[:30], history=small_history(calls))
        assert sorted(s for call in calls for s in call) == sorted(SYMBOLS)
        assert first.counts.backfilled > 2 * 390
        everything = await stored(store)
        # The trades that came while it loaded were kept and built on top of it.
        minutes = everything[("AAPL", Timeframe.MINUTE)]
        assert minutes[-1].t >= sent[0].timestamp.replace(second=0, microsecond=0)
        traded = sum((q.last_size for q in sent[:30] if q.symbol == "AAPL"), Decimal(0))
        live = [b for b in minutes if b.t >= Timeframe.MINUTE.bucket(sent[0].timestamp)]
        assert sum((b.v for b in live), Decimal(0)) == traded

        # A second start finds the bars, backfills nothing, and resumes from the last close.
        reopened = BarRecorder(store, ManualClock(sent[30].timestamp), SYMBOLS)
        closes = await reopened.open()
        assert reopened.live
        assert closes == {s: everything[(s, Timeframe.MINUTE)][-1].c for s in SYMBOLS}
        second, _ = await run_feed(store, sent[30:], history=small_history(calls))
        assert len(calls) == len(SYMBOLS)  # not called again
        assert second.counts.backfilled == 0
        after = await stored(store)
        assert after[("AAPL", Timeframe.DAY)][:-1] == everything[("AAPL", Timeframe.DAY)][:-1]
        assert len(after[("AAPL", Timeframe.DAY)]) == len(everything[("AAPL", Timeframe.DAY)])
