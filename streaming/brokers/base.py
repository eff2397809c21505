"""What the Engine needs from a broker (the port every broker implements), and the channel
state it hands back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from streaming.channels import ChannelKind
from streaming.publication import Publication

#: Called, on the event loop, for every publication that reaches this node.
OnPublication = Callable[[Publication], None]
#: Called when the upstream subscription of an already-active channel was re-established
#: (after a broker reconnect), so the engine can fill the gap from history.
OnResubscribed = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """What a new or resyncing subscriber needs to know about one channel."""

    channel: str
    kind: ChannelKind
    since: int | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A channel's state, read atomically.

    LATEST: `publications` holds the current value (if any).
    RELIABLE: `publications` holds every retained publication after `since` in seq order, and
    `recovered` says whether they are exactly all the publications after `since` (never partial).
    """

    last_seq: int
    publications: Sequence[Publication]
    recovered: bool


class Broker(Protocol):
    """What the Engine needs from a broker."""

    @property
    def ready(self) -> bool:
        """Connected, and every wanted channel is subscribed upstream."""
        ...

    @property
    def reconnects(self) -> int:
        """How many times the upstream connection was re-established."""
        ...

    async def start(self, on_publication: OnPublication, on_resubscribed: OnResubscribed) -> None:
        """Connect and start background tasks."""
        ...

    async def close(self) -> None:
        """Cancel and await background tasks, release connections."""
        ...

    async def publish(self, channel: str, kind: ChannelKind, type_: str, data: bytes) -> int:
        """Assign the next seq, store (latest value / history), fan out; return the seq."""
        ...

    async def publish_many(self, items: Sequence[tuple[str, ChannelKind, str, bytes]]) -> None:
        """Publish several in one go, in order (one round trip on a networked broker). On
        failure some may have gone out: publishing is at least once."""
        ...

    def want(self, channel: str, kind: ChannelKind) -> None:
        """This node now has local subscribers on `channel` (reference counted by the engine)."""
        ...

    def unwant(self, channel: str) -> None:
        """This node has no more local subscribers on `channel`."""
        ...

    def active(self, channels: Sequence[str]) -> bool:
        """Live delivery for all `channels` is flowing to this node now (nothing to wait for)."""
        ...

    async def wait_active(self, channels: Sequence[str]) -> None:
        """Wait until live delivery for all `channels` is flowing to this node."""
        ...

    async def snapshots(self, requests: Sequence[SnapshotRequest]) -> list[Snapshot]:
        """Read the state of several channels (one round trip where possible)."""
        ...


def all_active(events: Mapping[str, asyncio.Event], channels: Sequence[str]) -> bool:
    """Whether upstream delivery is established for every channel that has a pending event
    (a channel without one is not wanted here)."""
    for channel in channels:
        event = events.get(channel)
        if event is not None and not event.is_set():
            return False
    return True


async def wait_all_active(events: Mapping[str, asyncio.Event], channels: Sequence[str]) -> None:
    for channel in channels:
        event = events.get(channel)
        if event is not None:
            await event.wait()
