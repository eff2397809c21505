"""In-process subscriptions (e.g. for a gRPC server stream): an async iterator of publications."""

from __future__ import annotations

import asyncio
from collections import deque

from streaming.channels import ChannelKind
from streaming.errors import SlowConsumer, StreamingError
from streaming.publication import Publication
from streaming.stats import Counters
from streaming.subscriber import Subscriber


class Subscription:
    """Publications of one channel, in seq order.

    Latest-value channels are conflated: a reader that falls behind gets the newest value, never a
    backlog. Reliable channels queue up to `max_pending` publications; beyond that the iterator
    raises `SlowConsumer`. Iteration ends when the engine stops.
    """

    def __init__(self, counters: Counters, max_pending: int) -> None:
        self._counters = counters
        self._max_pending = max_pending
        self._queue: deque[Publication] = deque()
        self._latest: Publication | None = None
        self._event = asyncio.Event()
        self._error: StreamingError | None = None
        self._ended = False
        #: The channel position when the subscription started (after any recovery).
        self.seq = 0
        #: For reliable subscriptions started with `since`: whether the gap was replayed.
        self.recovered: bool | None = None

    def deliver(self, subscriber: Subscriber, publication: Publication) -> None:
        if self._error is not None:
            return
        if subscriber.kind is ChannelKind.LATEST:
            if self._latest is not None:
                self._counters.conflated += 1
            self._latest = publication
        elif len(self._queue) >= self._max_pending:
            self._counters.slow_consumer_closes += 1
            self._error = SlowConsumer(f"more than {self._max_pending} publications pending")
        else:
            self._queue.append(publication)
        self._counters.deliveries += 1
        self._event.set()

    def subscribed(self, subscriber: Subscriber, seq: int, recovered: bool | None) -> None:
        self.seq = seq
        self.recovered = recovered

    def lost(self, subscriber: Subscriber, error: StreamingError) -> None:
        self._error = error
        self._event.set()

    def end(self) -> None:
        """Stop iteration after what is already pending."""
        self._ended = True
        self._event.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Publication:
        while True:
            if self._error is not None:
                raise self._error
            if self._queue:
                return self._queue.popleft()
            if self._latest is not None:
                publication, self._latest = self._latest, None
                return publication
            if self._ended:
                raise StopAsyncIteration
            self._event.clear()
            await self._event.wait()
