"""Bars: buckets, the builder, merge and rollup, with property tests over random trade streams."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from hub.domain.bar_builder import BarBuilder
from hub.domain.bars import (
    Bar,
    Retention,
    Timeframe,
    Trade,
    combine,
    merge,
    parse_timeframe,
    rollup,
)
from hub.domain.errors import InvalidInput

D = Decimal
SETTINGS = settings(max_examples=150, deadline=None)
LONGER = [t for t in Timeframe if t is not Timeframe.MINUTE]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def trade(when: str, price: str, size: str = "100") -> Trade:
    return Trade(at(when), D(price), D(size))


# --- buckets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeframe", "when", "start"),
    [
        (Timeframe.MINUTE, "2026-03-06T14:31:59.999999+00:00", "2026-03-06T14:31:00+00:00"),
        (Timeframe.FIVE_MINUTES, "2026-03-06T14:34:00+00:00", "2026-03-06T14:30:00+00:00"),
        (Timeframe.FIFTEEN_MINUTES, "2026-03-06T14:45:00+00:00", "2026-03-06T14:45:00+00:00"),
        (Timeframe.HOUR, "2026-03-06T09:59:00-05:00", "2026-03-06T14:00:00+00:00"),
        # A day is the New York date, stamped at its midnight: 05:00Z in winter, 04:00Z in summer.
        (Timeframe.DAY, "2026-03-06T15:00:00+00:00", "2026-03-06T05:00:00+00:00"),
        (Timeframe.DAY, "2026-07-06T15:00:00+00:00", "2026-07-06T04:00:00+00:00"),
        (Timeframe.DAY, "2026-03-07T03:30:00+00:00", "2026-03-06T05:00:00+00:00"),  # 22:30 NY
        (Timeframe.DAY, "2026-03-07T05:00:00+00:00", "2026-03-07T05:00:00+00:00"),
    ],
)
def test_buckets(timeframe: Timeframe, when: str, start: str) -> None:
    bucket = timeframe.bucket(at(when))
    assert bucket == at(start)
    assert bucket.tzinfo is UTC


def test_new_york_days_are_23_or_25_hours_long_when_the_clocks_change() -> None:
    spring = Timeframe.DAY.bucket(at("2026-03-08T12:00:00+00:00"))
    autumn = Timeframe.DAY.bucket(at("2026-11-01T12:00:00+00:00"))
    assert Timeframe.DAY.next_bucket(spring) - spring == timedelta(hours=23)
    assert Timeframe.DAY.next_bucket(autumn) - autumn == timedelta(hours=25)
    assert Timeframe.MINUTE.next_bucket(spring) - spring == timedelta(minutes=1)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Timeframe.MINUTE.bucket(datetime(2026, 3, 6, 14, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        BarBuilder("AAPL").apply(Trade(datetime(2026, 3, 6, 14, 0), D(1), D(1)))


def test_timeframes_parse_by_their_wire_names() -> None:
    assert [t.value for t in Timeframe] == ["1Min", "5Min", "15Min", "1Hour", "1Day"]
    assert parse_timeframe("1Hour") is Timeframe.HOUR
    with pytest.raises(InvalidInput) as caught:
        parse_timeframe("1min")
    assert caught.value.code == "validation_error"
    assert caught.value.extra == {"field": "timeframe"}
    assert "1Min, 5Min, 15Min, 1Hour, 1Day" in caught.value.detail


# --- the builder --------------------------------------------------------------------------------


def test_a_minute_builds_closes_and_carries_the_vwap() -> None:
    builder = BarBuilder("AAPL", [Timeframe.MINUTE])
    builder.apply(trade("2026-03-06T14:30:05+00:00", "189.50", "100"))
    builder.apply(trade("2026-03-06T14:30:20+00:00", "189.70", "300"))
    builder.apply(trade("2026-03-06T14:30:40+00:00", "189.45", "0"))  # a mid: no volume
    update = builder.apply(trade("2026-03-06T14:31:00+00:00", "189.60", "50"))
    (closed,) = update.closed
    assert (closed.o, closed.h, closed.l, closed.c) == (
        D("189.50"),
        D("189.70"),
        D("189.45"),
        D("189.45"),
    )
    assert (closed.v, closed.n, closed.notional) == (D(400), 2, D("75860.00"))
    assert closed.vw == D("189.65")
    assert closed.as_of == at("2026-03-06T14:30:40+00:00")
    assert closed.end == at("2026-03-06T14:31:00+00:00")
    (forming,) = update.forming
    assert (forming.t, forming.o, forming.v, forming.n) == (closed.end, D("189.60"), D(50), 1)
    assert builder.forming() == [forming]


def test_a_bar_without_volume_has_its_close_as_vwap() -> None:
    builder = BarBuilder("AAPL", [Timeframe.MINUTE])
    (bar,) = builder.apply(trade("2026-03-06T14:30:05+00:00", "189.50", "0")).forming
    assert (bar.v, bar.n, bar.vw) == (D(0), 0, D("189.50"))


def test_every_timeframe_forms_at_once_and_old_trades_are_skipped() -> None:
    builder = BarBuilder("AAPL")
    assert builder.timeframes == tuple(Timeframe)
    update = builder.apply(trade("2026-03-06T14:30:05+00:00", "189.50"))
    assert [b.timeframe for b in update.forming] == list(Timeframe)
    late = builder.apply(trade("2026-03-06T14:30:04+00:00", "1.00"))
    assert late.forming == () and late.closed == ()
    same_instant = builder.apply(trade("2026-03-06T14:30:05+00:00", "189.51"))
    assert all(b.n == 2 for b in same_instant.forming)


def test_roll_closes_a_quiet_minute_on_time_and_then_refuses_its_stragglers() -> None:
    builder = BarBuilder("AAPL", [Timeframe.MINUTE, Timeframe.HOUR])
    builder.apply(trade("2026-03-06T14:30:05+00:00", "189.50"))
    assert builder.roll(at("2026-03-06T14:30:59+00:00")) == []
    (closed,) = builder.roll(at("2026-03-06T14:31:00+00:00"))
    assert closed.timeframe is Timeframe.MINUTE
    assert [b.timeframe for b in builder.forming()] == [Timeframe.HOUR]
    straggler = builder.apply(trade("2026-03-06T14:30:59+00:00", "189.90"))
    assert [b.timeframe for b in straggler.forming] == [Timeframe.HOUR]
    update = builder.apply(trade("2026-03-06T14:31:01+00:00", "189.40"))
    assert update.closed == ()
    assert [b.t for b in update.forming] == [
        at("2026-03-06T14:31:00+00:00"),
        closed.t.replace(minute=0),
    ]


def test_resume_continues_the_stored_bar_and_ignores_others() -> None:
    first = BarBuilder("AAPL", [Timeframe.MINUTE])
    (stored,) = first.apply(trade("2026-03-06T14:30:05+00:00", "189.50")).forming
    other = replace(stored, symbol="MSFT")
    resumed = BarBuilder("AAPL", [Timeframe.MINUTE])
    resumed.resume([other, replace(stored, timeframe=Timeframe.DAY), stored])
    assert resumed.forming() == [stored]
    (bar,) = resumed.apply(trade("2026-03-06T14:30:10+00:00", "189.60")).forming
    assert (bar.o, bar.c, bar.n) == (D("189.50"), D("189.60"), 2)
    # A stored bar of an ended bucket is closed by the next trade (rewriting it is harmless).
    later = resumed.apply(trade("2026-03-06T14:35:00+00:00", "189.70"))
    assert later.closed == (bar,)


def test_a_builder_needs_a_timeframe() -> None:
    with pytest.raises(ValueError, match="at least one"):
        BarBuilder("AAPL", [])


# --- merge, combine, rollup, retention ----------------------------------------------------------


def bar_at(when: str, price: str, *, n: int = 1, timeframe: Timeframe = Timeframe.MINUTE) -> Bar:
    p = D(price)
    t = at(when)
    return Bar(
        symbol="AAPL",
        timeframe=timeframe,
        t=timeframe.bucket(t),
        o=p,
        h=p,
        l=p,
        c=p,
        v=D(n),
        n=n,
        notional=p * n,
        as_of=t,
    )


def test_merge_keeps_the_snapshot_further_along() -> None:
    early = bar_at("2026-03-06T14:30:05+00:00", "189.50")
    later = replace(early, c=D("189.60"), h=D("189.60"), n=2, as_of=at("2026-03-06T14:30:09+00:00"))
    assert merge(None, early) is early
    assert merge(early, later) is later
    assert merge(later, early) is later  # a stale write changes nothing
    assert merge(later, later) is later
    price_only = replace(later, c=D("189.55"), as_of=at("2026-03-06T14:30:10+00:00"))
    assert merge(later, price_only) is price_only
    with pytest.raises(ValueError, match="two versions of one bar"):
        merge(early, replace(early, symbol="MSFT"))


def test_combine_and_rollup_check_their_input() -> None:
    a = bar_at("2026-03-06T14:30:05+00:00", "189.50")
    b = bar_at("2026-03-06T14:31:05+00:00", "189.60")
    with pytest.raises(ValueError, match="ascending"):
        combine(b, a)
    with pytest.raises(ValueError, match="ascending"):
        rollup([b, bar_at("2026-03-06T14:20:05+00:00", "189.60")], Timeframe.FIVE_MINUTES)
    with pytest.raises(ValueError, match="cannot roll 1Min bars up into 1Min"):
        rollup([a], Timeframe.MINUTE)
    (five,) = rollup([a, b], Timeframe.FIVE_MINUTES)
    assert (five.t, five.o, five.c, five.n, five.as_of) == (a.t, a.o, b.c, 2, b.as_of)
    assert rollup([], Timeframe.DAY) == []


def test_retention_cutoffs() -> None:
    now = at("2026-03-06T15:00:00+00:00")
    cutoffs = Retention().cutoffs(now)
    assert cutoffs[Timeframe.MINUTE] == now - timedelta(days=30)
    assert Timeframe.DAY not in cutoffs  # daily bars are kept forever
    assert Retention({Timeframe.DAY: timedelta(days=1)}).cutoffs(now) == {
        Timeframe.DAY: now - timedelta(days=1)
    }
    with pytest.raises(ValueError, match="positive"):
        Retention({Timeframe.MINUTE: timedelta(0)})


# --- properties ---------------------------------------------------------------------------------

# Starts around New York midnight and both clock changes, so that days of 23 and 25 hours occur.
STARTS = [
    at("2026-03-06T14:29:30+00:00"),
    at("2026-03-08T03:50:00+00:00"),
    at("2026-11-01T03:40:00+00:00"),
    at("2026-11-01T23:59:00-05:00"),
]


@st.composite
def trade_streams(draw: st.DrawFn, *, strictly_increasing: bool = False) -> list[Trade]:
    """Trades in time order: gaps from none to two hours, prices on a 0.01 tick, sizes of whole
    shares or of crypto fractions, and some prices without a trade (size 0)."""
    when = draw(st.sampled_from(STARTS))
    lot = draw(st.sampled_from([D(1), D("0.0001")]))
    count = draw(st.integers(1, 120))
    gaps = st.integers(1 if strictly_increasing else 0, 7_200_000_000)  # microseconds
    trades: list[Trade] = []
    for _ in range(count):
        when += timedelta(microseconds=draw(st.one_of(st.integers(0, 90_000_000), gaps)))
        if strictly_increasing and trades and when <= trades[-1].at:
            when = trades[-1].at + timedelta(microseconds=1)
        price = D(draw(st.integers(1, 10_000_000))) * D("0.01")
        size = D(draw(st.integers(0, 2_000))) * lot
        trades.append(Trade(when, price, size))
    return trades


def build(trades: Iterable[Trade], timeframes: Sequence[Timeframe]) -> list[Bar]:
    """Every bar the builder produces, closed and forming, per timeframe in time order."""
    builder = BarBuilder("AAPL", timeframes)
    bars: list[Bar] = []
    for t in trades:
        bars.extend(builder.apply(t).closed)
    bars.extend(builder.forming())
    return sorted(bars, key=lambda b: (timeframes.index(b.timeframe), b.t))


@SETTINGS
@given(trade_streams())
def test_bars_bound_their_prices_and_sum_their_trades(trades: list[Trade]) -> None:
    for bar in build(trades, list(Timeframe)):
        inside = [t for t in trades if bar.t <= t.at < bar.end]
        assert inside, "a bar only exists where there were trades"
        assert bar.h >= max(bar.o, bar.c)
        assert bar.l <= min(bar.o, bar.c)
        assert (bar.o, bar.c) == (inside[0].price, inside[-1].price)
        assert (bar.h, bar.l) == (max(t.price for t in inside), min(t.price for t in inside))
        assert bar.v == sum((t.size for t in inside), D(0))
        assert bar.n == sum(1 for t in inside if t.size)
        assert bar.notional == sum((t.price * t.size for t in inside), D(0))
        assert bar.as_of == inside[-1].at
        if bar.v:
            assert bar.l <= bar.vw <= bar.h
    volume = sum((t.size for t in trades), D(0))
    for timeframe in Timeframe:
        assert sum((b.v for b in build(trades, [timeframe])), D(0)) == volume


@SETTINGS
@given(trade_streams())
def test_rolling_minutes_up_equals_building_directly(trades: list[Trade]) -> None:
    minutes = build(trades, [Timeframe.MINUTE])
    for timeframe in LONGER:
        assert rollup(minutes, timeframe) == build(trades, [timeframe])
    # And in steps, as the backfill rolls them (5Min -> 15Min -> 1Hour -> 1Day).
    stepped = minutes
    for timeframe in LONGER:
        stepped = rollup(stepped, timeframe)
        assert stepped == build(trades, [timeframe])


class DictStore:
    """The store's write rule (merge) over a dict, as both real stores apply it."""

    def __init__(self) -> None:
        self.bars: dict[tuple[str, Timeframe, datetime], Bar] = {}

    def upsert(self, bars: Iterable[Bar]) -> None:
        for bar in bars:
            self.bars[bar.key] = merge(self.bars.get(bar.key), bar)

    def latest(self) -> list[Bar]:
        newest: dict[Timeframe, Bar] = {}
        for bar in self.bars.values():
            if bar.timeframe not in newest or bar.t > newest[bar.timeframe].t:
                newest[bar.timeframe] = bar
        return list(newest.values())


def feed(builder: BarBuilder, store: DictStore, trades: Iterable[Trade]) -> list[Bar]:
    """A feed's loop: apply each trade and write what changed; return the last snapshots."""
    written: list[Bar] = []
    for t in trades:
        update = builder.apply(t)
        written = [*update.closed, *update.forming]
        store.upsert(written)
    return written


@SETTINGS
@given(trade_streams(strictly_increasing=True), st.data())
def test_a_restart_mid_bar_neither_loses_nor_doubles(
    trades: list[Trade], data: st.DataObject
) -> None:
    split = data.draw(st.integers(0, len(trades)))
    unbroken = DictStore()
    feed(BarBuilder("AAPL"), unbroken, trades)

    store = DictStore()
    last_written = feed(BarBuilder("AAPL"), store, trades[:split])
    restarted = BarBuilder("AAPL")
    restarted.resume(store.latest())
    feed(restarted, store, trades[split:])
    # The old process's last write, arriving late (a retry, a zombie), changes nothing.
    store.upsert(last_written)
    assert store.bars == unbroken.bars


@SETTINGS
@given(trade_streams(strictly_increasing=True), st.data())
def test_trades_replayed_after_a_restart_are_not_counted_twice(
    trades: list[Trade], data: st.DataObject
) -> None:
    split = data.draw(st.integers(0, len(trades)))
    replay_from = data.draw(st.integers(0, split))
    unbroken = DictStore()
    feed(BarBuilder("AAPL"), unbroken, trades)

    store = DictStore()
    feed(BarBuilder("AAPL"), store, trades[:split])
    restarted = BarBuilder("AAPL")
    restarted.resume(store.latest())
    feed(restarted, store, trades[replay_from:])  # a source that replays what it last sent
    assert store.bars == unbroken.bars
