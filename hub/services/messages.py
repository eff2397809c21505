"""What travels through the outbox: work for the order workers, and publications for the
fan-out engine (written in the same transaction as the change they announce)."""

from __future__ import annotations

import enum
from typing import Any
from uuid import UUID

import msgspec

ORDERS_TOPIC = "orders"  # -> the work queue
STREAM_TOPIC = "stream"  # -> the streaming engine


class Action(enum.StrEnum):
    PROCESS = "process"  # a new order: accept it, then fill or rest it
    CANCEL = "cancel"  # a cancel was requested
    TRIGGER = "trigger"  # a quote crossed a resting order's price
    EXPIRE = "expire"  # its time in force ran out


class OrderMessage(msgspec.Struct, frozen=True):
    order_id: UUID
    action: Action
    symbol: str = ""  # lets the worker fetch the quote before it opens its transaction


class StreamMessage(msgspec.Struct, frozen=True):
    channel: str
    type: str
    data: msgspec.Raw


order_messages = msgspec.json.Decoder(OrderMessage)
# A work message on the queue is one OrderMessage, or an array of them: the relay sends a whole
# outbox batch as one AMQP message (one publish and one confirm instead of one per order).
work_messages = msgspec.json.Decoder(OrderMessage | list[OrderMessage])
stream_messages = msgspec.json.Decoder(StreamMessage)
_encoder = msgspec.json.Encoder()


def encode(message: OrderMessage) -> bytes:
    return _encoder.encode(message)


def decode_work(body: bytes) -> list[OrderMessage]:
    decoded = work_messages.decode(body)
    return decoded if isinstance(decoded, list) else [decoded]


def combine(bodies: list[bytes]) -> bytes:
    """Several encoded OrderMessages as one work message (a JSON array)."""
    return b"[" + b",".join(bodies) + b"]"


def stream(channel: str, type_: str, data: Any) -> bytes:
    return _encoder.encode(StreamMessage(channel, type_, msgspec.Raw(_encoder.encode(data))))
