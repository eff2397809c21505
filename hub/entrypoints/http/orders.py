"""POST/GET /api/v1/orders, GET/DELETE /api/v1/orders/{id}, GET /api/v1/orders/{id}/events."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from starlette.responses import Response

from hub.domain.errors import InvalidInput, NotFound
from hub.domain.numeric import parse_int
from hub.domain.orders import OPEN_STATUSES, OrderStatus, OrderType, Side, SubmitOrder, TimeInForce
from hub.entrypoints.http.decimals import (
    DecimalText,
    OptionalDecimalText,
    absent,
    decimal_field,
    optional_decimal_field,
)
from hub.entrypoints.http.routing import Call, Operation, Param, header, operation
from hub.entrypoints.http.times import instant as instant_of
from hub.entrypoints.http.times import time_param
from hub.services.market_data import parse_symbols
from hub.services.trading_ports import OrderQuery
from hub.services.views import OrderView

MAX_PAGE = 500
IDEMPOTENCY_KEY = header(
    "Idempotency-Key",
    "makes retries safe: the same key with the same body replays the first response",
)


class OrderRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Quantities and prices as decimal strings ("10", "189.12"); JSON numbers are accepted.
    Both are read by the one strict, bounded parser (hub.domain.numeric) in `command()`."""

    symbol: Annotated[str, msgspec.Meta(min_length=1, max_length=15)]
    side: Side
    type: OrderType
    qty: DecimalText
    time_in_force: TimeInForce = TimeInForce.DAY
    limit_price: OptionalDecimalText = absent()
    stop_price: OptionalDecimalText = absent()
    client_order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None

    def command(self) -> SubmitOrder:
        """The domain command; MalformedNumber or NumberOutOfRange (422) for a bad number."""
        return SubmitOrder(
            symbol=self.symbol.strip().upper(),
            side=self.side,
            type=self.type,
            qty=decimal_field(self.qty, "qty"),
            time_in_force=self.time_in_force,
            limit_price=optional_decimal_field(self.limit_price, "limit_price"),
            stop_price=optional_decimal_field(self.stop_price, "stop_price"),
            client_order_id=self.client_order_id,
        )


class OrderPage(msgspec.Struct):
    orders: list[OrderView]
    next_cursor: str | None


class OrderEventView(msgspec.Struct):
    id: UUID
    type: str
    at: datetime
    order: OrderView


def order_id(call: Call) -> UUID:
    raw = call.request.path_params["order_id"]
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound(f"no order {raw}") from None


async def submit(call: Call) -> Response:
    body: OrderRequest = call.body
    key = call.request.headers.get("idempotency-key")
    submitted = await call.hub.orders.submit(call.user_id, body.command(), key)
    # A replay answers as the first request was answered: the same status and the order as it
    # was placed (the service keeps that), so the same bytes.
    headers = {"Idempotent-Replayed": "true"} if submitted.replayed else {}
    content = msgspec.json.encode(OrderView.of(submitted.order))
    return Response(content, 202, headers=headers, media_type="application/json")


async def get_order(call: Call) -> OrderView:
    return OrderView.of(await call.hub.orders.get(call.user_id, order_id(call)))


async def cancel_order(call: Call) -> OrderView:
    return OrderView.of(await call.hub.orders.cancel(call.user_id, order_id(call)))


async def order_events(call: Call) -> list[OrderEventView]:
    events = await call.hub.orders.events(call.user_id, order_id(call))
    return [OrderEventView(e.id, e.type.value, e.at, OrderView.of(e.order)) for e in events]


def encode_cursor(created_at: datetime, oid: UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{oid}".encode()).decode()


def decode_cursor(raw: str) -> tuple[datetime, UUID]:
    """The position a next_cursor names; InvalidInput (422) for anything this API did not
    write, including a cursor edited to hold a naive or out-of-range time."""
    try:
        at, _, oid = base64.urlsafe_b64decode(raw.encode()).decode().partition("|")
        instant = instant_of(at)
        if instant is not None:
            return instant, UUID(oid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise InvalidInput("cursor is not one this API returned", field="cursor")


STATUS_FILTERS = {
    "open": OPEN_STATUSES,
    "closed": frozenset(s for s in OrderStatus if s.is_terminal),
    "all": None,
}


async def list_orders(call: Call) -> OrderPage:
    params = dict(call.request.query_params)
    status = params.get("status", "open")
    if status not in STATUS_FILTERS and status not in OrderStatus.__members__.values():
        raise InvalidInput("status must be open, closed, all, or one order status", field="status")
    statuses = (
        STATUS_FILTERS[status] if status in STATUS_FILTERS else frozenset({OrderStatus(status)})
    )
    limit = parse_int(params.get("limit", "50"), "limit", minimum=1, maximum=MAX_PAGE)
    symbol = parse_symbols(params["symbol"])[0] if "symbol" in params else None
    cursor = decode_cursor(params["cursor"]) if "cursor" in params else None
    query = OrderQuery(
        user_id=call.user_id,
        statuses=statuses,
        symbol=symbol,
        after=time_param(params, "after"),
        until=time_param(params, "until"),
        limit=limit + 1,
        cursor=cursor,
    )
    found = await call.hub.orders.query(query)
    page, more = found[:limit], len(found) > limit
    last = page[-1] if page else None
    next_cursor = encode_cursor(last.created_at, last.id) if more and last else None
    return OrderPage([OrderView.of(o) for o in page], next_cursor)


TAGS = ("orders",)
OPERATIONS: list[Operation] = [
    operation(
        "POST",
        "/api/v1/orders",
        submit,
        "Submit an order: 202 with the order (pending_new); send an Idempotency-Key header "
        "to make retries safe",
        request=OrderRequest,
        response=OrderView,
        status=202,
        tags=TAGS,
        errors=(400, 401, 403, 413, 422),
        query=(IDEMPOTENCY_KEY,),
    ),
    operation(
        "GET",
        "/api/v1/orders",
        list_orders,
        "The caller's orders, newest first",
        response=OrderPage,
        tags=TAGS,
        errors=(401, 422),
        query=(
            Param("status", "open (default), closed, all, or a status"),
            Param("symbol", "one symbol"),
            Param("after", "created after (RFC 3339)"),
            Param("until", "created at or before (RFC 3339)"),
            Param("limit", f"1..{MAX_PAGE}, default 50"),
            Param("cursor", "next_cursor of the previous page"),
        ),
    ),
    operation(
        "GET",
        "/api/v1/orders/{order_id}",
        get_order,
        "One order",
        response=OrderView,
        tags=TAGS,
        errors=(401, 404),
    ),
    operation(
        "DELETE",
        "/api/v1/orders/{order_id}",
        cancel_order,
        "Request a cancel: 202 and pending_cancel, then canceled (or filled, if the fill "
        "won the race)",
        response=OrderView,
        status=202,
        tags=TAGS,
        errors=(401, 404, 422),
    ),
    operation(
        "GET",
        "/api/v1/orders/{order_id}/events",
        order_events,
        "The order's audit trail, oldest first",
        response=list[OrderEventView],
        tags=TAGS,
        errors=(401, 404),
    ),
]
