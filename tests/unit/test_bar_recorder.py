"""The feed's bar recorder on the memory store: a failing store degrades (quotes go on, errors
counted, nothing lost once it writes again), a store unreadable at start is retried, old bars
are pruned; the recent-bars cache: hits, expiry, single flight, invalidation, its bound."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from hub.adapters.memory.bars import MemoryBars
from hub.domain.bars import Bar, Retention, Timeframe
from hub.services.bar_cache import RecentBars
from hub.services.bars import BarRecorder
from tests.bar_feed_suite import SYMBOLS, ManualClock, quotes, run_feed, stored, unbroken
from tests.bars_suite import T0, make


class Flaky(MemoryBars):
    """A memory store whose reads or writes fail while told to."""

    def __init__(self) -> None:
        super().__init__()
        self.failing_writes = 0
        self.failing_reads = 0

    async def upsert(self, bars: Iterable[Bar]) -> None:
        if self.failing_writes:
            self.failing_writes -= 1
            raise ConnectionError("the bar store is down")
        await super().upsert(bars)

    async def latest(self, symbols: Iterable[str]) -> list[Bar]:
        if self.failing_reads:
            self.failing_reads -= 1
            raise ConnectionError("the bar store is down")
        return await super().latest(symbols)


async def test_a_failing_store_never_stops_quotes_and_loses_nothing() -> None:
    store = Flaky()
    store.failing_writes = 3
    sent = quotes(120)
    recorder, publisher = await run_feed(store, sent)
    assert sum(1 for _, kind, _ in publisher.items if kind == "quote") == len(sent)
    assert sum(1 for _, kind, _ in publisher.items if kind == "bar") == len(sent)
    for _ in range(3):  # however many writes failed while it ran, the next ones catch up
        if recorder.stats()["unwritten"]:
            await recorder.flush()
    assert recorder.counts.store_errors == 3
    assert recorder.stats()["unwritten"] == 0
    assert await stored(store) == unbroken(sent)


async def test_a_store_unreadable_at_start_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hub.services.bars.RETRY_S", (0.01,))
    store = Flaky()
    await store.upsert([make(0, symbol="AAPL")])
    store.failing_reads = 2
    recorder = BarRecorder(store, ManualClock(T0), SYMBOLS)
    assert await recorder.open() == {}  # the walk starts from base prices
    assert not recorder.live
    task = asyncio.create_task(recorder.run())
    try:
        async with asyncio.timeout(5):
            while not recorder.live:  # noqa: ASYNC110 - retried on a timer
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert recorder.counts.store_errors == 2


async def test_old_bars_are_pruned_by_the_retention_policy() -> None:
    store = MemoryBars()
    await store.upsert([make(m) for m in range(5)])
    await store.upsert([make(0, timeframe=Timeframe.DAY)])
    now = T0 + timedelta(days=30, minutes=3)  # minutes kept for 30 days
    recorder = BarRecorder(store, ManualClock(now), SYMBOLS, retention=Retention())
    await recorder.open()
    await recorder.prune()
    assert recorder.counts.pruned == 3
    assert [b.t for b in await store.query("AAPL", Timeframe.MINUTE, limit=10)] == [
        make(3).t,
        make(4).t,
    ]
    assert len(await store.query("AAPL", Timeframe.DAY, limit=10)) == 1


# --- the recent-bars cache ------------------------------------------------------------------------


class Loads:
    def __init__(self, store: MemoryBars) -> None:
        self.store = store
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.fail = False
        self.since: list[datetime | None] = []  # what each read started from

    async def __call__(
        self, symbol: str, timeframe: Timeframe, limit: int, since: datetime | None
    ) -> list[Bar]:
        self.calls += 1
        self.since.append(since)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("down")
        return await self.store.query(symbol, timeframe, start=since, limit=limit)


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def filled(count: int = 5) -> MemoryBars:
    store = MemoryBars()
    await store.upsert([make(m) for m in range(count)])
    return store


async def test_a_hit_is_the_same_series_until_it_expires() -> None:
    loads, clock = Loads(await filled()), Ticks()
    cache = RecentBars(loads, ttl_s=1.0, clock=clock)
    first = await cache.get("AAPL", Timeframe.MINUTE, 3)
    assert [b.t for b in first.bars] == [make(m).t for m in (2, 3, 4)]
    clock.now += 0.9
    assert await cache.get("AAPL", Timeframe.MINUTE, 3) is first
    await loads.store.upsert([make(5)])  # the feed writes a new minute
    assert await cache.get("AAPL", Timeframe.MINUTE, 3) is first  # held: at most ttl_s stale
    clock.now += 0.2
    again = await cache.get("AAPL", Timeframe.MINUTE, 3)
    assert again is not first and again.bars[-1] == make(5)
    assert (cache.counts.hits, cache.counts.misses, loads.calls) == (2, 2, 2)
    other = await cache.get("AAPL", Timeframe.MINUTE, 2)  # each limit is its own answer
    assert len(other.bars) == 2 and loads.calls == 3


async def test_concurrent_misses_share_one_read() -> None:
    loads = Loads(await filled())
    loads.gate = asyncio.Event()
    cache = RecentBars(loads, ttl_s=1.0)
    waiting = [asyncio.create_task(cache.get("AAPL", Timeframe.MINUTE, 5)) for _ in range(20)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # a client that goes away does not cancel the others' read
    loads.gate.set()
    results = await asyncio.gather(*waiting[1:])
    assert loads.calls == 1
    assert all(r is results[0] for r in results)
    assert (cache.counts.misses, cache.counts.shared) == (1, 19)


async def test_a_failed_read_is_not_held() -> None:
    loads = Loads(await filled())
    loads.fail = True
    cache = RecentBars(loads, ttl_s=1.0)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await cache.get("AAPL", Timeframe.MINUTE, 5)
    loads.fail = False
    assert len((await cache.get("AAPL", Timeframe.MINUTE, 5)).bars) == 5
    assert loads.calls == 3


async def test_forget_and_the_bound_on_bars_held() -> None:
    loads = Loads(await filled(10))
    cache = RecentBars(loads, ttl_s=60.0, max_bars=12)
    first = await cache.get("AAPL", Timeframe.MINUTE, 10)
    assert await cache.get("AAPL", Timeframe.MINUTE, 10) is first
    cache.forget(["AAPL"])  # an admin's invalidation
    second = await cache.get("AAPL", Timeframe.MINUTE, 10)
    assert second is not first
    await cache.get("AAPL", Timeframe.MINUTE, 5)  # 15 bars > 12: the oldest entry goes
    assert await cache.get("AAPL", Timeframe.MINUTE, 10) is not second
    assert loads.calls == 4


async def test_an_expired_answer_is_refreshed_from_its_last_two_bars() -> None:
    loads, clock = Loads(await filled(10)), Ticks()
    cache = RecentBars(loads, ttl_s=1.0, clock=clock)
    first = await cache.get("AAPL", Timeframe.MINUTE, 5)
    assert loads.since == [None]  # the first read: the whole answer
    # The feed rewrites the forming bar (minute 9) and starts minute 10.
    await loads.store.upsert([make(9, "190.00", n=2), make(10, "190.10")])
    clock.now += 1.1
    second = await cache.get("AAPL", Timeframe.MINUTE, 5)
    assert loads.since[-1] == make(8).t  # only minutes 8.. were read again
    assert cache.counts.refreshes == 1
    assert second.bars == tuple(await loads.store.query("AAPL", Timeframe.MINUTE, limit=5))
    assert second.bars[-2].c == Decimal("190.00") and first.bars[-1].c != second.bars[-2].c


async def test_a_refresh_far_behind_reads_the_whole_answer() -> None:
    loads, clock = Loads(await filled(10)), Ticks()
    cache = RecentBars(loads, ttl_s=1.0, clock=clock)
    await cache.get("AAPL", Timeframe.MINUTE, 3)
    await loads.store.upsert([make(m) for m in range(10, 20)])  # more than one answer holds
    clock.now += 1.1
    latest = await cache.get("AAPL", Timeframe.MINUTE, 3)
    assert loads.since[1] == make(8).t and loads.since[2] is None  # tried the tail, then all
    assert [b.t for b in latest.bars] == [make(m).t for m in (17, 18, 19)]
    assert cache.counts.refreshes == 0
