"""Legacy order routes: POST /orders, GET /orders/{id}, /orders/{id}/status,
PUT /orders/{id}/cancel, GET /orders/history."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from hub.domain.errors import InvalidInput, MalformedNumber, NotCancelable
from hub.domain.money import to_cents
from hub.domain.numeric import parse_int
from hub.domain.orders import (
    Order,
    OrderStatus,
    OrderType,
    Side,
    SubmitOrder,
)
from hub.domain.portfolio import round_places
from hub.domain.quotes import Quote
from hub.entrypoints.http.decimals import decimal_field, optional_decimal_field
from hub.entrypoints.http.legacy._common import (
    _SCAN,
    HISTORY_LIMIT,
    HISTORY_MAX,
    LEGACY_SIDE,
    LEGACY_STATUS,
    LEGACY_TYPE,
    ORDER_SIDE,
    ORDER_TYPE,
    PAGE_MAX,
    STATUS_MESSAGE,
    LegacyCancel,
    LegacyHistory,
    LegacyOrder,
    LegacyOrderRequest,
    LegacyOrderStatus,
    LegacySubmitted,
    _decode,
    _order_decoder,
    bad_request,
    json_numbers,
)
from hub.entrypoints.http.orders import order_id
from hub.entrypoints.http.routing import Call
from hub.services.trading_ports import OrderQuery
from hub.services.views import PRICE_PLACES


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
    try:
        quantity = decimal_field(body.quantity, "quantity")
        price = optional_decimal_field(body.price, "price")
    except MalformedNumber as exc:
        # Not a number at all is a body the original could not use: 400, as for wrong types.
        # NumberOutOfRange goes on to _order_route: 422, as Hub's other pre-trade rules.
        return bad_request(call.request, "validation_error", "Validation Error", exc.detail)
    if quantity <= 0:
        return invalid("quantity must be greater than 0")
    kind = ORDER_TYPE[body.order_type]
    if kind is OrderType.MARKET and price is not None:
        return invalid("price must not be set for MARKET orders")
    if kind is not OrderType.MARKET and price is None:
        return invalid(f"price is required for {body.order_type} orders")
    if price is not None and price <= 0:
        return invalid("price must be greater than 0")
    # The original executed STOP_LIMIT as LIMIT with one price: it is both the stop and the limit.
    return SubmitOrder(
        symbol=symbol,
        side=ORDER_SIDE[body.order_side],
        type=kind,
        qty=quantity,
        limit_price=price if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
        stop_price=price if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
    )


def _touch(side: Side, quote: Quote | None) -> Decimal | None:
    """The price an order of this side would trade at now: the ask for buys, the bid for sells."""
    if quote is None:
        return None
    price = quote.touch(side)
    return price if price > 0 else None


async def submit_order(call: Call) -> Response:
    body = await _decode(call, _order_decoder)
    if isinstance(body, Response):
        return body
    command = _command(call, body)
    if isinstance(command, Response):
        return command
    key = call.request.headers.get("idempotency-key")
    order = (await call.hub.orders.submit(call.user_id, command, key)).order
    quote = (await call.hub.market_data.quotes([command.symbol])).get(command.symbol)
    answer = LegacySubmitted(
        order_id=order.id,
        status=LEGACY_STATUS[order.status],
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
        order = await call.hub.orders.cancel(call.user_id, oid)
    except NotCancelable as exc:
        # The original answered 400 "cannot be cancelled" (our REST API: 422 not_cancelable).
        message = f"{exc.detail}: it cannot be cancelled"
        return bad_request(call.request, exc.code, "Cannot Cancel Order", message, exc.title)
    # Cancelling is asynchronous: PROCESSING now, then CANCELLED (or EXECUTED if a fill won).
    legacy_status, message = LEGACY_STATUS[order.status], STATUS_MESSAGE[order.status]
    return LegacyCancel(order.id, legacy_status, message, order.updated_at)


def _page_param(request: Request, name: str, default: int, maximum: int) -> int | Response:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return parse_int(raw, name, minimum=1, maximum=maximum)
    except InvalidInput as exc:
        return bad_request(request, "validation_error", "Validation Error", exc.detail)


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
    page = _page_param(call.request, "page", 1, PAGE_MAX)
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
