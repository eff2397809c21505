"""Deterministic price history for the seeded simulator, so that a new install shows a chart at
once: the last few trading days in 1-minute bars (and the 5Min, 15Min, 1Hour and 1Day bars
rolled up from them), and a year of daily bars before that.

The walk is the simulator's (hub/adapters/simulator.py): a geometric Brownian motion on the tick,
prices in Decimal, with the same volatility and trade sizes. It is generated backwards from the
instrument's base price, so that history ends exactly where the live simulator starts.
Sessions are the regular New York ones (09:30-16:00, weekdays, no holiday table, as
`ExchangeHours`), for every category: crypto history is generated on the same grid. Trade
counts and sizes follow the live simulator's, so volume does not jump where history ends. The random
numbers come from one `random.Random` per symbol seeded with (seed, symbol), so a seed and an end
time give the same bars on every run and for any subset of instruments; inserting them with
`BarStore.insert_missing` twice stores them once.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hub.adapters.seed import SeedInstrument
from hub.adapters.simulator import SECONDS_PER_TRADING_YEAR
from hub.domain.bars import Bar, Timeframe, rollup
from hub.domain.calendar import ExchangeHours
from hub.domain.instruments import Instrument

MINUTE_DAYS = 5  # complete sessions of 1-minute bars (plus the session in progress, if any)
DAILY_DAYS = 252  # complete sessions of daily bars (plus the session in progress, if any)
MINUTES_PER_SESSION = 390
# The live simulator's pace: every quote it makes is a trade, 50 a second over the 34 seed
# symbols, so about 88 a minute per symbol (the feed passes its own: quotes/s x 60 / symbols).
TRADES_PER_MINUTE = 88
MAX_TRADE_LOTS = 500  # one trade is 1 to 500 lots, as the simulator's `last_size`
# Prices are walked at points 15 seconds apart in minute bars (open, two inside, close), and 7.5
# minutes apart on days without minute bars. Each point stands for the trades of its stretch, so
# that both kinds of day have the same trade count and volume: 52 x 30 = 390 x 4 points.
POINTS_PER_MINUTE = 4
POINTS_PER_DAY = 52
ROLLED_UP = (Timeframe.FIVE_MINUTES, Timeframe.FIFTEEN_MINUTES, Timeframe.HOUR, Timeframe.DAY)

_MINUTE_STEP = timedelta(minutes=1) / POINTS_PER_MINUTE
_DAY_STEP = timedelta(minutes=MINUTES_PER_SESSION) / POINTS_PER_DAY
_DAY_POINT_IN_MINUTE_POINTS = MINUTES_PER_SESSION * POINTS_PER_MINUTE // POINTS_PER_DAY
_SECONDS_PER_TRADING_YEAR = float(SECONDS_PER_TRADING_YEAR)


@dataclass(frozen=True, slots=True)
class Session:
    """A regular session that the history covers."""

    open: datetime  # UTC
    minutes: int  # complete minutes before the end time: 390, or fewer for a session in progress
    detailed: bool  # generated as minute bars; else as one daily bar


def sessions(
    end: datetime,
    *,
    minute_days: int = MINUTE_DAYS,
    daily_days: int = DAILY_DAYS,
    hours: ExchangeHours | None = None,
) -> list[Session]:
    """The sessions with at least one complete minute before `end`, ascending: the session in
    progress at `end` (if any) and `daily_days` complete ones before it; the last `minute_days`
    complete ones and the one in progress are `detailed`."""
    if end.utcoffset() is None:
        raise ValueError(f"a timezone-aware end is required, not {end!r}")
    hours = hours or ExchangeHours()
    found: list[Session] = []
    complete = 0
    day = end.astimezone(hours.tz).date()
    while complete < max(daily_days, minute_days):
        if day.weekday() < 5 and day not in hours.holidays:
            opens = datetime.combine(day, hours.open, tzinfo=hours.tz).astimezone(UTC)
            closes = datetime.combine(day, hours.close, tzinfo=hours.tz).astimezone(UTC)
            minutes = min((end - opens) // timedelta(minutes=1), (closes - opens).seconds // 60)
            if minutes > 0:
                whole = opens + timedelta(minutes=minutes) >= closes
                found.append(Session(opens, minutes, complete < minute_days))
                complete += whole
        day -= timedelta(days=1)
    found.reverse()
    return found


def backfill(
    instruments: Sequence[SeedInstrument],
    *,
    seed: int,
    end: datetime,
    minute_days: int = MINUTE_DAYS,
    daily_days: int = DAILY_DAYS,
    trades_per_minute: int = TRADES_PER_MINUTE,
) -> list[Bar]:
    """The history of each instrument up to `end`, ending at its base price: 1Min bars of the
    detailed sessions, the 5Min, 15Min, 1Hour and 1Day bars rolled up from them, and a 1Day bar
    for every older session. Per instrument and timeframe, in ascending time order."""
    calendar = sessions(end, minute_days=minute_days, daily_days=daily_days)
    per_point = max(1, round(trades_per_minute / POINTS_PER_MINUTE))
    bars: list[Bar] = []
    for instrument in instruments:
        bars.extend(_history(instrument, calendar, seed, per_point))
    return bars


def _history(
    seed_instrument: SeedInstrument, calendar: Sequence[Session], seed: int, per_point: int
) -> list[Bar]:
    instrument = seed_instrument.instrument
    rng = random.Random(f"{seed}:{instrument.symbol}")
    counts = [s.minutes * POINTS_PER_MINUTE if s.detailed else POINTS_PER_DAY for s in calendar]
    prices = _walk_back(seed_instrument, calendar, counts, rng)
    minutes: list[Bar] = []
    days: list[Bar] = []
    at = 0
    for session, count in zip(calendar, counts, strict=True):
        points = prices[at : at + count]
        at += count
        if session.detailed:
            minutes.extend(_minute_bars(instrument, session, points, per_point, rng))
        else:
            per_day_point = per_point * _DAY_POINT_IN_MINUTE_POINTS
            days.append(_day_bar(instrument, session, points, per_day_point, rng))
    history = minutes.copy()
    rolled = minutes
    for timeframe in ROLLED_UP:  # each from the one before: the buckets nest
        rolled = rollup(rolled, timeframe)
        history.extend(days + rolled if timeframe is Timeframe.DAY else rolled)  # days come first
    return history


def _walk_back(
    seed_instrument: SeedInstrument,
    calendar: Sequence[Session],
    counts: Sequence[int],
    rng: random.Random,
) -> list[Decimal]:
    """Every tick's price, ascending; the last is the base price on the tick. Each step back
    undoes one step of the simulator's walk, P[k] = P[k-1] * exp(-sigma^2/2 dt + sigma sqrt(dt) z):
    for a symmetric z, P[k-1] = P[k] * exp(sigma^2/2 dt + sigma sqrt(dt) z), rounded to the tick.

    The factor exp(...) is a dimensionless shock near 1, computed in binary floating point
    and taken into Decimal exactly as printed; the prices themselves are only ever Decimal.
    (Decimal's exp() made the backfill twice as slow for no visible difference.)"""
    instrument = seed_instrument.instrument
    sigma = float(seed_instrument.volatility)
    tick = instrument.tick_size
    prices = [tick] * sum(counts)
    price = instrument.round_to_tick(seed_instrument.base_price)
    gauss, exp = rng.gauss, math.exp
    i = len(prices)
    for session, count in zip(reversed(calendar), reversed(counts), strict=True):
        step = _MINUTE_STEP if session.detailed else _DAY_STEP
        dt = step.total_seconds() / _SECONDS_PER_TRADING_YEAR
        drift = sigma * sigma * 0.5 * dt
        scale = sigma * math.sqrt(dt)
        shocks = [repr(exp(drift + scale * gauss(0.0, 1.0))) for _ in range(count)]
        for shock in shocks:
            i -= 1
            prices[i] = price
            # round_to_tick, inlined: never below one tick.
            ticks = (price * Decimal(shock) / tick).to_integral_value()
            price = ticks * tick if ticks >= 1 else tick
    return prices


def _minute_bars(
    instrument: Instrument,
    session: Session,
    prices: Sequence[Decimal],
    per_point: int,
    rng: random.Random,
) -> Iterator[Bar]:
    sizes = _volumes(instrument, per_point, len(prices), rng)
    last_point = _MINUTE_STEP * (POINTS_PER_MINUTE - 1)
    trades = per_point * POINTS_PER_MINUTE
    for minute in range(session.minutes):
        points = slice(minute * POINTS_PER_MINUTE, (minute + 1) * POINTS_PER_MINUTE)
        t = session.open + timedelta(minutes=minute)
        yield _bar(
            instrument, Timeframe.MINUTE, t, prices[points], sizes[points], trades, t + last_point
        )


def _day_bar(
    instrument: Instrument,
    session: Session,
    prices: Sequence[Decimal],
    per_point: int,
    rng: random.Random,
) -> Bar:
    sizes = _volumes(instrument, per_point, len(prices), rng)
    t = Timeframe.DAY.bucket(session.open)
    as_of = session.open + _DAY_STEP * (len(prices) - 1)
    return _bar(instrument, Timeframe.DAY, t, prices, sizes, per_point * len(prices), as_of)


def _volumes(
    instrument: Instrument, per_point: int, count: int, rng: random.Random
) -> list[Decimal]:
    """The volume of `count` points of `per_point` trades each: a sum of per_point sizes of 1 to
    MAX_TRADE_LOTS lots, drawn as one number of the same range and mean."""
    lots = range(per_point, per_point * MAX_TRADE_LOTS + 1)
    return [instrument.lot_size * k for k in rng.choices(lots, k=count)]


def _bar(
    instrument: Instrument,
    timeframe: Timeframe,
    t: datetime,
    prices: Sequence[Decimal],
    sizes: Sequence[Decimal],
    trades: int,
    as_of: datetime,
) -> Bar:
    return Bar(
        symbol=instrument.symbol,
        timeframe=timeframe,
        t=t,
        o=prices[0],
        h=max(prices),
        l=min(prices),
        c=prices[-1],
        v=sum(sizes, Decimal(0)),
        n=trades,
        notional=sum((p * s for p, s in zip(prices, sizes, strict=True)), Decimal(0)),
        as_of=as_of,
    )
