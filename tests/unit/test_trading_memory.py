"""The memory trading stores pass the same contract as PostgreSQL."""

from __future__ import annotations

import pytest

from hub.adapters.memory.trading import MemoryTrading, MemoryTradingReader
from hub.adapters.memory.users import MemoryAccounts, MemoryRegistrar, MemoryUsers
from tests.contracts import make_account, make_user
from tests.order_query_suite import OrderQueryContract
from tests.trading_suite import BatchContract, OrderDeskContract, Stores, TradingStoreContract


class TestMemoryTrading(TradingStoreContract, OrderDeskContract, BatchContract, OrderQueryContract):
    @pytest.fixture
    async def stores(self) -> Stores:
        users, accounts = MemoryUsers(), MemoryAccounts()
        user = make_user()
        account = make_account(user)
        await MemoryRegistrar(users, accounts).add_user_with_account(user, account)
        state = MemoryTrading(accounts)
        return Stores(state.unit_of_work, MemoryTradingReader(state), state, account, state)
