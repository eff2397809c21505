"""GET /v2/account/activities and /v2/account/activities/{activity_type}: the account's
activity, of which Hub has one kind, FILL (one per execution). Other known Alpaca types answer
an empty list; they never happen on a Hub paper account.

An activity's id is `<time, 20 digits to the microsecond>::<execution id>`; `page_token` takes
the last id of a page to continue after it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import msgspec

from hub.domain.errors import InvalidInput
from hub.entrypoints.http.alpaca import params
from hub.entrypoints.http.alpaca.routing import route
from hub.entrypoints.http.routing import Call
from hub.services.trading_ports import Fill, FillQuery

MAX_PAGE = 100
_STAMP = "%Y%m%d%H%M%S%f"
# Alpaca's activity types (alpaca-py's ActivityType). Only FILL happens here.
KNOWN = frozenset({
    "FILL", "ACATC", "ACATS", "CFEE", "CIL", "CSD", "CSW", "DIV", "DIVCGL", "DIVCGS", "DIVNRA",
    "DIVROC", "DIVTXEX", "DIVWH", "EXTRD", "FEE", "FXTRD", "INT", "INTPNL", "JNLC", "JNLS",
    "MA", "MEM", "NC", "OCT", "OPASN", "OPCSH", "OPEXC", "OPEXP", "OPTRD", "PTC", "REORG",
    "SPIN", "SPLIT", "SWP", "VOF", "WH"
})  # fmt: skip


class TradeActivity(msgspec.Struct, kw_only=True):
    id: str
    account_id: uuid.UUID
    activity_type: str = "FILL"
    transaction_time: datetime
    type: str  # fill or partial_fill
    price: Decimal
    qty: Decimal
    side: str
    symbol: str
    leaves_qty: Decimal
    order_id: uuid.UUID
    cum_qty: Decimal
    order_status: str  # as this execution left the order

    @classmethod
    def of(cls, f: Fill) -> TradeActivity:
        e = f.execution
        done = f.cum_qty >= f.order_qty
        return cls(
            id=f"{e.at.astimezone(UTC).strftime(_STAMP)}::{e.id}",
            account_id=e.account_id,
            transaction_time=e.at,
            type="fill" if done else "partial_fill",
            price=e.price,
            qty=e.qty,
            side=e.side.value,
            symbol=e.symbol,
            leaves_qty=f.order_qty - f.cum_qty,
            order_id=e.order_id,
            cum_qty=f.cum_qty,
            order_status="filled" if done else "partially_filled",
        )


def _page_token(raw: str) -> tuple[datetime, uuid.UUID]:
    stamp, _, execution = raw.partition("::")
    try:
        return datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC), uuid.UUID(execution)
    except ValueError:
        raise InvalidInput("page_token is not an activity id", field="page_token") from None


def _types(raw: str) -> set[str]:
    wanted = {t.strip().upper() for t in raw.split(",") if t.strip()}
    unknown = wanted - KNOWN
    if unknown:
        raise InvalidInput(f"unknown activity type {sorted(unknown)[0]}", field="activity_types")
    return wanted


async def _fills(call: Call, types: set[str]) -> list[TradeActivity]:
    if types and "FILL" not in types:
        return []
    query = dict(call.request.query_params)
    after, until = params.instant(query, "after"), params.instant(query, "until")
    day = params.day(query, "date")
    if day is not None:  # that day, UTC
        after = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(microseconds=1)
        until = after + timedelta(days=1)
    token = query.get("page_token")
    fills = await call.hub.orders.fills(
        FillQuery(
            user_id=call.user_id,
            after=after,
            until=until,
            limit=params.integer(query, "page_size", MAX_PAGE, MAX_PAGE),
            ascending=params.ascending(query),
            cursor=_page_token(token) if token else None,
        )
    )
    return [TradeActivity.of(f) for f in fills]


async def activities(call: Call) -> list[TradeActivity]:
    return await _fills(call, _types(call.request.query_params.get("activity_types", "")))


async def activities_of_type(call: Call) -> list[TradeActivity]:
    return await _fills(call, _types(call.request.path_params["activity_type"]))


ROUTES = [
    route("GET", "/v2/account/activities", activities),
    route("GET", "/v2/account/activities/{activity_type}", activities_of_type),
]
