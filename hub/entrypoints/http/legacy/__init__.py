"""The original Go server's routes, same paths and JSON shapes, served by the same services, so
its clients keep working (docs/legacy.md lists every route and every difference).

What stays as the original had it: paths, field names (Go's, including the PascalCase of the
untagged structs), money and quantities as JSON numbers, the account routes answering any method,
upper-case order enums and statuses. What does not: every error is problem JSON with a stable
`code` (the original mostly sent plain text), auth has no localhost bypass, and the order routes
run on the real order pipeline (balance checks, fills, a real history)."""

from __future__ import annotations

import dataclasses

from hub.entrypoints.http.legacy._common import (
    ANY,
    HISTORY_LIMIT,
    HISTORY_MAX,
    LEGACY_STATUS,
    LEGACY_TYPE,
    ORDER_TYPE,
    LegacyAucAggregation,
    LegacyBalance,
    LegacyCancel,
    LegacyHistory,
    LegacyLoginRequest,
    LegacyMarketData,
    LegacyOrder,
    LegacyOrderRequest,
    LegacyOrderStatus,
    LegacyPortfolioSummary,
    LegacySubmitted,
    LegacyToken,
    _order_route,
)
from hub.entrypoints.http.legacy.account import (
    get_auc_aggregation,
    get_balance,
    get_market_data,
    get_portfolio_summary,
    get_watchlist,
    login,
)
from hub.entrypoints.http.legacy.orders import (
    cancel_order,
    get_order,
    get_order_history,
    get_order_status,
    submit_order,
)
from hub.entrypoints.http.orders import IDEMPOTENCY_KEY
from hub.entrypoints.http.routing import Operation, Param, operation

__all__ = ["LEGACY_STATUS", "LEGACY_TYPE", "OPERATIONS", "ORDER_TYPE"]


def _decoded_by_handler(op: Operation) -> Operation:
    """Document the request body, but let the handler decode it: legacy routes answer 400 to any
    body they cannot use, as the original did (the shared decoder answers 422 to wrong types)."""
    return dataclasses.replace(op, decoder=None)


TAGS = ("legacy",)
ORDER = "/orders/{order_id}"
OPERATIONS: list[Operation] = [
    _decoded_by_handler(
        operation(
            "POST",
            "/login",
            login,
            "Legacy: {email, password} -> {token} (the access JWT); any method",
            request=LegacyLoginRequest,
            response=LegacyToken,
            auth=False,
            tags=TAGS,
            methods=("GET", "PUT", "PATCH", "DELETE"),
            errors=(400, 401, 413, 429),
        )
    ),
    operation(
        "GET",
        "/getBalance",
        get_balance,
        "Legacy: {availableBalance} (buying power: cash not reserved by open buys)",
        response=LegacyBalance,
        tags=TAGS,
        methods=ANY[1:],
        errors=(401,),
    ),
    operation(
        "GET",
        "/getAucAggregation",
        get_auc_aggregation,
        "Legacy: positions valued now, aggregated by category (1 stock, 2 ETF, 3 crypto)",
        response=LegacyAucAggregation,
        tags=TAGS,
        methods=ANY[1:],
        errors=(401,),
    ),
    operation(
        "GET",
        "/getPortfolioSummary",
        get_portfolio_summary,
        "Legacy: Balance, TotalPortfolio (balance + current total), LastUpdatedDate and "
        "PositionAggregation",
        response=LegacyPortfolioSummary,
        tags=TAGS,
        methods=ANY[1:],
        errors=(401,),
    ),
    operation(
        "GET",
        "/getMarketData",
        get_market_data,
        "Legacy: [{Symbol, Name, LastQuote, Category}] for ?symbols=",
        response=list[LegacyMarketData],
        tags=TAGS,
        methods=ANY[1:],
        errors=(401, 422),
        query=(Param("symbols", "comma-separated symbols", True),),
    ),
    operation(
        "GET",
        "/getWatchlist",
        get_watchlist,
        "Legacy: [{Symbol, Name, LastQuote, Category}] for the user's first watchlist",
        response=list[LegacyMarketData],
        tags=TAGS,
        methods=ANY[1:],
        errors=(401,),
    ),
    _decoded_by_handler(
        operation(
            "POST",
            "/orders",
            _order_route(submit_order),
            "Legacy: submit an order; 202 {order_id, status, message, estimated_price, "
            "market_price, submitted_at}",
            request=LegacyOrderRequest,
            response=LegacySubmitted,
            status=202,
            tags=TAGS,
            errors=(400, 401, 403, 413, 422),
            query=(IDEMPOTENCY_KEY,),
        )
    ),
    # Before /orders/{order_id}, which would otherwise take "history" for an order id.
    operation(
        "GET",
        "/orders/history",
        _order_route(get_order_history),
        "Legacy: the caller's orders, newest first, by page",
        response=LegacyHistory,
        tags=TAGS,
        errors=(400, 401),
        query=(
            Param("page", "from 1, default 1", schema={"type": "integer", "minimum": 1}),
            Param(
                "limit",
                f"1..{HISTORY_MAX}, default {HISTORY_LIMIT}",
                schema={"type": "integer", "minimum": 1, "maximum": HISTORY_MAX},
            ),
        ),
    ),
    operation(
        "GET",
        ORDER,
        _order_route(get_order),
        "Legacy: one order",
        response=LegacyOrder,
        tags=TAGS,
        errors=(401, 404),
    ),
    operation(
        "GET",
        ORDER + "/status",
        _order_route(get_order_status),
        "Legacy: an order's status and whether it can still be cancelled",
        response=LegacyOrderStatus,
        tags=TAGS,
        errors=(401, 404),
    ),
    operation(
        "PUT",
        ORDER + "/cancel",
        _order_route(cancel_order),
        "Legacy: request a cancel (PROCESSING, then CANCELLED); 400 once the order is final",
        response=LegacyCancel,
        tags=TAGS,
        errors=(400, 401, 404),
    ),
]
