"""The in-process broker: seq counters, latest values and a bounded history ring in memory."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence

from streaming.brokers.base import OnPublication, OnResubscribed, Snapshot, SnapshotRequest
from streaming.channels import ChannelKind
from streaming.publication import Publication


class MemoryBroker:
    """Single-process broker. Publishing fans out synchronously, so there are no gaps to fill."""

    def __init__(self, *, history_size: int, history_ttl: float) -> None:
        self._history_size = history_size
        self._history_ttl = history_ttl
        self._seq: dict[str, int] = {}
        self._latest: dict[str, Publication] = {}
        self._history: dict[str, deque[tuple[float, Publication]]] = {}
        self._on_publication: OnPublication | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._on_publication is not None

    @property
    def reconnects(self) -> int:
        return 0

    async def start(self, on_publication: OnPublication, on_resubscribed: OnResubscribed) -> None:
        self._on_publication = on_publication
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="streaming-memory-sweep")

    async def close(self) -> None:
        self._on_publication = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def publish_many(self, items: Sequence[tuple[str, ChannelKind, str, bytes]]) -> None:
        for item in items:
            await self.publish(*item)

    async def publish(self, channel: str, kind: ChannelKind, type_: str, data: bytes) -> int:
        seq = self._seq.get(channel, 0) + 1
        self._seq[channel] = seq
        publication = Publication(channel, kind, seq, type_, data)
        if kind is ChannelKind.LATEST:
            self._latest[channel] = publication
        else:
            ring = self._history.get(channel)
            if ring is None:
                ring = self._history[channel] = deque(maxlen=self._history_size)
            ring.append((time.monotonic(), publication))
        if self._on_publication is not None:
            self._on_publication(publication)
        return seq

    def want(self, channel: str, kind: ChannelKind) -> None:
        pass

    def unwant(self, channel: str) -> None:
        pass

    def active(self, channels: Sequence[str]) -> bool:
        return True

    async def wait_active(self, channels: Sequence[str]) -> None:
        pass

    async def snapshots(self, requests: Sequence[SnapshotRequest]) -> list[Snapshot]:
        return [self._snapshot(request) for request in requests]

    def _snapshot(self, request: SnapshotRequest) -> Snapshot:
        last_seq = self._seq.get(request.channel, 0)
        if request.kind is ChannelKind.LATEST:
            latest = self._latest.get(request.channel)
            return Snapshot(last_seq, [latest] if latest else [], recovered=True)
        since = request.since
        if since is None:
            return Snapshot(last_seq, [], recovered=True)
        if since == last_seq:
            return Snapshot(last_seq, [], recovered=True)
        if since > last_seq:
            return Snapshot(last_seq, [], recovered=False)
        cutoff = time.monotonic() - self._history_ttl
        retained = [p for t, p in self._history.get(request.channel, ()) if t >= cutoff]
        missed = [p for p in retained if p.seq > since]
        if not missed or missed[0].seq != since + 1:
            return Snapshot(last_seq, [], recovered=False)
        return Snapshot(last_seq, missed, recovered=True)

    async def _sweep_forever(self) -> None:
        # Channels that stop publishing would otherwise keep their expired history forever.
        interval = max(self._history_ttl, 1.0)
        while True:
            await asyncio.sleep(interval)
            cutoff = time.monotonic() - self._history_ttl
            for channel, ring in list(self._history.items()):
                while ring and ring[0][0] < cutoff:
                    ring.popleft()
                if not ring:
                    del self._history[channel]
