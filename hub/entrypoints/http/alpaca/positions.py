"""/v2/positions: list, one by symbol or asset id, and close (a market sell through the one
order path). Hub is long only, so every position's side is `long`."""

from __future__ import annotations

import uuid
from contextlib import suppress
from decimal import ROUND_DOWN, Decimal
from typing import Any

import msgspec
from starlette.responses import Response

from hub.domain.errors import HubError, InvalidInput, InvalidOrder, NotFound
from hub.domain.numeric import parse_decimal
from hub.domain.orders import OPEN_STATUSES, OrderType, Side, SubmitOrder, TimeInForce
from hub.domain.portfolio import PositionValuation
from hub.entrypoints.http.alpaca import errors, params
from hub.entrypoints.http.alpaca.assets import asset_class, asset_id, exchange
from hub.entrypoints.http.alpaca.order_shapes import OrderOut
from hub.entrypoints.http.alpaca.orders import one
from hub.entrypoints.http.alpaca.routing import respond, route
from hub.entrypoints.http.routing import Call
from hub.services.trading_ports import OrderQuery

HUNDRED = Decimal(100)


class PositionOut(msgspec.Struct, kw_only=True):
    asset_id: uuid.UUID
    symbol: str
    exchange: str
    asset_class: str
    asset_marginable: bool = False
    avg_entry_price: Decimal
    qty: Decimal
    qty_available: Decimal
    side: str = "long"
    market_value: Decimal
    cost_basis: Decimal
    unrealized_pl: Decimal
    unrealized_plpc: Decimal
    unrealized_intraday_pl: Decimal | None
    unrealized_intraday_plpc: Decimal | None
    current_price: Decimal
    lastday_price: Decimal | None
    change_today: Decimal | None

    @classmethod
    def of(cls, v: PositionValuation) -> PositionOut:
        return cls(
            asset_id=asset_id(v.symbol),
            symbol=v.symbol,
            exchange=exchange(v.category),
            asset_class=asset_class(v.category),
            avg_entry_price=v.avg_entry_price,
            qty=v.qty,
            qty_available=v.qty_available,
            market_value=v.market_value,
            cost_basis=v.cost_basis,
            unrealized_pl=v.unrealized_pl,
            unrealized_plpc=v.unrealized_plpc,
            unrealized_intraday_pl=v.unrealized_intraday_pl,
            # Of a position held since the last close, the day's change in its price.
            unrealized_intraday_plpc=v.change_today,
            current_price=v.current_price,
            lastday_price=v.lastday_price,
            change_today=v.change_today,
        )


def _matches(v: PositionValuation, symbol_or_id: str) -> bool:
    try:
        return asset_id(v.symbol) == uuid.UUID(symbol_or_id)
    except ValueError:
        return v.symbol == params.symbol(symbol_or_id)


async def _position(call: Call) -> PositionValuation:
    wanted = call.request.path_params["symbol_or_id"]
    for v in await call.hub.portfolio.positions(call.user_id):
        if _matches(v, wanted):
            return v
    raise NotFound(f"position does not exist: {wanted}")


async def list_positions(call: Call) -> list[PositionOut]:
    return [PositionOut.of(v) for v in await call.hub.portfolio.positions(call.user_id)]


async def get_position(call: Call) -> PositionOut:
    return PositionOut.of(await _position(call))


async def _sell_qty(call: Call, position: PositionValuation) -> Decimal:
    """All of it, `qty` of it, or `percentage` of it rounded down to whole lots."""
    query = call.request.query_params
    if query.get("qty") and query.get("percentage"):
        raise InvalidInput("send qty or percentage, not both", field="qty")
    if query.get("qty"):
        return parse_decimal(query["qty"], "qty")
    if not query.get("percentage"):
        return position.qty
    share = parse_decimal(query["percentage"], "percentage")
    if not 0 < share <= HUNDRED:
        raise InvalidInput("percentage must be more than 0 and at most 100", field="percentage")
    lot = (await call.hub.market_data.instrument(position.symbol)).lot_size
    qty = (position.qty * share / HUNDRED / lot).to_integral_value(ROUND_DOWN) * lot
    if qty <= 0:
        raise InvalidOrder("that percentage is less than one lot", field="percentage")
    return qty


async def _close(call: Call, position: PositionValuation, qty: Decimal) -> OrderOut:
    command = SubmitOrder(
        symbol=position.symbol,
        side=Side.SELL,
        type=OrderType.MARKET,
        qty=qty,
        time_in_force=TimeInForce.DAY,
        client_order_id=str(uuid.uuid4()),
    )
    submitted = await call.hub.orders.submit(call.user_id, command)
    return await one(call, submitted.order)


async def close_position(call: Call) -> OrderOut:
    position = await _position(call)
    return await _close(call, position, await _sell_qty(call, position))


class Closed(msgspec.Struct):
    symbol: str
    status: int
    order_id: uuid.UUID | None
    body: Any


async def close_all(call: Call) -> Response:
    """207, one entry per position: 200 with its sell order, or the error. With
    cancel_orders=true the open orders are asked to cancel first; shares they still hold when
    the sell is checked make that position's entry a 403."""
    if call.request.query_params.get("cancel_orders", "").lower() == "true":
        query = OrderQuery(call.user_id, OPEN_STATUSES, None, None, None, 500, None)
        for order in await call.hub.orders.query(query):
            with suppress(HubError):  # filled or canceled meanwhile
                await call.hub.orders.cancel(call.user_id, order.id)
    results: list[Closed] = []
    for position in await call.hub.portfolio.positions(call.user_id):
        try:
            sold = await _close(call, position, position.qty)
        except HubError as exc:
            failed = errors.from_hub_error(exc)
            body = msgspec.json.decode(bytes(failed.body))
            results.append(Closed(position.symbol, failed.status_code, None, body))
            continue
        results.append(Closed(position.symbol, 200, sold.id, sold))
    return respond(results, 207)


ROUTES = [
    route("GET", "/v2/positions", list_positions),
    route("DELETE", "/v2/positions", close_all),
    route("GET", "/v2/positions/{symbol_or_id:path}", get_position),
    route("DELETE", "/v2/positions/{symbol_or_id:path}", close_position),
]
