"""Bars from the live feed: the feed's side of price history (docs/market-history.md).

The feed is the only writer of bars. At start the recorder reads the newest stored bar of each
symbol (`open`): its builders resume from them, and their closes are where the simulated walk
starts again. Symbols without any bar get their history backfilled (a pure, CPU-bound function,
run in a worker thread one symbol at a time) and inserted with `insert_missing`; until that is
done, trades wait in a bounded buffer, so that history and live bars join without a gap or a
double count. Then every quote is a trade folded into each timeframe (`record`, synchronous, so
that no timer can close a minute between a quote's time and its bar), the forming minute goes
back to the feed to publish on `bars:<SYMBOL>`, and the bars that changed are written once a
second (`run`) and once more on the way out (`aclose`). Old bars are pruned once a day.

A failing bar store never stops quotes: unwritten bars are kept (the newest snapshot of each,
at most MAX_UNWRITTEN) for the next write that succeeds; failures are logged and counted
(`store_errors`), and `unwritten` says how far behind the store is.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from hub.domain.bar_builder import BarBuilder
from hub.domain.bars import Bar, Retention, Timeframe, Trade
from hub.domain.quotes import Quote
from hub.services.bar_ports import BarStore
from hub.services.channels import bars_channel
from hub.services.ports import Clock
from hub.services.views import LiveBarView

log = structlog.get_logger("hub.bars")

History = Callable[[Sequence[str], datetime], list[Bar]]
"""The backfill: bars of `symbols` for the complete minutes before `end`. Pure and CPU-bound."""

Publication = tuple[str, str, Any]  # (channel, type, data), as Publisher.publish_many takes

MAX_BUFFERED = 100_000  # trades held while the history loads (half an hour of the default feed)
MAX_UNWRITTEN = 200_000  # bars held while the store fails (days of the default feed's minutes)
RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)
FINAL_WRITE_S = 10.0  # the last write on the way out waits no longer for a store that hangs


@dataclass
class BarStats:
    trades: int = 0  # quotes recorded
    late: int = 0  # trades older than their bars (skipped)
    written: int = 0  # bar snapshots written
    backfilled: int = 0  # history bars inserted
    pruned: int = 0
    store_errors: int = 0
    dropped: int = 0  # trades or bars given up when a bound was reached


class BarRecorder:
    """Builds every symbol's bars from the feed's quotes and keeps the bar store up to date."""

    def __init__(
        self,
        store: BarStore,
        clock: Clock,
        symbols: Iterable[str],
        *,
        history: History | None = None,
        flush_interval_s: float = 1.0,
        retention: Retention | None = None,
        prune_interval_s: float = 24 * 3600.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._builders = {symbol: BarBuilder(symbol) for symbol in symbols}
        self._history = history
        self._interval = flush_interval_s
        self._retention = retention or Retention()
        self._prune_interval = prune_interval_s
        self._unwritten: dict[tuple[str, Timeframe, datetime], Bar] = {}
        self._buffer: deque[tuple[str, Trade]] = deque()
        self._opened = False  # the stored bars were read and the builders resumed
        self._missing: list[str] = []  # symbols waiting for their history
        self._backfilled: set[str] = set()  # of those, the ones whose history is inserted
        self._since: datetime | None = None  # when the recorder opened: the backfill's end
        self._live = False
        self._failing = False
        self.counts = BarStats()

    @property
    def live(self) -> bool:
        """Whether trades are being built into bars (the history is in); before, they wait."""
        return self._live

    def stats(self) -> dict[str, int]:
        return asdict(self.counts) | {
            "live": int(self._live),
            "unwritten": len(self._unwritten),
            "buffered": len(self._buffer),
        }

    async def open(self) -> dict[str, Decimal]:
        """Resume every builder from the store; return the last close of each symbol that has
        bars (where its price walk continues). A store that cannot be read is retried by
        `run`, and the walk starts from the base prices."""
        self._since = self._clock.now()
        try:
            stored = await self._store.latest(self._builders)
        except Exception as exc:
            self._failed("read the latest bars", exc)
            return {}
        self._resume(stored)
        newest: dict[str, Bar] = {}
        for bar in stored:
            held = newest.get(bar.symbol)
            if held is None or bar.as_of > held.as_of:
                newest[bar.symbol] = bar
        return {symbol: bar.c for symbol, bar in newest.items()}

    def record(self, quote: Quote) -> Publication | None:
        """Fold the quote's last trade into its symbol's bars; return the forming minute's
        publication for `bars:<SYMBOL>` (None while the history loads, or for a late trade)."""
        trade = Trade(quote.timestamp, quote.last, quote.last_size)
        self.counts.trades += 1
        if not self._live:
            if len(self._buffer) >= MAX_BUFFERED:
                self._buffer.popleft()
                self.counts.dropped += 1
            self._buffer.append((quote.symbol, trade))
            return None
        minute = self._apply(quote.symbol, trade)
        if minute is None:
            return None
        return bars_channel(quote.symbol), "bar", LiveBarView.of(minute)

    async def run(self) -> None:
        """Until cancelled: load the history if needed, then write what changed once per
        interval, and prune once per prune interval."""
        await self._go_live()
        await self.flush()  # what came while the history loaded
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        while True:
            if loop.time() >= next_prune:
                await self.prune()
                next_prune = loop.time() + self._prune_interval
            await asyncio.sleep(self._interval)
            await self.flush()

    async def flush(self, now: datetime | None = None) -> None:
        """Close the bars whose bucket has ended, and write every bar that changed since the
        last write, in one call."""
        if not self._live:
            return
        now = now or self._clock.now()
        for builder in self._builders.values():
            builder.roll(now)
        if not self._unwritten:
            return
        batch, self._unwritten = self._unwritten, {}
        written = False
        try:
            await self._store.upsert(batch.values())
            written = True
        except Exception as exc:
            self._failed("write bars", exc)
        finally:
            if not written:  # failed or cancelled: keep them, unless a newer snapshot came
                for key, bar in batch.items():
                    self._unwritten.setdefault(key, bar)
                self._bound()
        if written:
            self.counts.written += len(batch)
            if self._failing:
                log.info("bar store writes again", written=len(batch))
                self._failing = False

    async def prune(self) -> None:
        try:
            self.counts.pruned += await self._store.prune(
                self._retention.cutoffs(self._clock.now())
            )
        except Exception as exc:
            self._failed("prune bars", exc)

    async def aclose(self) -> None:
        """The last write, once the feed has stopped: a graceful stop loses no trade."""
        if not self._live:
            if self._buffer:
                log.warning("stopped before the bar history loaded", trades=len(self._buffer))
            return
        try:
            async with asyncio.timeout(FINAL_WRITE_S):
                await self.flush()
        except TimeoutError:
            log.warning("the last bar write timed out", unwritten=len(self._unwritten))
        if self._unwritten:
            log.warning("bars left unwritten at shutdown", bars=len(self._unwritten))

    # --- internals ------------------------------------------------------------------------------

    def _resume(self, stored: Iterable[Bar]) -> None:
        by_symbol = _by_symbol(stored)
        for symbol, bars in by_symbol.items():
            if symbol in self._builders:
                self._builders[symbol].resume(bars)
        self._opened = True
        self._missing = [s for s in self._builders if s not in by_symbol]
        self._live = not self._missing or self._history is None

    async def _go_live(self) -> None:
        attempt = 0
        while not self._live:
            try:
                if not self._opened:
                    self._resume(await self._store.latest(self._builders))
                    continue
                await self._backfill()
                for symbol, bars in _by_symbol(await self._store.latest(self._missing)).items():
                    self._builders[symbol].resume(bars)
            except Exception as exc:
                self._failed("load the bar history", exc)
                await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
                attempt += 1
                continue
            log.info("bar history loaded", symbols=len(self._missing), waiting=len(self._buffer))
            self._missing = []
            # The trades that came meanwhile, in order (new ones still join the buffer), in
            # slices so that a long wait's backlog does not hold the loop; then live.
            while self._buffer:
                for _ in range(min(len(self._buffer), 1000)):
                    self._apply(*self._buffer.popleft())
                await asyncio.sleep(0)
            self._live = True

    async def _backfill(self) -> None:
        """One symbol at a time: its history made in a worker thread, then inserted. So no
        step of the loop inserts more than one symbol's bars (a memory store inserts without
        awaiting), a cancel waits for one symbol's history at most, and a retry after a
        failure starts from the first symbol not yet inserted (inserting is idempotent)."""
        assert self._history is not None  # _resume goes live at once without one
        end = self._since or self._clock.now()
        for symbol in self._missing:
            if symbol in self._backfilled:
                continue
            bars = await asyncio.to_thread(self._history, [symbol], end)
            self.counts.backfilled += await self._store.insert_missing(bars)
            self._backfilled.add(symbol)

    def _apply(self, symbol: str, trade: Trade) -> Bar | None:
        builder = self._builders.get(symbol)
        if builder is None:  # a symbol the feed started quoting later
            builder = self._builders[symbol] = BarBuilder(symbol)
        try:
            update = builder.apply(trade)
        except ValueError:  # a source's naive timestamp: this trade has no bar, quotes go on
            self.counts.late += 1
            return None
        minute = None
        for bar in update.forming:
            self._unwritten[bar.key] = bar
            if bar.timeframe is Timeframe.MINUTE:
                minute = bar
        if minute is None:
            self.counts.late += 1
        return minute

    def _bound(self) -> None:
        excess = len(self._unwritten) - MAX_UNWRITTEN
        if excess > 0:  # the oldest first: they are the least likely to be read
            for key in list(self._unwritten)[:excess]:
                del self._unwritten[key]
            self.counts.dropped += excess

    def _failed(self, what: str, exc: Exception) -> None:
        self.counts.store_errors += 1
        if not self._failing or self.counts.store_errors % 60 == 0:
            log.warning(
                "bar store failed; quotes go on",
                op=what,
                error=repr(exc),
                errors=self.counts.store_errors,
                unwritten=len(self._unwritten),
            )
        self._failing = True


def _by_symbol(bars: Iterable[Bar]) -> dict[str, list[Bar]]:
    grouped: dict[str, list[Bar]] = {}
    for bar in bars:
        grouped.setdefault(bar.symbol, []).append(bar)
    return grouped
