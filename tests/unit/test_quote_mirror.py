"""The quote mirror answers from what it heard on the broker, and from the store otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest

from hub.adapters.memory.market import MemoryQuotes
from hub.domain.quotes import Quote
from hub.services.quote_mirror import QuoteMirror
from hub.services.views import QuoteView
from tests.aio import until
from tests.market_suite import quote
from tests.unit.streaming.support import make_engine


class CountingStore(MemoryQuotes):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[list[str]] = []

    async def get_many(self, symbols: Iterable[str]) -> dict[str, Quote]:
        wanted = list(symbols)
        self.reads.append(wanted)
        return await super().get_many(wanted)


async def test_quotes_heard_on_the_broker_need_no_store_read() -> None:
    store = CountingStore()
    await store.put(quote("MSFT", "400.00"))
    mirror = QuoteMirror(store)
    heard: list[Quote] = []

    async def listener(q: Quote) -> None:
        heard.append(q)

    mirror.listeners.append(listener)
    async with make_engine() as engine:
        follower = asyncio.create_task(mirror.follow(engine, ["AAPL", "MSFT"]))
        try:
            await until(lambda: engine.stats()["subscriptions"] == 2)
            await engine.publish("quotes:AAPL", "quote", QuoteView.of(quote("AAPL", "190.00")))
            await until(lambda: heard)
            found = await mirror.get_many(["AAPL"])
            assert found["AAPL"].last == quote("AAPL", "190.00").last
            assert store.reads == []  # answered from memory
            both = await mirror.get_many(["AAPL", "MSFT"])  # MSFT was never heard: the store
            assert set(both) == {"AAPL", "MSFT"} and store.reads == [["MSFT"]]
            assert heard[0].symbol == "AAPL"
        finally:
            follower.cancel()
            with pytest.raises(asyncio.CancelledError):
                await follower
        assert engine.stats()["subscriptions"] == 0  # detached on the way out


async def test_an_old_quote_is_read_from_the_store_again() -> None:
    store = CountingStore()
    await store.put(quote("AAPL", "191.00"))
    mirror = QuoteMirror(store, max_age_s=0.05)
    mirror.heard(quote("AAPL", "190.00"))
    assert (await mirror.get_many(["AAPL"]))["AAPL"].last == quote("AAPL", "190.00").last
    async with asyncio.timeout(5):  # until max_age has passed: then the store is read, once
        fresh = quote("AAPL", "191.00").last
        while (await mirror.get_many(["AAPL"]))["AAPL"].last != fresh:  # noqa: ASYNC110 - a TTL
            await asyncio.sleep(0.01)
    assert store.reads == [["AAPL"]]


async def test_a_store_that_fails_leaves_the_last_quote_heard() -> None:
    class DownStore(CountingStore):
        async def get_many(self, symbols: Iterable[str]) -> dict[str, Quote]:
            raise ConnectionError("redis is down")

    mirror = QuoteMirror(DownStore(), max_age_s=0.0)
    mirror.heard(quote("AAPL", "190.00"))
    assert (await mirror.get_many(["AAPL", "MSFT"]))["AAPL"].last == quote("AAPL", "190.00").last
    assert "MSFT" not in await mirror.get_many(["MSFT"])
