"""Legacy account and market-data routes: /login, /getBalance, /getAucAggregation,
/getPortfolioSummary, /getMarketData, /getWatchlist."""

from __future__ import annotations

from starlette.responses import Response

from hub.domain.money import to_cents
from hub.domain.portfolio import CategoryAggregation, PortfolioValuation
from hub.entrypoints.http.legacy._common import (
    CATEGORY_CODE,
    LegacyAsset,
    LegacyAucAggregation,
    LegacyBalance,
    LegacyCategory,
    LegacyMarketData,
    LegacyPortfolioSummary,
    LegacyToken,
    _decode,
    _login_decoder,
    json_numbers,
)
from hub.entrypoints.http.routing import Call
from hub.services.market_data import MarketData, parse_symbols


async def login(call: Call) -> Response | LegacyToken:
    body = await _decode(call, _login_decoder)
    if isinstance(body, Response):
        return body
    client = call.request.client.host if call.request.client else "unknown"
    pair = await call.hub.auth.login(body.email, body.password, client)
    return LegacyToken(pair.access_token)


async def get_balance(call: Call) -> Response:
    account = await call.hub.portfolio.cash_account(call.user_id)
    return json_numbers(LegacyBalance(to_cents(account.buying_power)))


def _category(c: CategoryAggregation) -> LegacyCategory:
    code = CATEGORY_CODE[c.category]
    return LegacyCategory(
        category=code,
        total_invested=c.total_invested,
        current_total=c.current_total,
        pnl=c.pnl,
        pnl_percentage=c.pnl_percentage,
        assets=[
            LegacyAsset(a.symbol, a.quantity, a.average_price, a.current_price, code)
            for a in c.assets
        ],
    )


def auc_aggregation(valuation: PortfolioValuation) -> LegacyAucAggregation:
    """The original's "AUC aggregation" of a rounded valuation."""
    return LegacyAucAggregation(
        total_invested=valuation.total_invested,
        current_total=valuation.market_value,
        position_aggregation=[_category(c) for c in valuation.categories],
    )


async def get_auc_aggregation(call: Call) -> Response:
    return json_numbers(auc_aggregation(await call.hub.portfolio.portfolio(call.user_id)))


async def get_portfolio_summary(call: Call) -> Response:
    valuation = await call.hub.portfolio.portfolio(call.user_id)
    summary = LegacyPortfolioSummary(
        balance=LegacyBalance(valuation.buying_power),
        total_portfolio=valuation.buying_power + valuation.market_value,
        last_updated_date=valuation.as_of,
        position_aggregation=auc_aggregation(valuation),
    )
    return json_numbers(summary)


def legacy_market_data(items: list[MarketData]) -> list[LegacyMarketData]:
    return [
        LegacyMarketData(
            symbol=md.instrument.symbol,
            name=md.instrument.name,
            last_quote=md.quote.last if md.quote else 0,
            category=CATEGORY_CODE[md.instrument.category],
        )
        for md in items
    ]


async def get_market_data(call: Call) -> Response:
    symbols = parse_symbols(call.request.query_params.get("symbols"))
    return json_numbers(legacy_market_data(await call.hub.market_data.market_data(symbols)))


async def get_watchlist(call: Call) -> Response:
    """The symbols of the user's first watchlist (the default one made at registration)."""
    watchlists = await call.hub.watchlists.for_user(call.user_id)
    symbols = list(watchlists[0].symbols) if watchlists else []
    items = await call.hub.market_data.market_data(symbols) if symbols else []
    return json_numbers(legacy_market_data(items))


# --- orders -----------------------------------------------------------------------------------
