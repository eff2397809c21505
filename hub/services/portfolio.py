"""The caller's account, positions and portfolio, valued at the latest quotes.

Each use case reads the account and its open positions in one round trip (`holdings`); the
instruments and quotes come from the market-data service, which this process mostly answers
from memory."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from hub.domain.accounts import Account
from hub.domain.errors import NotFound
from hub.domain.instruments import Category
from hub.domain.portfolio import (
    PortfolioValuation,
    PositionValuation,
    market_value,
    rounded,
    rounded_position,
    value_portfolio,
    value_positions,
)
from hub.domain.positions import Position
from hub.domain.quotes import Quote
from hub.services.market_data import MarketDataService
from hub.services.ports import AccountRepository, Clock
from hub.services.trading_ports import Holdings, TradingReader
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

    async def valuation(self, user_id: UUID) -> PortfolioValuation:
        """Unrounded: callers that compute with it round once, at the edge."""
        holdings = await self._holdings(user_id)
        categories = await self._categories(holdings.positions)
        quotes = await self._quotes(holdings.positions)
        return value_portfolio(
            holdings.account, holdings.positions, categories, quotes, self._clock.now()
        )

    async def portfolio(self, user_id: UUID) -> PortfolioValuation:
        return rounded(await self.valuation(user_id))

    async def account_valuation(self, user_id: UUID) -> tuple[Account, PortfolioValuation]:
        """The account as stored and its portfolio valued and rounded as in `portfolio`, from
        one read (a brokerage account view needs both: ids and dates, and the values)."""
        holdings = await self._holdings(user_id)
        categories = await self._categories(holdings.positions)
        quotes = await self._quotes(holdings.positions)
        valuation = value_portfolio(
            holdings.account, holdings.positions, categories, quotes, self._clock.now()
        )
        return holdings.account, rounded(valuation)

    async def positions(self, user_id: UUID) -> list[PositionValuation]:
        """The open positions, valued and rounded as in `portfolio`, without its totals and
        categories."""
        holdings = await self._holdings(user_id)
        categories = await self._categories(holdings.positions)
        quotes = await self._quotes(holdings.positions)
        valued = value_positions(holdings.positions, categories, quotes)
        return [rounded_position(v) for v in valued]

    async def account(self, user_id: UUID) -> AccountView:
        holdings = await self._holdings(user_id)
        quotes = await self._quotes(holdings.positions)
        return AccountView.of(holdings.account, market_value(holdings.positions, quotes))

    async def _holdings(self, user_id: UUID) -> Holdings:
        holdings = await self._reader.holdings(user_id)
        if holdings is None:
            raise NotFound("no account for this user")
        return holdings

    async def _categories(self, positions: Sequence[Position]) -> dict[str, Category]:
        if not positions:
            return {}
        instruments = await self._market_data.instruments([p.symbol for p in positions])
        return {s: i.category for s, i in instruments.items()}

    async def _quotes(self, positions: Sequence[Position]) -> dict[str, Quote]:
        if not positions:
            return {}
        return await self._market_data.quotes([p.symbol for p in positions])
