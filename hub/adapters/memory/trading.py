"""The trading core in process memory: one lock serialises units of work (the embedded mode runs
one process), and writes are staged until commit, so an abandoned unit changes nothing."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any
from uuid import UUID

import msgspec

from hub.adapters.memory.users import MemoryAccounts
from hub.domain.accounts import Account
from hub.domain.errors import DuplicateClientOrderId, InsufficientBuyingPower, InsufficientShares
from hub.domain.orders import ZERO, Execution, Order, OrderEvent, Side
from hub.domain.positions import Position, reserve_cash, reserve_shares
from hub.services.errors import ConcurrentUpdate, IdempotencyConflict
from hub.services.trading_ports import (
    HANDOVER_LEASE_S,
    Changes,
    Fill,
    FillQuery,
    Holdings,
    IdempotencyRecord,
    OrderQuery,
    OutboxRow,
    Placement,
    SubmitSnapshot,
)

LEASE_S = 30.0  # as the Postgres outbox's


class MemoryTrading:
    """State shared by the memory unit of work, reader and outbox."""

    def __init__(self, accounts: MemoryAccounts) -> None:
        self.accounts = accounts
        self.lock = asyncio.Lock()
        self.orders: dict[UUID, Order] = {}
        self.client_ids: dict[tuple[UUID, str], UUID] = {}
        self.positions: dict[tuple[UUID, str], Position] = {}
        self.executions: dict[UUID, Execution] = {}
        self.events: dict[UUID, list[OrderEvent]] = {}
        self.outbox: dict[int, tuple[str, bytes]] = {}
        self.outbox_ids = itertools.count(1)
        # Rows handed to a relay in this process at commit: the poller leaves them alone until
        # the lease runs out (monotonic deadline), as with Postgres' claimed_until.
        self.leases: dict[int, float] = {}
        self.records: dict[tuple[UUID, str], IdempotencyRecord] = {}  # (user id, key)

    def unit_of_work(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    # --- the order desk (submit) ----------------------------------------------------------------

    async def snapshot(self, user_id: UUID, symbol: str, key: str | None) -> SubmitSnapshot:
        account = await self.accounts.for_user(user_id)
        if account is None:
            return SubmitSnapshot(None, None, None)
        stored = self.records.get((user_id, key)) if key is not None else None
        return SubmitSnapshot(account, self.positions.get((account.id, symbol)), stored)

    async def place(self, placement: Placement) -> list[OutboxRow] | None:
        order = placement.order
        async with self.unit_of_work() as uow:
            try:
                if order.side is Side.BUY:
                    account = await uow.account_for_update(order.user_id)
                    if account is None:
                        return None
                    await uow.save_account(reserve_cash(account, order.reserved_cash))
                else:
                    position = await uow.position_for_update(order.account_id, order.symbol)
                    if position is None:
                        return None
                    await uow.save_position(reserve_shares(position, order.reserved_qty))
            except (InsufficientBuyingPower, InsufficientShares):
                return None
            await uow.add_order(order)
            await uow.append_event(placement.event)
            rows = uow.enqueue_leased(placement.outbox)
            if placement.key is not None:
                record = IdempotencyRecord(placement.fingerprint, order)
                uow.remember(order.user_id, placement.key, record)
            await uow.commit()
        return rows

    # --- outbox -------------------------------------------------------------------------------

    async def drain(
        self, limit: int, publish: Callable[[list[OutboxRow]], Awaitable[list[int]]]
    ) -> int:
        now = time.monotonic()
        free = ((i, tb) for i, tb in self.outbox.items() if self.leases.get(i, 0.0) <= now)
        rows = [OutboxRow(i, t, b) for i, (t, b) in itertools.islice(free, limit)]
        if not rows:
            return 0
        for row in rows:
            self.leases[row.id] = now + LEASE_S
        sent: list[int] = []
        try:
            sent = await publish(rows)
        finally:
            await self.settle(sent, [r.id for r in rows if r.id not in set(sent)])
        return len(sent)

    async def settle(self, sent: Sequence[int], failed: Sequence[int]) -> None:
        for row_id in sent:
            self.outbox.pop(row_id, None)
            self.leases.pop(row_id, None)
        for row_id in failed:
            self.leases.pop(row_id, None)

    async def pending(self) -> int:
        return len(self.outbox)


class MemoryTradingReader:
    def __init__(self, state: MemoryTrading) -> None:
        self._s = state

    async def order(self, order_id: UUID) -> Order | None:
        return self._s.orders.get(order_id)

    async def orders(self, query: OrderQuery) -> list[Order]:
        cursor = query.cursor

        def keep(o: Order) -> bool:
            return (
                o.user_id == query.user_id
                and (query.statuses is None or o.status in query.statuses)
                and (query.symbol is None or o.symbol == query.symbol)
                and (query.symbols is None or o.symbol in query.symbols)
                and (query.side is None or o.side is query.side)
                and (query.after is None or o.created_at > query.after)
                and (query.until is None or o.created_at <= query.until)
                and (cursor is None or _beyond((o.created_at, o.id), cursor, query.ascending))
            )

        found = sorted(filter(keep, self._s.orders.values()), key=lambda o: (o.created_at, o.id))
        return (found if query.ascending else found[::-1])[: query.limit]

    async def order_by_client_id(self, user_id: UUID, client_order_id: str) -> Order | None:
        account = await self._s.accounts.for_user(user_id)
        found = None if account is None else self._s.client_ids.get((account.id, client_order_id))
        return None if found is None else self._s.orders.get(found)

    async def fills(self, query: FillQuery) -> list[Fill]:
        account = await self._s.accounts.for_user(query.user_id)
        mine = sorted(
            (e for e in self._s.executions.values() if account and e.account_id == account.id),
            key=lambda e: (e.at, e.id),
        )
        done: dict[UUID, Decimal] = {}  # order id -> filled so far, in execution order
        found: list[Fill] = []
        for e in mine:
            done[e.order_id] = done.get(e.order_id, ZERO) + e.qty
            cursor = query.cursor
            if (
                (query.after is None or e.at > query.after)
                and (query.until is None or e.at <= query.until)
                and (cursor is None or _beyond((e.at, e.id), cursor, query.ascending))
            ):
                found.append(Fill(e, self._s.orders[e.order_id].qty, done[e.order_id]))
        return (found if query.ascending else found[::-1])[: query.limit]

    async def positions(self, account_id: UUID) -> list[Position]:
        mine = (p for (a, _), p in self._s.positions.items() if a == account_id)
        return sorted(mine, key=lambda p: p.symbol)

    async def holdings(self, user_id: UUID) -> Holdings | None:
        account = await self._s.accounts.for_user(user_id)
        if account is None:
            return None
        return Holdings(account, tuple(p for p in await self.positions(account.id) if p.qty > 0))

    async def working_orders(self) -> list[Order]:
        return [o for o in self._s.orders.values() if not o.is_terminal]

    async def orders_changed(self, since: datetime) -> list[Order]:
        return [o for o in self._s.orders.values() if o.updated_at >= since]

    async def events(self, order_id: UUID) -> list[OrderEvent]:
        return list(self._s.events.get(order_id, []))

    async def owned_events(self, user_id: UUID, order_id: UUID) -> list[OrderEvent] | None:
        order = self._s.orders.get(order_id)
        if order is None or order.user_id != user_id:
            return None
        return await self.events(order_id)


class MemoryUnitOfWork:
    def __init__(self, state: MemoryTrading) -> None:
        self._s = state
        self._accounts: dict[UUID, Account] = {}
        self._positions: dict[tuple[UUID, str], Position] = {}
        self._orders: dict[UUID, Order] = {}
        self._executions: dict[UUID, Execution] = {}
        self._events: list[OrderEvent] = []
        self._outbox: list[tuple[int, str, bytes, bool]] = []  # id, topic, body, leased
        self._records: dict[tuple[UUID, str], IdempotencyRecord] = {}

    async def __aenter__(self) -> MemoryUnitOfWork:
        await self._s.lock.acquire()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._s.lock.release()

    async def commit(self) -> None:
        s = self._s
        for account in self._accounts.values():
            await s.accounts.add(account)
        s.positions.update(self._positions)
        for order in self._orders.values():
            s.orders[order.id] = order
            if order.client_order_id is not None:
                s.client_ids[(order.account_id, order.client_order_id)] = order.id
        s.executions.update(self._executions)
        for event in self._events:
            s.events.setdefault(event.order_id, []).append(event)
        deadline = time.monotonic() + HANDOVER_LEASE_S
        for row_id, topic, body, leased in self._outbox:
            s.outbox[row_id] = (topic, body)
            if leased:
                s.leases[row_id] = deadline
        s.records.update(self._records)
        self._accounts, self._positions, self._orders = {}, {}, {}
        self._executions, self._events, self._outbox, self._records = {}, [], [], {}

    async def account_for_update(self, user_id: UUID) -> Account | None:
        staged = next((a for a in self._accounts.values() if a.user_id == user_id), None)
        return staged or await self._s.accounts.for_user(user_id)

    async def save_account(self, account: Account) -> None:
        _non_negative(account.cash, account.reserved_cash)
        if account.reserved_cash > account.cash:
            raise ValueError("reserved cash exceeds cash")  # the Postgres CHECK's twin
        self._accounts[account.id] = account

    async def position_for_update(self, account_id: UUID, symbol: str) -> Position | None:
        key = (account_id, symbol)
        return self._positions.get(key) or self._s.positions.get(key)

    async def save_position(self, position: Position) -> None:
        _non_negative(position.qty, position.reserved_qty)
        if position.reserved_qty > position.qty:
            raise ValueError("reserved qty exceeds qty")
        self._positions[(position.account_id, position.symbol)] = position

    async def add_order(self, order: Order) -> None:
        cid = order.client_order_id
        if cid is not None and (
            (order.account_id, cid) in self._s.client_ids
            or any(
                o.client_order_id == cid and o.account_id == order.account_id
                for o in self._orders.values()
            )
        ):
            raise DuplicateClientOrderId(f"client_order_id {cid!r} is already used")
        self._orders[order.id] = order

    async def order_for_update(self, order_id: UUID) -> Order | None:
        return self._orders.get(order_id) or self._s.orders.get(order_id)

    async def save_order(self, order: Order, expected_version: int) -> None:
        current = await self.order_for_update(order.id)
        if current is None or current.version != expected_version:
            raise ConcurrentUpdate(f"order {order.id} changed concurrently")
        self._orders[order.id] = order

    async def add_execution(self, execution: Execution) -> None:
        if execution.id in self._s.executions or execution.id in self._executions:
            raise ConcurrentUpdate(f"execution {execution.id} is already recorded")
        self._executions[execution.id] = execution

    async def append_event(self, event: OrderEvent) -> None:
        self._events.append(event)

    async def enqueue(self, topic: str, body: bytes) -> None:
        self._outbox.append((next(self._s.outbox_ids), topic, body, False))

    def enqueue_leased(self, items: Sequence[tuple[str, bytes]]) -> list[OutboxRow]:
        rows = [OutboxRow(next(self._s.outbox_ids), topic, body) for topic, body in items]
        self._outbox += [(r.id, r.topic, r.body, True) for r in rows]
        return rows

    def remember(self, user_id: UUID, key: str, record: IdempotencyRecord) -> None:
        """Stage the Idempotency-Key's record (the desk's `place`, as `enqueue_leased`)."""
        if (user_id, key) in self._s.records or (user_id, key) in self._records:
            raise IdempotencyConflict("the Idempotency-Key was stored by another request")
        self._records[(user_id, key)] = record

    # --- batches --------------------------------------------------------------------------------

    async def orders_for_update(self, ids: Sequence[UUID]) -> dict[UUID, Order]:
        found = {i: await self.order_for_update(i) for i in ids}
        return {i: o for i, o in found.items() if o is not None}

    async def accounts_for_update(self, ids: Sequence[UUID]) -> dict[UUID, Account]:
        found: dict[UUID, Account] = {}
        for account_id in ids:
            account = self._accounts.get(account_id) or await self._s.accounts.get(account_id)
            if account is not None:
                found[account_id] = account
        return found

    async def accounts(self, ids: Sequence[UUID]) -> dict[UUID, Account]:
        return await self.accounts_for_update(ids)  # one lock serialises every unit here

    async def positions_for_update(
        self, keys: Sequence[tuple[UUID, str]]
    ) -> dict[tuple[UUID, str], Position]:
        found = {k: await self.position_for_update(*k) for k in keys}
        return {k: p for k, p in found.items() if p is not None}

    async def write(self, changes: Changes) -> list[OutboxRow]:
        for order, version in changes.orders.values():
            await self.save_order(order, version)
        for execution in changes.executions:
            await self.add_execution(execution)
        for event in changes.events:
            await self.append_event(event)
        for account_id, (cash, reserved) in changes.cash.items():
            account = (await self.accounts_for_update([account_id]))[account_id]
            await self.save_account(
                msgspec.structs.replace(
                    account,
                    cash=account.cash + cash,
                    reserved_cash=account.reserved_cash + reserved,
                )
            )
        for position in changes.positions.values():
            await self.save_position(position)
        return self.enqueue_leased(changes.outbox)


def _beyond(key: tuple[datetime, UUID], cursor: tuple[datetime, UUID], ascending: bool) -> bool:
    """Whether `key` comes after the cursor in the listing's order."""
    return key > cursor if ascending else key < cursor


def _non_negative(*amounts: Any) -> None:
    if any(a < 0 for a in amounts):
        raise ValueError("an amount would go negative")  # the Postgres CHECK's twin
