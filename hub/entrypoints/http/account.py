"""GET /api/v1/account, /api/v1/positions and /api/v1/portfolio: valued at the latest quotes."""

from __future__ import annotations

from hub.domain.portfolio import PortfolioValuation, PositionValuation
from hub.entrypoints.http.routing import Call, Operation, operation
from hub.services.views import AccountView


async def get_account(call: Call) -> AccountView:
    return await call.hub.portfolio.account(call.user_id)


async def get_positions(call: Call) -> list[PositionValuation]:
    return await call.hub.portfolio.positions(call.user_id)


async def get_portfolio(call: Call) -> PortfolioValuation:
    return await call.hub.portfolio.portfolio(call.user_id)


TAGS = ("portfolio",)
OPERATIONS: list[Operation] = [
    operation(
        "GET",
        "/api/v1/account",
        get_account,
        "Cash, reserved cash, buying power and equity of the caller's account",
        response=AccountView,
        tags=TAGS,
        errors=(401,),
    ),
    operation(
        "GET",
        "/api/v1/positions",
        get_positions,
        "Open positions valued at the latest quotes",
        response=list[PositionValuation],
        tags=TAGS,
        errors=(401,),
    ),
    operation(
        "GET",
        "/api/v1/portfolio",
        get_portfolio,
        "Account, positions, totals and the aggregation by category, valued now (as_of)",
        response=PortfolioValuation,
        tags=TAGS,
        errors=(401,),
    ),
]
