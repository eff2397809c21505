"""The portfolio use cases on memory adapters: /account, /positions and /portfolio each compute
only what they answer, and must still agree with one another."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from msgspec.structs import replace

from hub.adapters.memory.market import MemoryInstruments, MemoryQuotes
from hub.adapters.memory.trading import MemoryTrading, MemoryTradingReader
from hub.adapters.memory.users import MemoryAccounts
from hub.adapters.seed import seed_instruments
from hub.domain.errors import NotFound
from hub.domain.positions import empty_position
from hub.services.market_data import MarketDataService
from hub.services.portfolio import PortfolioService
from hub.services.views import AccountView
from tests.contracts import make_account, make_user
from tests.market_suite import quote

AS_OF = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return AS_OF


async def test_account_positions_and_portfolio_agree() -> None:
    accounts = MemoryAccounts()
    user = make_user()
    account = replace(make_account(user, "98765.4321"), reserved_cash=Decimal("1000.5"))
    await accounts.add(account)
    state = MemoryTrading(accounts)
    empty = empty_position(account.id, user.id, "AAPL")
    async with state.unit_of_work() as uow:
        for symbol, qty, avg in (
            ("AAPL", "10", "150.123456789"),
            ("BTC-USD", "0.01000000", "65000.12"),
            ("VOO", "3.0", "400"),
            ("GLD", "2", "180.555"),  # no quote: valued at cost
            ("MSFT", "0", "0"),  # flat: not shown
        ):
            await uow.save_position(
                replace(empty, symbol=symbol, qty=Decimal(qty), avg_entry_price=Decimal(avg))
            )
        await uow.commit()
    quotes = MemoryQuotes()
    for symbol, last in (("AAPL", "189.46"), ("BTC-USD", "70123.45"), ("VOO", "401.23")):
        await quotes.put(quote(symbol, last))
    market = MarketDataService(
        MemoryInstruments(s.instrument for s in seed_instruments()), None, quotes
    )
    service = PortfolioService(accounts, MemoryTradingReader(state), market, FixedClock())

    portfolio = await service.portfolio(user.id)
    assert [p.symbol for p in portfolio.positions] == ["AAPL", "BTC-USD", "GLD", "VOO"]
    assert await service.positions(user.id) == list(portfolio.positions)
    valuation = await service.valuation(user.id)
    assert await service.account(user.id) == AccountView.of(account, valuation.market_value)
    assert (await service.account(user.id)).equity == portfolio.equity
    for use_case in (service.account, service.positions, service.portfolio, service.valuation):
        with pytest.raises(NotFound):
            await use_case(uuid.uuid4())
