"""The memory bar store passes the bar store contract, and the feed builds bars over it."""

from __future__ import annotations

import pytest

from hub.adapters.memory.bars import MemoryBars
from tests.bar_feed_suite import BarFeedContract
from tests.bars_suite import BarStoreContract


class TestMemoryBars(BarStoreContract):
    @pytest.fixture
    def store(self) -> MemoryBars:
        return MemoryBars()


class TestMemoryBarFeed(BarFeedContract):
    @pytest.fixture
    def store(self) -> MemoryBars:
        return MemoryBars()
