"""Ports of the trading core: the unit of work in which money and shares move, the read side,
the outbox the relay drains, the work queue, and watchlists."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol
from uuid import UUID

from hub.domain.accounts import Account
from hub.domain.errors import HubError, InvalidInput
from hub.domain.orders import Execution, Order, OrderEvent, OrderStatus
from hub.domain.positions import Position


class ConcurrentUpdate(HubError):
    """Someone changed the order since it was read (its version moved on): retry from a read."""

    code = "concurrent_update"
    title = "Concurrent update"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What an Idempotency-Key replays: the first response, byte for byte."""

    fingerprint: str
    status: int
    body: bytes


class UnitOfWork(Protocol):
    """One transaction. Rows read `for_update` stay locked until it ends; always lock in the
    order: order, account, position. Nothing is written unless `commit()` is called."""

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...

    async def account_for_update(self, user_id: UUID) -> Account | None: ...

    async def save_account(self, account: Account) -> None: ...

    async def position_for_update(self, account_id: UUID, symbol: str) -> Position | None: ...

    async def save_position(self, position: Position) -> None: ...

    async def add_order(self, order: Order) -> None:
        """Raise DuplicateClientOrderId when the account already used its client_order_id."""

    async def order_for_update(self, order_id: UUID) -> Order | None: ...

    async def save_order(self, order: Order, expected_version: int) -> None:
        """Store the order if its stored version is still `expected_version` (compare-and-set),
        else raise ConcurrentUpdate."""

    async def add_execution(self, execution: Execution) -> None: ...

    async def append_event(self, event: OrderEvent) -> None: ...

    async def enqueue(self, topic: str, body: bytes) -> None:
        """Add an outbox row, published after the commit by the relay."""

    async def stored_response(self, user_id: UUID, key: str) -> StoredResponse | None: ...

    async def store_response(self, user_id: UUID, key: str, response: StoredResponse) -> None:
        """Raise IdempotencyConflict if another request stored this key first."""


class DuplicateClientOrderId(InvalidInput):
    """The account already has an order with this client_order_id."""

    code = "duplicate_client_order_id"
    title = "Duplicate client_order_id"


class IdempotencyConflict(HubError):
    """Two requests with one Idempotency-Key raced; the loser replays the winner's response."""

    code = "idempotency_conflict"


@dataclass(frozen=True, slots=True)
class OrderQuery:
    user_id: UUID
    statuses: frozenset[OrderStatus] | None
    symbol: str | None
    after: datetime | None
    until: datetime | None
    limit: int
    cursor: tuple[datetime, UUID] | None  # (created_at, id) of the last order of the prior page


class TradingReader(Protocol):
    """Reads outside a transaction (may be slightly behind the latest commit)."""

    async def order(self, order_id: UUID) -> Order | None: ...

    async def orders(self, query: OrderQuery) -> list[Order]:
        """Newest first (created_at, then id, descending)."""

    async def positions(self, account_id: UUID) -> list[Position]: ...

    async def working_orders(self) -> list[Order]:
        """Every order that is not terminal yet."""

    async def orders_changed(self, since: datetime) -> list[Order]:
        """Orders of any status changed at or after `since`."""

    async def events(self, order_id: UUID) -> list[OrderEvent]: ...


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    topic: str
    body: bytes


class Outbox(Protocol):
    async def drain(
        self, limit: int, publish: Callable[[list[OutboxRow]], Awaitable[list[int]]]
    ) -> int:
        """Claim up to `limit` unsent rows (skipping rows another relay holds), hand them to
        `publish`, mark the ids it returns as sent, count an attempt on the rest. Returns how
        many were sent."""

    async def pending(self) -> int: ...

    async def purge_sent(self, older_than_s: float) -> int:
        """Delete rows sent more than `older_than_s` seconds ago; return how many."""


UnitOfWorkFactory = Callable[[], UnitOfWork]


MessageHandler = Callable[[bytes], Awaitable[None]]


class WorkQueue(Protocol):
    """Where order work goes: RabbitMQ in services mode, an in-process queue when embedded.

    `publish` returns only once the broker has the message safely (publisher confirm) and raises
    otherwise. `consume` runs the handler for each message until cancelled; a message is
    acknowledged after the handler returns, and one whose handler raises is retried later
    (after growing delays), then dead-lettered; never dropped."""

    async def publish(self, body: bytes) -> None: ...

    async def consume(self, handler: MessageHandler) -> None: ...
