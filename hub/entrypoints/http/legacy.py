"""The original Go server's routes, same paths and JSON shapes, served by the same services, so
its clients keep working (docs/legacy.md lists every route and every difference).

What stays as the original had it: paths, field names (Go's, including the PascalCase of the
untagged structs), money and quantities as JSON numbers, the account routes answering any method,
upper-case order enums and statuses. What does not: every error is problem JSON with a stable
`code` (the original mostly sent plain text), auth has no localhost bypass, and the order routes
run on the real order pipeline (balance checks, fills, a real history)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from hub.domain.errors import HubError
from hub.domain.instruments import Category
from hub.domain.money import to_cents
from hub.domain.orders import (
    NotCancelable,
    Order,
    OrderStatus,
    OrderType,
    Side,
    SubmitOrder,
)
from hub.domain.portfolio import CategoryAggregation, PortfolioValuation, round_places
from hub.domain.quotes import Quote
from hub.entrypoints.http.orders import order_id
from hub.entrypoints.http.problems import MEDIA_TYPE, from_hub_error, problem
from hub.entrypoints.http.routing import Call, Handler, Operation, Param, operation, read_body
from hub.services.market_data import MarketData, parse_symbols
from hub.services.trading_ports import OrderQuery
from hub.services.views import PRICE_PLACES, OrderView

T = TypeVar("T")

ANY = ("GET", "POST", "PUT", "PATCH", "DELETE")
# The original stored category as an integer: 1 stock, 2 ETF; crypto is new here.
CATEGORY_CODE = {Category.STOCK: 1, Category.ETF: 2, Category.CRYPTO: 3}
# Go encoded its float64 fields as JSON numbers; we keep the shape but write the exact decimal.
_numbers = msgspec.json.Encoder(decimal_format="number")
# A field written as a JSON number from a Decimal (never through float). Typed Any because
# msgspec documents Decimal as a string; the value is always a Decimal.
Number = Annotated[Any, msgspec.Meta(extra_json_schema={"type": "number"})]

LEGACY_TYPE = {
    OrderType.MARKET: "MARKET",
    OrderType.LIMIT: "LIMIT",
    OrderType.STOP: "STOP_LOSS",
    OrderType.STOP_LIMIT: "STOP_LIMIT",
}
ORDER_TYPE = {legacy: ours for ours, legacy in LEGACY_TYPE.items()}
LEGACY_SIDE = {Side.BUY: "BUY", Side.SELL: "SELL"}
ORDER_SIDE = {legacy: ours for ours, legacy in LEGACY_SIDE.items()}
# The original's five statuses (PENDING -> PROCESSING -> EXECUTED | FAILED | CANCELLED).
LEGACY_STATUS = {
    OrderStatus.PENDING_NEW: "PENDING",
    OrderStatus.NEW: "PROCESSING",
    OrderStatus.PARTIALLY_FILLED: "PROCESSING",
    OrderStatus.PENDING_CANCEL: "PROCESSING",
    OrderStatus.FILLED: "EXECUTED",
    OrderStatus.REJECTED: "FAILED",
    OrderStatus.EXPIRED: "FAILED",
    OrderStatus.CANCELED: "CANCELLED",
}
STATUS_MESSAGE = {
    OrderStatus.PENDING_NEW: "Order received and waiting to be processed",
    OrderStatus.NEW: "Order is being processed",
    OrderStatus.PARTIALLY_FILLED: "Order is partially executed",
    OrderStatus.PENDING_CANCEL: "Cancellation requested",
    OrderStatus.FILLED: "Order executed",
    OrderStatus.REJECTED: "Order failed",
    OrderStatus.EXPIRED: "Order expired",
    OrderStatus.CANCELED: "Order cancelled",
}
HISTORY_LIMIT, HISTORY_MAX = 20, 100
_SCAN = 500  # orders read per query while counting a user's history


def json_numbers(body: Any, status: int = 200) -> Response:
    return Response(_numbers.encode(body), status, media_type="application/json")


# --- shapes (the OpenAPI schemas too) ------------------------------------------------------


class LegacyMarketData(
    msgspec.Struct,
    rename={"symbol": "Symbol", "name": "Name", "last_quote": "LastQuote", "category": "Category"},
):
    symbol: str
    name: str
    last_quote: Number
    category: int


class LegacyLoginRequest(msgspec.Struct):
    email: Annotated[str, msgspec.Meta(max_length=254)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]


class LegacyToken(msgspec.Struct):
    token: str


class LegacyBalance(msgspec.Struct, rename="camel"):
    available_balance: Number


class LegacyAsset(msgspec.Struct, rename="camel"):
    symbol: str
    quantity: Number
    average_price: Number
    current_price: Number
    category: int


class LegacyCategory(msgspec.Struct, rename="camel"):
    category: int
    total_invested: Number
    current_total: Number
    pnl: Number
    pnl_percentage: Number
    assets: list[LegacyAsset]


class LegacyAucAggregation(msgspec.Struct, rename="camel"):
    total_invested: Number
    current_total: Number
    position_aggregation: list[LegacyCategory]


class LegacyPortfolioSummary(msgspec.Struct, rename="pascal"):
    balance: LegacyBalance
    total_portfolio: Number
    last_updated_date: datetime
    position_aggregation: LegacyAucAggregation


class LegacyOrderRequest(msgspec.Struct):
    symbol: str
    order_type: str  # MARKET | LIMIT | STOP_LOSS | STOP_LIMIT
    order_side: str  # BUY | SELL
    quantity: Decimal
    price: Decimal | None = None


class LegacySubmitted(msgspec.Struct, kw_only=True, omit_defaults=True):
    order_id: UUID
    status: str
    message: str
    estimated_price: Number | None = None
    market_price: Number | None = None
    submitted_at: datetime


class LegacyOrder(msgspec.Struct, kw_only=True, omit_defaults=True):
    order_id: UUID
    user_id: UUID
    symbol: str
    order_type: str
    order_side: str
    quantity: Number
    price: Number | None = None
    status: str
    created_at: datetime
    updated_at: datetime
    executed_at: datetime | None = None
    execution_price: Number | None = None
    estimated_value: Number
    execution_value: Number | None = None


class LegacyOrderStatus(msgspec.Struct):
    order_id: UUID
    status: str
    message: str
    updated_at: datetime
    can_cancel: bool


class LegacyCancel(msgspec.Struct):
    order_id: UUID
    status: str
    message: str
    updated_at: datetime


class LegacyHistory(msgspec.Struct):
    orders: list[LegacyOrder]
    total: int
    page: int
    limit: int


_login_decoder = msgspec.json.Decoder(LegacyLoginRequest)
_order_decoder = msgspec.json.Decoder(LegacyOrderRequest)


# --- errors: problem JSON, plus the original's "error" and "message" keys --------------------


def bad_request(
    request: Request, code: str, error: str, message: str, title: str | None = None
) -> Response:
    """400 problem JSON carrying the original's `error` and `message` keys as extensions."""
    path = request.url.path
    return problem(400, code, message, title=title, instance=path, error=error, message=message)


def _with_legacy_keys(request: Request, exc: HubError) -> Response:
    base = from_hub_error(request, exc)
    body = {**msgspec.json.decode(base.body), "error": exc.title, "message": exc.detail}
    kept = {k: v for k, v in base.headers.items() if k not in ("content-length", "content-type")}
    return Response(msgspec.json.encode(body), base.status_code, kept, media_type=MEDIA_TYPE)


def _order_route(handler: Handler) -> Handler:
    """The original's order routes answered errors as {"error", "message", "code"}: keep the
    first two in the problem body so old clients still find them."""

    async def wrapped(call: Call) -> Any:
        try:
            return await handler(call)
        except HubError as exc:
            return _with_legacy_keys(call.request, exc)

    return wrapped


async def _decode(call: Call, decoder: msgspec.json.Decoder[T]) -> T | Response:
    """The body, or a 400: the original answered 400 to any body it could not use."""
    raw = await read_body(call.request, call.hub.settings.max_body_bytes)
    if isinstance(raw, Response):
        return raw
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        return bad_request(call.request, "validation_error", "Validation Error", str(exc))
    except msgspec.DecodeError as exc:
        detail = f"the request body is not valid JSON: {exc}"
        return bad_request(call.request, "malformed_json", "Invalid JSON", detail)


# --- login, balance, portfolio, market data, watchlist ---------------------------------------


async def login(call: Call) -> Response | LegacyToken:
    body = await _decode(call, _login_decoder)
    if isinstance(body, Response):
        return body
    client = call.request.client.host if call.request.client else "unknown"
    pair = await call.hub.auth.login(body.email, body.password, client)
    return LegacyToken(pair.access_token)


async def get_balance(call: Call) -> Response:
    account = await call.hub.accounts.get(call.user_id)
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


def _command(call: Call, body: LegacyOrderRequest) -> SubmitOrder | Response:
    """The original's handler validation, as a 400; everything else is the order service's."""

    def invalid(message: str) -> Response:
        return bad_request(call.request, "invalid_order", "Validation Error", message)

    symbol = body.symbol.strip().upper()
    if not symbol:
        return invalid("symbol is required")
    if body.order_type not in ORDER_TYPE:
        return invalid(f"invalid order_type: {body.order_type}")
    if body.order_side not in ORDER_SIDE:
        return invalid(f"invalid order_side: {body.order_side}")
    if not (body.quantity.is_finite() and body.quantity > 0):
        return invalid("quantity must be greater than 0")
    kind, price = ORDER_TYPE[body.order_type], body.price
    if kind is OrderType.MARKET and price is not None:
        return invalid("price must not be set for MARKET orders")
    if kind is not OrderType.MARKET and price is None:
        return invalid(f"price is required for {body.order_type} orders")
    if price is not None and not (price.is_finite() and price > 0):
        return invalid("price must be greater than 0")
    # The original executed STOP_LIMIT as LIMIT with one price: it is both the stop and the limit.
    return SubmitOrder(
        symbol=symbol,
        side=ORDER_SIDE[body.order_side],
        type=kind,
        qty=body.quantity,
        limit_price=price if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
        stop_price=price if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
    )


def _touch(side: Side, quote: Quote | None) -> Decimal | None:
    """The price an order of this side would trade at now: the ask for buys, the bid for sells."""
    if quote is None:
        return None
    price = quote.ask if side is Side.BUY else quote.bid
    return price if price > 0 else None


async def submit_order(call: Call) -> Response:
    body = await _decode(call, _order_decoder)
    if isinstance(body, Response):
        return body
    command = _command(call, body)
    if isinstance(command, Response):
        return command
    key = call.request.headers.get("idempotency-key")
    submitted = await call.hub.orders.submit(call.user_id, command, key)
    order = msgspec.json.decode(submitted.body, type=OrderView)
    quote = (await call.hub.market_data.quotes([command.symbol])).get(command.symbol)
    answer = LegacySubmitted(
        order_id=order.id,
        status=LEGACY_STATUS[OrderStatus(order.status)],
        message="Order submitted for processing",
        estimated_price=_touch(command.side, quote),
        market_price=quote.last if quote is not None and quote.last > 0 else None,
        submitted_at=order.created_at,
    )
    return json_numbers(answer, 202)


def _price(order: Order) -> Decimal | None:
    return order.limit_price if order.limit_price is not None else order.stop_price


def _estimated_value(order: Order, quotes: dict[str, Quote]) -> Decimal:
    """qty x the order's own price; for a market order its fill price, else the touch now."""
    unit = _price(order)
    if unit is None:
        unit = order.filled_avg_price
    if unit is None:
        unit = _touch(order.side, quotes.get(order.symbol))
    return to_cents(order.qty * (unit if unit is not None else Decimal(0)))


def _needs_quote(order: Order) -> bool:
    return _price(order) is None and order.filled_avg_price is None


async def _quotes_for(call: Call, orders: Iterable[Order]) -> dict[str, Quote]:
    symbols = sorted({o.symbol for o in orders if _needs_quote(o)})
    return await call.hub.market_data.quotes(symbols) if symbols else {}


def legacy_order(order: Order, quotes: dict[str, Quote]) -> LegacyOrder:
    avg, filled = order.filled_avg_price, order.filled_qty > 0
    return LegacyOrder(
        order_id=order.id,
        user_id=order.user_id,
        symbol=order.symbol,
        order_type=LEGACY_TYPE[order.type],
        order_side=LEGACY_SIDE[order.side],
        quantity=order.qty,
        price=_price(order),
        status=LEGACY_STATUS[order.status],
        created_at=order.created_at,
        updated_at=order.updated_at,
        executed_at=order.filled_at,
        execution_price=round_places(avg, PRICE_PLACES) if avg is not None and filled else None,
        estimated_value=_estimated_value(order, quotes),
        execution_value=to_cents(order.filled_qty * avg) if avg is not None and filled else None,
    )


async def get_order(call: Call) -> Response:
    order = await call.hub.orders.get(call.user_id, order_id(call))
    return json_numbers(legacy_order(order, await _quotes_for(call, [order])))


def _can_cancel(status: OrderStatus) -> bool:
    return not status.is_terminal and status is not OrderStatus.PENDING_CANCEL


def _message(order: Order) -> str:
    message = STATUS_MESSAGE[order.status]
    return f"{message}: {order.reject_reason}" if order.reject_reason else message


async def get_order_status(call: Call) -> LegacyOrderStatus:
    order = await call.hub.orders.get(call.user_id, order_id(call))
    return LegacyOrderStatus(
        order.id,
        LEGACY_STATUS[order.status],
        _message(order),
        order.updated_at,
        _can_cancel(order.status),
    )


async def cancel_order(call: Call) -> Response | LegacyCancel:
    oid = order_id(call)
    try:
        view = await call.hub.orders.cancel(call.user_id, oid)
    except NotCancelable as exc:
        # The original answered 400 "cannot be cancelled" (our REST API: 422 not_cancelable).
        message = f"{exc.detail}: it cannot be cancelled"
        return bad_request(call.request, exc.code, "Cannot Cancel Order", message, exc.title)
    # Cancelling is asynchronous: PROCESSING now, then CANCELLED (or EXECUTED if a fill won).
    status = OrderStatus(view.status)
    return LegacyCancel(view.id, LEGACY_STATUS[status], STATUS_MESSAGE[status], view.updated_at)


def _page_param(request: Request, name: str, default: int, maximum: int | None) -> int | Response:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = int(raw) if raw.isdigit() else 0
    if value < 1 or (maximum is not None and value > maximum):
        bound = f"from 1 to {maximum}" if maximum is not None else "of at least 1"
        message = f"{name} must be a whole number {bound}"
        return bad_request(request, "validation_error", "Validation Error", message)
    return value


async def _all_orders(call: Call) -> list[Order]:
    """Every order of the caller, newest first (read in chunks through the cursor)."""
    found: list[Order] = []
    cursor: tuple[datetime, UUID] | None = None
    while True:
        query = OrderQuery(
            user_id=call.user_id,
            statuses=None,
            symbol=None,
            after=None,
            until=None,
            limit=_SCAN,
            cursor=cursor,
        )
        chunk = await call.hub.orders.query(query)
        found += chunk
        if len(chunk) < _SCAN:
            return found
        cursor = (chunk[-1].created_at, chunk[-1].id)


async def get_order_history(call: Call) -> Response:
    page = _page_param(call.request, "page", 1, None)
    if isinstance(page, Response):
        return page
    limit = _page_param(call.request, "limit", HISTORY_LIMIT, HISTORY_MAX)
    if isinstance(limit, Response):
        return limit
    orders = await _all_orders(call)
    shown = orders[(page - 1) * limit : page * limit]
    quotes = await _quotes_for(call, shown)
    history = LegacyHistory([legacy_order(o, quotes) for o in shown], len(orders), page, limit)
    return json_numbers(history)


# --- the table ---------------------------------------------------------------------------------


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
            query=(Param("Idempotency-Key", "header: replays the first response", where="header"),),
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
