"""Contract of the bar stores (memory and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from msgspec.structs import replace

from hub.adapters.history import backfill
from hub.adapters.seed import seed_instruments
from hub.domain.bar_builder import BarBuilder
from hub.domain.bars import Bar, Timeframe, Trade
from hub.services.bar_ports import BarStore

T0 = datetime(2026, 3, 6, 14, 30, tzinfo=UTC)  # a Friday, 09:30 in New York
MINUTE = timedelta(minutes=1)


def make(
    minute: int,
    price: str = "189.50",
    *,
    symbol: str = "AAPL",
    timeframe: Timeframe = Timeframe.MINUTE,
    n: int = 1,
) -> Bar:
    """A bar of one trade per n, `minute` minutes after T0 (bucketed in `timeframe`)."""
    p = Decimal(price)
    t = T0 + minute * MINUTE
    return Bar(
        symbol=symbol,
        timeframe=timeframe,
        t=timeframe.bucket(t),
        o=p,
        h=p + Decimal("0.10"),
        l=p - Decimal("0.10"),
        c=p,
        v=Decimal(100 * n),
        n=n,
        notional=p * 100 * n,
        as_of=t + timedelta(seconds=n),
    )


def grown(bar: Bar, price: str = "189.75") -> Bar:
    """The same bar one trade further along."""
    p = Decimal(price)
    return replace(
        bar,
        h=max(bar.h, p),
        l=min(bar.l, p),
        c=p,
        v=bar.v + 100,
        n=bar.n + 1,
        notional=bar.notional + p * 100,
        as_of=bar.as_of + timedelta(seconds=1),
    )


class BarStoreContract:
    async def test_round_trip_exactly(self, store: BarStore) -> None:
        bar = make(0, "67250.01", symbol="BTC-USD")
        crypto = replace(bar, v=Decimal("0.0123"), notional=Decimal("827.175123"))
        await store.upsert([crypto])
        assert await store.query("BTC-USD", Timeframe.MINUTE, limit=10) == [crypto]
        (back,) = await store.query("BTC-USD", Timeframe.MINUTE, limit=10)
        assert back.vw == crypto.vw
        assert back.t.utcoffset() == timedelta(0)

    async def test_upsert_keeps_the_snapshot_further_along(self, store: BarStore) -> None:
        first = make(0)
        second = grown(first)
        await store.upsert([first])
        await store.upsert([second])
        await store.upsert([first])  # late: an older snapshot changes nothing
        await store.upsert([second])  # again: idempotent
        assert await store.query("AAPL", Timeframe.MINUTE, limit=10) == [second]
        third = grown(second)
        await store.upsert([third, second])  # one batch, one key twice: the further along wins
        assert await store.query("AAPL", Timeframe.MINUTE, limit=10) == [third]

    async def test_ranges_are_inclusive_and_ascending(self, store: BarStore) -> None:
        bars = [make(m, f"{189 + m}.00") for m in range(10)]
        await store.upsert(reversed(bars))
        await store.upsert([make(m, timeframe=Timeframe.FIVE_MINUTES) for m in (0, 5)])
        await store.upsert([make(m, symbol="MSFT") for m in range(3)])

        def query(**kw: Any) -> Awaitable[list[Bar]]:
            return store.query("AAPL", Timeframe.MINUTE, **kw)

        assert await query(limit=100) == bars
        assert await query(start=bars[2].t, end=bars[5].t, limit=100) == bars[2:6]
        assert await query(start=bars[2].t, limit=3) == bars[2:5]  # the first `limit` from start
        assert await query(limit=3) == bars[7:]  # no start: the most recent `limit`
        assert await query(end=bars[5].t, limit=3) == bars[3:6]
        assert await query(start=bars[3].t + timedelta(seconds=1), limit=1) == [bars[4]]
        assert await query(start=bars[9].t + MINUTE, limit=10) == []
        assert await query(start=bars[5].t, end=bars[4].t, limit=10) == []
        assert await query(limit=0) == []
        assert await store.query("NOPE", Timeframe.MINUTE, limit=10) == []
        assert len(await store.query("AAPL", Timeframe.FIVE_MINUTES, limit=10)) == 2
        assert len(await store.query("MSFT", Timeframe.MINUTE, limit=10)) == 3

    async def test_insert_missing_never_overwrites(self, store: BarStore) -> None:
        live = grown(make(1))
        await store.upsert([live])
        backfilled = [make(m, "100.00") for m in range(3)]
        assert await store.insert_missing(backfilled) == 2
        assert await store.insert_missing(backfilled) == 0
        assert await store.insert_missing([make(5), make(5, "1.00")]) == 1  # the first counts
        stored = await store.query("AAPL", Timeframe.MINUTE, limit=10)
        assert stored == [backfilled[0], live, backfilled[2], make(5)]
        assert await store.insert_missing([]) == 0

    async def test_latest_is_the_newest_bar_of_each_timeframe(self, store: BarStore) -> None:
        await store.upsert([make(m) for m in range(3)])
        await store.upsert([make(m, timeframe=Timeframe.HOUR) for m in (0, 60, 120)])
        await store.upsert([make(0, symbol="MSFT", timeframe=Timeframe.DAY)])
        await store.upsert([make(9, symbol="GOOGL")])
        found = await store.latest(["AAPL", "MSFT", "NOPE"])
        assert len(found) == 3
        assert set(found) == {
            make(2),
            make(120, timeframe=Timeframe.HOUR),
            make(0, symbol="MSFT", timeframe=Timeframe.DAY),
        }
        assert await store.latest([]) == []

    async def test_prune_by_timeframe(self, store: BarStore) -> None:
        await store.upsert([make(m) for m in range(5)])
        await store.upsert([make(m, symbol="MSFT") for m in range(5)])
        await store.upsert([make(0, timeframe=Timeframe.DAY)])
        cutoff = T0 + 3 * MINUTE
        assert await store.prune({Timeframe.MINUTE: cutoff, Timeframe.HOUR: cutoff}) == 6
        assert await store.query("AAPL", Timeframe.MINUTE, limit=10) == [make(3), make(4)]
        assert len(await store.query("AAPL", Timeframe.DAY, limit=10)) == 1
        assert await store.prune({Timeframe.MINUTE: cutoff}) == 0
        assert await store.prune({}) == 0

    async def test_a_feed_restarted_mid_minute_continues_the_stored_bar(
        self, store: BarStore
    ) -> None:
        trades = [
            Trade(T0 + timedelta(seconds=s), Decimal(p), Decimal(q))
            for s, p, q in [
                (5, "189.50", "100"),
                (20, "189.90", "200"),
                (40, "189.10", "0"),
                (50, "189.30", "300"),
                (65, "189.40", "100"),
                (70, "189.20", "100"),
            ]
        ]

        async def run(builder: BarBuilder, part: list[Trade]) -> None:
            for t in part:
                update = builder.apply(t)
                await store.upsert([*update.closed, *update.forming])

        await run(BarBuilder("AAPL"), trades[:3])
        restarted = BarBuilder("AAPL")
        restarted.resume(await store.latest(["AAPL"]))
        await run(restarted, trades[2:])  # the source replays the last trade it sent

        unbroken = BarBuilder("AAPL", [Timeframe.MINUTE, Timeframe.DAY])
        expected: list[Bar] = []
        for t in trades:
            expected.extend(unbroken.apply(t).closed)
        expected.extend(unbroken.forming())
        minutes = await store.query("AAPL", Timeframe.MINUTE, limit=10)
        days = await store.query("AAPL", Timeframe.DAY, limit=10)
        assert sorted([*minutes, *days], key=lambda b: (b.timeframe, b.t)) == sorted(
            expected, key=lambda b: (b.timeframe, b.t)
        )
        (first, second) = minutes
        assert (first.o, first.h, first.l, first.c, first.v, first.n) == (
            Decimal("189.50"),
            Decimal("189.90"),
            Decimal("189.10"),
            Decimal("189.30"),
            Decimal(600),
            3,
        )
        assert (second.v, second.n) == (Decimal(200), 2)

    async def test_a_backfill_inserted_twice_is_stored_once(self, store: BarStore) -> None:
        instruments = [s for s in seed_instruments() if s.instrument.symbol in ("AAPL", "ETH-USD")]
        end = T0 + 90 * MINUTE
        bars = backfill(instruments, seed=7, end=end, minute_days=1, daily_days=5)
        assert await store.insert_missing(bars) == len(bars)
        assert await store.insert_missing(bars) == 0
        minutes = [b for b in bars if b.symbol == "ETH-USD" and b.timeframe is Timeframe.MINUTE]
        assert len(minutes) == 390 + 90
        assert await store.query("ETH-USD", Timeframe.MINUTE, limit=1000) == minutes
        # A longer history later fills in around what is stored, never over it.
        assert await store.insert_missing(backfill(instruments, seed=7, end=end)) > 0
        assert await store.query("ETH-USD", Timeframe.MINUTE, limit=len(minutes)) == minutes
        assert len(await store.query("ETH-USD", Timeframe.DAY, limit=1000)) == 253
