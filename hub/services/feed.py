"""The market feed: every quote a source produces is stored as the latest quote (for pricing
and REST) and published on the latest-value channel `quotes:<SYMBOL>`. In-process consumers (the
order trigger index) follow that channel as any other node does (services/quote_mirror.py), so
nothing they do can slow the feed down. With a BarRecorder (services/bars.py), each quote is
also a trade in its symbol's bars, and the forming minute bar is published on `bars:<SYMBOL>`
in the same broker round trip as the quote."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from hub.domain.quotes import Quote
from hub.services.bars import BarRecorder
from hub.services.channels import quotes_channel
from hub.services.ports import Publisher, QuoteStore
from hub.services.views import QuoteView

log = structlog.get_logger("hub.feed")

QuoteListener = Callable[[Quote], Awaitable[None]]


class QuoteSource(Protocol):
    """Where quotes come from: the simulator today, a vendor feed later."""

    def snapshot(self) -> list[Quote]: ...

    async def run(self, sink: QuoteListener) -> None: ...


class FeedService:
    def __init__(
        self,
        source: QuoteSource,
        store: QuoteStore,
        publisher: Publisher,
        *,
        bars: BarRecorder | None = None,
    ) -> None:
        self._source = source
        self._store = store
        self._publisher = publisher
        self.bars = bars
        self.published = 0
        self.errors = 0

    async def prime(self) -> None:
        """Give every symbol a quote before the first client asks."""
        for quote in self._source.snapshot():
            await self._on_quote(quote)

    async def run(self) -> None:
        await self._source.run(self._on_quote)

    async def _on_quote(self, quote: Quote) -> None:
        # Into the bars before any await: the recorder's timer cannot close the quote's minute
        # in between. Recording is in memory only; the bar store is written by its own task.
        bar = self.bars.record(quote) if self.bars is not None else None
        try:
            await self._store.put(quote)
            published = (quotes_channel(quote.symbol), "quote", QuoteView.of(quote))
            if bar is None:
                await self._publisher.publish(*published)
            else:
                await self._publisher.publish_many([published, bar])
            self.published += 1
        except Exception as exc:
            # One failed quote must not stop the feed: the next one supersedes it anyway.
            self.errors += 1
            log.warning("quote not delivered", symbol=quote.symbol, error=str(exc))

    def stats(self) -> dict[str, int]:
        return {"published": self.published, "errors": self.errors}
