"""The backfill: deterministic, on the calendar, on the tick, ending at the simulator's start."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hub.adapters.history import Session, backfill, sessions
from hub.adapters.memory.bars import MemoryBars
from hub.adapters.seed import seed_instruments
from hub.domain.bars import NEW_YORK, Bar, Timeframe, rollup

END = datetime(2026, 3, 11, 15, 0, 30, tzinfo=UTC)  # a Wednesday, 11:00:30 in New York (EDT)
SEEDS = seed_instruments()
BY_SYMBOL = {s.instrument.symbol: s for s in SEEDS}
Series = dict[tuple[str, Timeframe], list[Bar]]


@pytest.fixture(scope="module")
def timed() -> tuple[list[Bar], float]:
    started = time.perf_counter()
    bars = backfill(SEEDS, seed=42, end=END)
    return bars, time.perf_counter() - started


@pytest.fixture(scope="module")
def series(timed: tuple[list[Bar], float]) -> Series:
    out: Series = defaultdict(list)
    for bar in timed[0]:
        out[bar.symbol, bar.timeframe].append(bar)
    return out


def test_the_whole_backfill_takes_seconds(timed: tuple[list[Bar], float]) -> None:
    bars, seconds = timed
    assert len(bars) == 97_716  # 34 symbols x (2,040 minutes + 408 + 136 + 37 + 253 days)
    assert seconds < 30, f"the backfill took {seconds:.1f} s"  # about 2.5 s on the CI box


def test_same_seed_and_end_same_bars_per_symbol(series: Series) -> None:
    aapl = [s for s in SEEDS if s.instrument.symbol == "AAPL"]
    again = backfill(aapl, seed=42, end=END, minute_days=5, daily_days=252)
    for timeframe in Timeframe:
        assert [b for b in again if b.timeframe is timeframe] == series["AAPL", timeframe]
    other = backfill(aapl, seed=43, end=END, minute_days=1, daily_days=1)
    assert [b for b in other if b.timeframe is Timeframe.MINUTE] != series[
        "AAPL", Timeframe.MINUTE
    ][-len(other) :]


def test_history_ends_where_the_simulator_starts(series: Series) -> None:
    for symbol, seed in BY_SYMBOL.items():
        last = series[symbol, Timeframe.MINUTE][-1]
        assert last.c == seed.instrument.round_to_tick(seed.base_price)
        assert last.t == datetime(2026, 3, 11, 14, 59, tzinfo=UTC)  # the last complete minute
        assert series[symbol, Timeframe.DAY][-1].c == last.c


def test_sessions_minutes_and_days_are_on_the_calendar(series: Series) -> None:
    for symbol in BY_SYMBOL:
        minutes = series[symbol, Timeframe.MINUTE]
        assert len(minutes) == 5 * 390 + 90  # five sessions and 09:30-11:00 today
        for bar in minutes:
            local = bar.t.astimezone(NEW_YORK)
            assert local.weekday() < 5
            assert "09:30" <= local.strftime("%H:%M") < "16:00"
        days = series[symbol, Timeframe.DAY]
        assert len(days) == 253  # 252 complete sessions and today's
        assert all(d.t.astimezone(NEW_YORK).weekday() < 5 for d in days)
        assert [d.t for d in days] == sorted({d.t for d in days})
        assert days[0].t == datetime(2025, 3, 24, 4, 0, tzinfo=UTC)  # 252 weekdays back


def test_bars_are_well_formed_on_the_tick(series: Series) -> None:
    for (symbol, _), bars in series.items():
        instrument = BY_SYMBOL[symbol].instrument
        for bar in bars:
            for price in (bar.o, bar.h, bar.l, bar.c):
                assert instrument.on_tick(price), (symbol, price)
            assert bar.l <= min(bar.o, bar.c) <= max(bar.o, bar.c) <= bar.h
            assert bar.v > 0
            assert bar.v % instrument.lot_size == 0
            assert bar.l <= bar.vw <= bar.h
            assert bar.t <= bar.as_of < bar.end


def test_long_timeframes_are_the_rollup_of_the_minutes(series: Series) -> None:
    minutes = series["ETH-USD", Timeframe.MINUTE]
    for timeframe in (Timeframe.FIVE_MINUTES, Timeframe.FIFTEEN_MINUTES, Timeframe.HOUR):
        assert series["ETH-USD", timeframe] == rollup(minutes, timeframe)
    days = series["ETH-USD", Timeframe.DAY]
    assert days[-6:] == rollup(minutes, Timeframe.DAY)
    # A day made without minutes looks like one made from them: the same trades per day (the
    # live simulator's pace), and a volume of the same size.
    assert {d.n for d in days[:-6]} == {d.n for d in days[-6:-1]} == {390 * 88}
    generated = sum((d.v for d in days[:-6]), Decimal(0)) / len(days[:-6])
    rolled = sum((d.v for d in days[-6:-1]), Decimal(0)) / 5
    assert Decimal("0.8") < generated / rolled < Decimal("1.25")


def test_daily_moves_have_the_instruments_volatility(series: Series) -> None:
    # Close-to-close log returns of a year of days: their spread is sigma / sqrt(252), within
    # sampling error (about 5% for 252 days; 20% leaves room for the tick and the seed).
    for symbol in ("AAPL", "TSLA", "BTC-USD"):
        closes = [d.c for d in series[symbol, Timeframe.DAY]]
        returns = [(b / a).ln() for a, b in itertools.pairwise(closes)]
        mean = sum(returns, Decimal(0)) / len(returns)
        spread = (sum(((r - mean) ** 2 for r in returns), Decimal(0)) / (len(returns) - 1)).sqrt()
        expected = BY_SYMBOL[symbol].volatility / Decimal(252).sqrt()
        assert Decimal("0.8") < spread / expected < Decimal("1.2"), symbol


def test_the_calendar_around_weekends_and_opening_times() -> None:
    saturday = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    found = sessions(saturday, minute_days=2, daily_days=3)
    assert [s.open.astimezone(NEW_YORK).day for s in found] == [4, 5, 6]
    assert [s.detailed for s in found] == [False, True, True]
    assert {s.minutes for s in found} == {390}
    monday_early = datetime(2026, 3, 9, 13, 30, 59, tzinfo=UTC)  # 09:30:59 EDT: no whole minute
    assert sessions(monday_early, minute_days=1, daily_days=1) == [
        Session(datetime(2026, 3, 6, 14, 30, tzinfo=UTC), 390, True)
    ]
    monday = monday_early + timedelta(seconds=1)
    assert sessions(monday, minute_days=1, daily_days=1)[-1] == Session(
        datetime(2026, 3, 9, 13, 30, tzinfo=UTC), 1, True
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        sessions(datetime(2026, 3, 9, 13, 30), minute_days=1, daily_days=1)


async def test_inserting_the_backfill_twice_stores_it_once(timed: tuple[list[Bar], float]) -> None:
    bars = timed[0]
    store = MemoryBars()
    assert await store.insert_missing(bars) == len(bars)
    assert await store.insert_missing(bars) == 0
    assert await store.query("AAPL", Timeframe.DAY, limit=1000) == [
        b for b in bars if b.symbol == "AAPL" and b.timeframe is Timeframe.DAY
    ]
