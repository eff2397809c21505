"""Ports of the trading core: the unit of work in which money and shares move, the read side,
the outbox the relay drains, the work queue, and watchlists."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Protocol
from uuid import UUID

from hub.domain.accounts import Account
from hub.domain.orders import Execution, Order, OrderEvent, OrderStatus, Side
from hub.domain.positions import Position


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What an Idempotency-Key answers again: the order as the key's first request placed it
    (not as it is now), and that request's fingerprint, so that a different one is refused."""

    fingerprint: str
    order: Order


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
        """Raise DuplicateClientOrderId (hub.domain.errors) when the account already used its
        client_order_id."""

    async def order_for_update(self, order_id: UUID) -> Order | None: ...

    async def save_order(self, order: Order, expected_version: int) -> None:
        """Store the order if its stored version is still `expected_version` (compare-and-set),
        else raise ConcurrentUpdate (hub.services.errors)."""

    async def add_execution(self, execution: Execution) -> None: ...

    async def append_event(self, event: OrderEvent) -> None: ...

    async def enqueue(self, topic: str, body: bytes) -> None:
        """Add an outbox row, published after the commit by the relay."""

    # --- batches: lock many rows in a few statements, write everything in one ----------------

    async def orders_for_update(self, ids: Sequence[UUID]) -> dict[UUID, Order]: ...

    async def accounts_for_update(self, ids: Sequence[UUID]) -> dict[UUID, Account]:
        """By account id."""

    async def accounts(self, ids: Sequence[UUID]) -> dict[UUID, Account]:
        """By account id, without a lock: a batch writes accounts as deltas (see Changes), so
        it never holds the account rows that every submit of those accounts updates."""

    async def positions_for_update(
        self, keys: Sequence[tuple[UUID, str]]
    ) -> dict[tuple[UUID, str], Position]:
        """By (account id, symbol); positions that do not exist are missing from the answer."""

    async def write(self, changes: Changes) -> list[OutboxRow]:
        """Everything a batch changed, at once. Orders are compare-and-set on their expected
        version (ConcurrentUpdate otherwise); executions are unique (ConcurrentUpdate). Returns
        the outbox rows it added, leased to this process: its relay publishes them from memory
        once the commit is done (see Outbox), and nobody else does unless the lease runs out."""


@dataclass(slots=True)
class Changes:
    """What a batch of order work writes; lists keep their order (events and outbox rows are
    stored in the order they were appended)."""

    orders: dict[UUID, tuple[Order, int]] = field(default_factory=dict)  # new state, version read
    # account id -> (cash delta, reserved cash delta): added to the row as it is at commit, so
    # submits that reserved cash meanwhile are kept; the table's CHECKs refuse an overdraft.
    cash: dict[UUID, tuple[Decimal, Decimal]] = field(default_factory=dict)
    positions: dict[tuple[UUID, str], Position] = field(default_factory=dict)
    executions: list[Execution] = field(default_factory=list)
    events: list[OrderEvent] = field(default_factory=list)
    outbox: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SubmitSnapshot:
    """What a submit reads before it decides, in one round trip and without locks."""

    account: Account | None
    position: Position | None
    stored: IdempotencyRecord | None  # when the Idempotency-Key was used before


@dataclass(frozen=True, slots=True)
class Placement:
    """Everything a submit writes. The order carries its reservation (reserved_cash for a buy,
    reserved_qty for a sell). With an Idempotency-Key, the idempotency record is the key, the
    request's fingerprint and the order as placed."""

    order: Order
    event: OrderEvent
    outbox: tuple[tuple[str, bytes], ...]
    key: str | None = None
    fingerprint: str = ""


class OrderDesk(Protocol):
    """The submit side of the trading core: no row lock is held across round trips."""

    async def snapshot(self, user_id: UUID, symbol: str, key: str | None) -> SubmitSnapshot: ...

    async def place(self, placement: Placement) -> list[OutboxRow] | None:
        """Atomically take the reservation, if the account still has the buying power (or the
        position the shares), and store the order, its event, its outbox rows (leased to this
        process, as in UnitOfWork.write) and the idempotency record; return the outbox rows.
        None, with nothing written, when the reservation no longer fits. Raises
        DuplicateClientOrderId, or IdempotencyConflict when a twin stored the key first."""


@dataclass(frozen=True, slots=True)
class OrderQuery:
    user_id: UUID
    statuses: frozenset[OrderStatus] | None
    symbol: str | None
    after: datetime | None
    until: datetime | None
    limit: int
    cursor: tuple[datetime, UUID] | None  # (created_at, id) of the last order of the prior page
    symbols: frozenset[str] | None = None  # any of these (with `symbol`, both must hold)
    side: Side | None = None
    ascending: bool = False  # oldest first; the cursor then pages forward in time


@dataclass(frozen=True, slots=True)
class FillQuery:
    """A user's executions, by (at, id): newest first unless `ascending`, paged by the cursor
    (the (at, id) of the last fill of the prior page)."""

    user_id: UUID
    after: datetime | None
    until: datetime | None
    limit: int
    ascending: bool = False
    cursor: tuple[datetime, UUID] | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of a user's order, and the order's quantities once it was in."""

    execution: Execution
    order_qty: Decimal
    cum_qty: Decimal  # filled by this execution and the ones before it


@dataclass(frozen=True, slots=True)
class Holdings:
    """A user's account and its open positions (qty > 0), by symbol, read together."""

    account: Account
    positions: tuple[Position, ...]


class TradingReader(Protocol):
    """Reads outside a transaction (may be slightly behind the latest commit)."""

    async def order(self, order_id: UUID) -> Order | None: ...

    async def orders(self, query: OrderQuery) -> list[Order]:
        """Newest first (created_at, then id, descending), or oldest first when ascending."""

    async def order_by_client_id(self, user_id: UUID, client_order_id: str) -> Order | None:
        """The user's order with this client_order_id (unique per account)."""

    async def fills(self, query: FillQuery) -> list[Fill]:
        """The user's executions, each with its order's quantity and cumulative fill."""

    async def positions(self, account_id: UUID) -> list[Position]: ...

    async def holdings(self, user_id: UUID) -> Holdings | None:
        """The user's account and open positions in one read; None when the user has no
        account."""

    async def working_orders(self) -> list[Order]:
        """Every order that is not terminal yet."""

    async def orders_changed(self, since: datetime) -> list[Order]:
        """Orders of any status changed at or after `since`."""

    async def events(self, order_id: UUID) -> list[OrderEvent]: ...

    async def owned_events(self, user_id: UUID, order_id: UUID) -> list[OrderEvent] | None:
        """The order's events, oldest first, in one read; None when the order does not exist or
        is not this user's."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    topic: str
    body: bytes


# How long the writing process owns the outbox rows it hands to its own relay at commit. Short:
# when that relay falls behind (its process is busy serving requests), the other processes' polls
# take the overflow after this long. A row may then go out twice, which is harmless (the worker
# is idempotent, clients drop an order event whose version they have seen).
HANDOVER_LEASE_S = 2


class Outbox(Protocol):
    """Rows are published by the relay of the process that wrote them, straight from memory
    after the commit (they are born leased to it); a row whose lease runs out (the process died,
    or could not reach the broker) is claimed by whichever relay polls next."""

    async def settle(self, sent: Sequence[int], failed: Sequence[int]) -> None:
        """Delete the rows that were published; put the failed ones back in line at once."""

    async def drain(
        self, limit: int, publish: Callable[[list[OutboxRow]], Awaitable[list[int]]]
    ) -> int:
        """Claim up to `limit` unsent rows (skipping rows another relay holds), hand them to
        `publish`, delete the ids it returns (they were sent), put the rest back in line.
        Returns how many were sent."""

    async def pending(self) -> int: ...


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

    def stats(self) -> dict[str, int]:
        """Counters for /metrics: `retried` and `dead_lettered` messages."""

    async def depth(self) -> int:
        """Messages waiting for a worker (not counting those being handled)."""
