"""/v2/orders: submit, list (a bare array), get by id or client order id, cancel one or all.

Every route calls the same OrderService as /api/v1/orders: one order path, one set of checks.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
from starlette.responses import Response

from hub.domain.errors import HubError, InvalidInput, NotFound
from hub.domain.instruments import Category
from hub.domain.orders import OPEN_STATUSES, Order, OrderStatus, Side
from hub.entrypoints.http.alpaca import errors, params
from hub.entrypoints.http.alpaca.order_shapes import OrderOut, OrderRequest
from hub.entrypoints.http.alpaca.routing import respond, route
from hub.entrypoints.http.routing import Call
from hub.services.market_data import MarketDataService
from hub.services.trading_ports import OrderQuery

MAX_PAGE = 500
_CANCEL_ALL_PAGES = 20  # of MAX_PAGE open orders: far more than one account holds
_STATUSES: dict[str, frozenset[OrderStatus] | None] = {
    "open": OPEN_STATUSES,
    "closed": frozenset(s for s in OrderStatus if s.is_terminal),
    "all": None,
}


async def shaped(market_data: MarketDataService, orders: Sequence[Order]) -> list[OrderOut]:
    """Alpaca's shape of each order (its asset class needs the instrument: read once)."""
    found = await market_data.instruments(sorted({o.symbol for o in orders}))
    return [
        OrderOut.of(o, found[o.symbol].category if o.symbol in found else Category.STOCK)
        for o in orders
    ]


async def one(call: Call, order: Order) -> OrderOut:
    (out,) = await shaped(call.hub.market_data, [order])
    return out


def order_id(call: Call) -> uuid.UUID:
    raw = call.request.path_params["order_id"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"no order {raw}") from None


async def submit(call: Call) -> OrderOut:
    body: OrderRequest = call.body
    key = call.request.headers.get("idempotency-key")
    submitted = await call.hub.orders.submit(call.user_id, body.command(), key)
    return await one(call, submitted.order)


async def list_orders(call: Call) -> list[OrderOut]:
    query = dict(call.request.query_params)
    status = query.get("status", "open").strip().lower() or "open"
    if status not in _STATUSES:
        raise InvalidInput("status must be open, closed or all", field="status")
    wanted = params.symbols(query["symbols"]) if query.get("symbols") else None
    found = await call.hub.orders.query(
        OrderQuery(
            user_id=call.user_id,
            statuses=_STATUSES[status],
            symbol=None,
            after=params.instant(query, "after"),
            until=params.instant(query, "until"),
            limit=params.integer(query, "limit", 50, MAX_PAGE),
            cursor=None,
            symbols=frozenset(wanted) if wanted else None,
            side=params.choice(query, "side", Side, None),
            ascending=params.ascending(query),
        )
    )
    return await shaped(call.hub.market_data, found)


async def get_order(call: Call) -> OrderOut:
    return await one(call, await call.hub.orders.get(call.user_id, order_id(call)))


async def by_client_order_id(call: Call) -> OrderOut:
    wanted = call.request.query_params.get("client_order_id", "")
    if not wanted:
        raise NotFound("send client_order_id")
    try:
        order = await call.hub.orders.by_client_order_id(call.user_id, wanted)
    except NotFound:
        # An order placed through another API without one shows its id as client_order_id.
        try:
            order = await call.hub.orders.get(call.user_id, uuid.UUID(wanted))
        except ValueError:
            raise NotFound(f"no order with client_order_id {wanted!r}") from None
        if order.client_order_id is not None:
            raise
    return await one(call, order)


async def cancel(call: Call) -> None:
    await call.hub.orders.cancel(call.user_id, order_id(call))


class CancelStatus(msgspec.Struct):
    id: uuid.UUID
    status: int
    body: Any


async def cancel_all(call: Call) -> Response:
    """207, one entry per open order: 200 with the order as the cancel left it, or the error."""
    results: list[CancelStatus] = []
    page = OrderQuery(call.user_id, OPEN_STATUSES, None, None, None, MAX_PAGE, None)
    for _ in range(_CANCEL_ALL_PAGES):
        orders = await call.hub.orders.query(page)
        for order in orders:
            try:
                moved = await call.hub.orders.cancel(call.user_id, order.id)
            except HubError as exc:
                failed = errors.from_hub_error(exc)
                body = msgspec.json.decode(bytes(failed.body))
                results.append(CancelStatus(order.id, failed.status_code, body))
                continue
            results.append(CancelStatus(order.id, 200, await one(call, moved)))
        if len(orders) < MAX_PAGE:
            break
        last = orders[-1]
        page = OrderQuery(
            call.user_id, OPEN_STATUSES, None, None, None, MAX_PAGE, (last.created_at, last.id)
        )
    return respond(results, 207)


ROUTES = [
    route("POST", "/v2/orders", submit, body=OrderRequest),
    route("GET", "/v2/orders", list_orders),
    route("DELETE", "/v2/orders", cancel_all),
    route("GET", "/v2/orders:by_client_order_id", by_client_order_id),
    route("GET", "/v2/orders/{order_id}", get_order),
    route("DELETE", "/v2/orders/{order_id}", cancel),
]
