from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hub.adapters.seed import seed_instruments
from hub.adapters.simulator import Simulator
from hub.domain.quotes import Quote


class StepClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 28, 14, 30, tzinfo=UTC)

    def now(self) -> datetime:
        self.at += timedelta(milliseconds=250)
        return self.at


def run(seed: int, n: int) -> list[Quote]:
    sim = Simulator(seed_instruments(), clock=StepClock(), seed=seed)
    return [sim.next_quote() for _ in range(n)]


def test_seeded_runs_repeat_exactly() -> None:
    assert run(7, 300) == run(7, 300)
    assert run(7, 300) != run(8, 300)


def test_prices_stay_positive_on_the_tick_with_a_spread() -> None:
    instruments = {s.instrument.symbol: s.instrument for s in seed_instruments()}
    for q in run(1, 5000):
        i = instruments[q.symbol]
        for price in (q.bid, q.ask, q.last, q.open, q.high, q.low):
            assert price > 0
            assert i.on_tick(price), (q.symbol, price)
        assert q.bid < q.last < q.ask
        assert q.ask - q.bid >= 2 * i.tick_size
        assert q.low <= q.last <= q.high
        assert q.bid_size > 0
        assert q.ask_size > 0
        assert i.whole_lots(q.bid_size)
        assert q.last_size > 0 and i.whole_lots(q.last_size)  # every move is a trade


def test_every_symbol_is_quoted_round_robin() -> None:
    seeds = seed_instruments()
    quotes = run(3, len(seeds))
    assert {q.symbol for q in quotes} == {s.instrument.symbol for s in seeds}


def test_moves_are_realistic_in_size() -> None:
    # A 250 ms step of a 28%-volatility stock moves it by well under a percent.
    for q in run(5, 2000):
        assert abs(q.day_change_percent) < 5


def test_seed_covers_the_original_symbols_and_crypto() -> None:
    symbols = {s.instrument.symbol: s.instrument for s in seed_instruments()}
    assert len(symbols) >= 30
    assert {"VBR", "AMZN", "DIS", "VOO"} <= symbols.keys()
    assert sum(i.trades_around_the_clock for i in symbols.values()) >= 3


def test_a_restarted_walk_continues_from_the_given_prices() -> None:
    seeds = seed_instruments()
    base = {s.instrument.symbol: s.instrument.round_to_tick(s.base_price) for s in seeds}
    given = {"AAPL": Decimal("201.37"), "BTC-USD": Decimal("0")}  # 0: not a price, ignored
    sim = Simulator(seeds, clock=StepClock(), seed=3, start_prices=given)
    first = {q.symbol: q for q in (sim.next_quote() for _ in seeds)}
    for symbol, q in first.items():
        start = given["AAPL"] if symbol == "AAPL" else base[symbol]
        assert abs(q.last - start) / start < Decimal("0.01"), (symbol, q.last, start)
    assert abs(first["AAPL"].last - base["AAPL"]) > Decimal(5)
