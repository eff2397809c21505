"""The memory bar store passes the bar store contract."""

from __future__ import annotations

import pytest

from hub.adapters.memory.bars import MemoryBars
from tests.bars_suite import BarStoreContract


class TestMemoryBars(BarStoreContract):
    @pytest.fixture
    def store(self) -> MemoryBars:
        return MemoryBars()
