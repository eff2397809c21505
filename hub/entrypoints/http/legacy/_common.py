"""Shapes, mappings and helpers shared by the legacy routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from hub.domain.errors import HubError
from hub.domain.instruments import Category
from hub.domain.orders import (
    OrderStatus,
    OrderType,
    Side,
)
from hub.entrypoints.http.decimals import DecimalNumber, OptionalDecimalNumber, absent
from hub.entrypoints.http.problems import MEDIA_TYPE, from_hub_error, problem
from hub.entrypoints.http.routing import Call, Handler, read_body

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
# Pages are counted from 1. A million pages of 100 is far past any account's history (the route
# reads it all to count it), and the bound keeps the number a plain int before it is used.
PAGE_MAX = 1_000_000
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
    """Quantity and price as JSON numbers (decimal strings accepted), read by the one strict,
    bounded parser when the handler builds the command."""

    symbol: str
    order_type: str  # MARKET | LIMIT | STOP_LOSS | STOP_LIMIT
    order_side: str  # BUY | SELL
    quantity: DecimalNumber
    price: OptionalDecimalNumber = absent()


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
