"""The memory adapters pass the same contracts as the real ones."""

from __future__ import annotations

import pytest

from hub.adapters.memory.ratelimit import MemoryRateLimiter
from hub.adapters.memory.users import (
    MemoryAccounts,
    MemoryRefreshTokens,
    MemoryRegistrar,
    MemoryUsers,
)
from tests.contracts import Ports, RateLimiterContract, RepositoryContract


class TestMemoryRepositories(RepositoryContract):
    @pytest.fixture
    def ports(self) -> Ports:
        users, accounts = MemoryUsers(), MemoryAccounts()
        return Ports(users, MemoryRegistrar(users, accounts), MemoryRefreshTokens(), accounts)


class TestMemoryRateLimiter(RateLimiterContract):
    @pytest.fixture
    def limiter(self) -> MemoryRateLimiter:
        return MemoryRateLimiter()
