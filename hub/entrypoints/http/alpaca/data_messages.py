"""The messages of the market-data stream (/v2/iex, /v2/sip), and its two encodings: msgpack
when the upgrade request says `Content-Type: application/msgpack` (alpaca-py does), JSON text
frames otherwise, as Alpaca's server decides. The data messages are in data_shapes.py."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.websockets import WebSocket

from hub.entrypoints.http.alpaca.data_feed import Wants
from hub.entrypoints.http.alpaca.data_shapes import JSON, MSGPACK

UNSERVED = ("dailyBars", "statuses", "lulds", "orderbooks", "news")


class Success(msgspec.Struct, tag_field="T", tag="success"):
    msg: str


class Error(msgspec.Struct, tag_field="T", tag="error"):
    code: int
    msg: str


class Subscription(msgspec.Struct, tag_field="T", tag="subscription", rename="camel"):
    trades: list[str]
    quotes: list[str]
    bars: list[str]
    updated_bars: list[str]
    daily_bars: list[str]
    statuses: list[str]
    lulds: list[str]
    corrections: list[str]
    cancel_errors: list[str]

    @classmethod
    def of(cls, wants: Wants) -> Subscription:
        trades = sorted(wants.trades)
        return cls(
            trades=trades,
            quotes=sorted(wants.quotes),
            bars=sorted(wants.bars),
            updated_bars=sorted(wants.updated_bars),
            daily_bars=[],
            statuses=[],
            lulds=[],
            corrections=trades,  # as Alpaca: they follow trades (Hub never sends one)
            cancel_errors=trades,
        )


class Request(msgspec.Struct, rename="camel"):
    action: str
    key: str | None = None
    secret: str | None = None
    trades: list[str] = msgspec.field(default_factory=list)
    quotes: list[str] = msgspec.field(default_factory=list)
    bars: list[str] = msgspec.field(default_factory=list)
    updated_bars: list[str] = msgspec.field(default_factory=list)
    daily_bars: list[str] = msgspec.field(default_factory=list)
    statuses: list[str] = msgspec.field(default_factory=list)
    lulds: list[str] = msgspec.field(default_factory=list)
    orderbooks: list[str] = msgspec.field(default_factory=list)
    news: list[str] = msgspec.field(default_factory=list)


class Codec:
    def __init__(self, websocket: WebSocket) -> None:
        content_type = websocket.headers.get("content-type", "").lower()
        self.msgpack = content_type.startswith("application/msgpack")
        self._msgpack_requests = msgspec.msgpack.Decoder(Request)
        self._json_requests = msgspec.json.Decoder(Request)

    def encode(self, messages: list[Any]) -> bytes:
        return MSGPACK.encode(messages) if self.msgpack else JSON.encode(messages)

    def decode(self, raw: bytes | str) -> Request:
        """Raises msgspec.DecodeError (and ValidationError, one of them) for invalid syntax."""
        if isinstance(raw, bytes) and self.msgpack:
            return self._msgpack_requests.decode(raw)
        return self._json_requests.decode(raw)
