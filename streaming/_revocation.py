"""Session revocation across nodes.

`Engine.revoke(sid)` publishes the sid on an internal reliable channel that every engine
follows through its broker (the same path publications take, so it reaches every node, and a
node that reconnects to the broker replays what it missed from the channel's history). Each node
ends its local streams of that sid and remembers the sid for a while, so that a still-unexpired
access token of the revoked session cannot open a new stream there either.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec

from streaming.errors import StreamingError
from streaming.publication import Publication
from streaming.subscriber import Subscriber

#: The control channel. Clients can never subscribe to it (Session.subscribe refuses it).
CHANNEL = "_revoked"
#: Revoked sids remembered per node; beyond this the oldest are forgotten first.
MAX_REMEMBERED = 100_000

log = logging.getLogger("streaming.revocation")
_sid = msgspec.json.Decoder(str)


class Revocations:
    """The control channel's sink, and the node's memory of revoked sids (oldest first)."""

    def __init__(self, ttl: float, on_revoked: Callable[[str], None]) -> None:
        self._ttl = ttl
        self._on_revoked = on_revoked
        self._forget_at: dict[str, float] = {}

    def __contains__(self, sid: str) -> bool:
        forget_at = self._forget_at.get(sid)
        return forget_at is not None and forget_at > time.monotonic()

    def add(self, sid: str) -> None:
        """Remember `sid` and end its streams (once: a node hears its own revocations again)."""
        now = time.monotonic()
        known = sid in self
        # Every entry has the same lifetime, so insertion order is expiry order.
        remembered = self._forget_at
        while remembered:
            oldest = next(iter(remembered))
            if remembered[oldest] > now and len(remembered) < MAX_REMEMBERED:
                break
            del remembered[oldest]
        remembered.pop(sid, None)
        remembered[sid] = now + self._ttl
        if not known:
            self._on_revoked(sid)

    # --- Sink of the control channel --------------------------------------------------------

    def deliver(self, subscriber: Subscriber, publication: Publication) -> None:
        try:
            sid = _sid.decode(publication.data)
        except msgspec.DecodeError:
            log.warning("ignoring a malformed revocation: %r", publication)
            return
        self.add(sid)

    def subscribed(self, subscriber: Subscriber, seq: int, recovered: bool | None) -> None:
        pass

    def lost(self, subscriber: Subscriber, error: StreamingError) -> None:
        # Live delivery continues; revocations published during the gap may not have reached
        # this node (its streams then end at their token's expiry, at the latest).
        log.warning("revocations may have been missed: %s", error)
