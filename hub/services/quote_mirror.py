"""The latest quotes as this process heard them on the fan-out broker.

Every quote the feed writes to the quote store it also publishes on `quotes:<SYMBOL>`; a process
that follows those channels already holds what a store read would return, without the round
trip. Order submit and the worker price from this mirror; a quote the mirror has not heard
within `max_age_s` (the broker link is down, or the symbol is quiet) is read from the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import msgspec
import structlog

from hub.domain.quotes import Quote
from hub.services.channels import quotes_channel
from hub.services.feed import QuoteListener
from hub.services.ports import QuoteStore
from streaming import Engine, StreamingError
from streaming.publication import Publication
from streaming.subscriber import Subscriber

log = structlog.get_logger("hub.quotes")


class QuoteMirror:
    def __init__(self, store: QuoteStore, *, max_age_s: float = 5.0) -> None:
        self._store = store
        self._max_age = max_age_s
        self._latest: dict[str, tuple[float, Quote]] = {}
        self._decoder = msgspec.json.Decoder(Quote)
        self.listeners: list[QuoteListener] = []
        self._unheard: dict[str, Quote] = {}
        self._wake = asyncio.Event()

    async def put(self, quote: Quote) -> None:
        await self._store.put(quote)
        self.heard(quote)  # what this process wrote, it knows

    async def get_many(self, symbols: Iterable[str]) -> dict[str, Quote]:
        oldest = time.monotonic() - self._max_age
        found: dict[str, Quote] = {}
        missing: list[str] = []
        for symbol in symbols:
            held = self._latest.get(symbol)
            if held is not None and held[0] >= oldest:
                found[symbol] = held[1]
            else:
                missing.append(symbol)
        if missing:
            try:
                found.update(await self._store.get_many(missing))
            except Exception as exc:
                log.warning("quote store unavailable, using the quotes heard", error=repr(exc))
            for symbol in missing:
                # The store had nothing (it is down, say): the last quote heard, however old,
                # is still the best there is; the checks judge its age by its timestamp.
                held = self._latest.get(symbol)
                if symbol not in found and held is not None:
                    found[symbol] = held[1]
        return found

    def heard(self, quote: Quote) -> None:
        held = self._latest.get(quote.symbol)
        if held is None or held[1].timestamp <= quote.timestamp:  # never step back in time
            self._latest[quote.symbol] = (time.monotonic(), quote)

    # --- the streaming Sink interface: called synchronously by the engine -------------------

    def deliver(self, subscriber: Subscriber, publication: Publication) -> None:
        quote = self._decoder.decode(publication.data)
        self.heard(quote)
        if self.listeners:
            self._unheard[quote.symbol] = quote  # conflated: listeners want the newest
            self._wake.set()

    def subscribed(self, subscriber: Subscriber, seq: int, recovered: bool | None) -> None:
        return None

    def lost(self, subscriber: Subscriber, error: StreamingError) -> None:
        log.warning("quote mirror lost a channel", channel=subscriber.channel, error=str(error))

    async def follow(self, engine: Engine, symbols: Iterable[str]) -> None:
        """Follow every symbol's channel until cancelled, and feed the listeners. One task and
        no task per channel: a cancel always reaches it (a task group would wait forever on a
        child whose cancel a client library swallowed)."""
        channels = [quotes_channel(symbol) for symbol in sorted(symbols)]
        while True:
            subscribers = [engine.prepare(self, "quote-mirror", c) for c in channels]
            try:
                await engine.activate([(s, None) for s in subscribers])
                while True:
                    await self._wake.wait()
                    self._wake.clear()
                    unheard, self._unheard = self._unheard, {}
                    for quote in unheard.values():
                        for listener in self.listeners:
                            await listener(quote)
            except StreamingError as exc:
                log.warning("quote mirror cannot follow the broker; retrying", error=str(exc))
            finally:
                for subscriber in subscribers:
                    engine.detach(subscriber)
            await asyncio.sleep(1.0)
