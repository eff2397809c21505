"""Channel kinds: the delivery policy attached to every channel."""

from __future__ import annotations

import enum


class ChannelKind(enum.Enum):
    """How a channel's publications are buffered for a subscriber that falls behind."""

    #: Only the newest value matters (quotes): pending values are conflated, the current value is
    #: sent on subscribe, and a slow reader skips straight to the newest.
    LATEST = "latest"
    #: Every publication matters (order events): never dropped, numbered, kept in a bounded
    #: history for recovery; a reader that overflows its buffer is disconnected instead.
    RELIABLE = "reliable"
