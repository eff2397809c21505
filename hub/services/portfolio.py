"""The caller's account, positions and portfolio, valued at the latest quotes."""

from __future__ import annotations

from uuid import UUID

from hub.domain.accounts import Account
from hub.domain.errors import NotFound
from hub.domain.portfolio import PortfolioValuation, rounded, value_portfolio
from hub.services.market_data import MarketDataService
from hub.services.ports import AccountRepository, Clock
from hub.services.trading_ports import TradingReader
from hub.services.views import AccountView


class PortfolioService:
    def __init__(
        self,
        accounts: AccountRepository,
        reader: TradingReader,
        market_data: MarketDataService,
        clock: Clock,
    ) -> None:
        self._accounts = accounts
        self._reader = reader
        self._market_data = market_data
        self._clock = clock

    async def cash_account(self, user_id: UUID) -> Account:
        """The account as stored: cash and reservations, not valued."""
        account = await self._accounts.for_user(user_id)
        if account is None:
            raise NotFound("no account for this user")
        return account

    async def valuation(self, user_id: UUID, account: Account | None = None) -> PortfolioValuation:
        """Unrounded: callers that compute with it round once, at the edge."""
        account = account or await self.cash_account(user_id)
        positions = [p for p in await self._reader.positions(account.id) if p.qty > 0]
        symbols = [p.symbol for p in positions]
        instruments = await self._market_data.instruments(symbols) if symbols else {}
        quotes = await self._market_data.quotes(symbols) if symbols else {}
        categories = {s: i.category for s, i in instruments.items()}
        return value_portfolio(account, positions, categories, quotes, self._clock.now())

    async def portfolio(self, user_id: UUID) -> PortfolioValuation:
        return rounded(await self.valuation(user_id))

    async def account(self, user_id: UUID) -> AccountView:
        account = await self.cash_account(user_id)
        valuation = await self.valuation(user_id, account)
        return AccountView.of(account, valuation.market_value)
