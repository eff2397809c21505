"""Positions and the cash/share ledger: what fills, reservations and releases do to an account.

Two invariants hold after every function here, or it raises instead: 0 <= reserved_cash <= cash
on the account; qty >= 0 and 0 <= reserved_qty <= qty on a position (no
shorting). Amounts are applied exactly as given: nothing is rounded.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import msgspec
from msgspec.structs import replace

from hub.domain.accounts import Account
from hub.domain.errors import InconsistentLedger, InsufficientBuyingPower, InsufficientShares
from hub.domain.orders import QUANTUM, OrderEvent, OrderEventType, Side

ZERO = Decimal(0)


class Position(msgspec.Struct, frozen=True, kw_only=True):
    account_id: UUID
    user_id: UUID
    symbol: str
    qty: Decimal
    reserved_qty: Decimal
    avg_entry_price: Decimal
    realized_pl: Decimal

    @property
    def qty_available(self) -> Decimal:
        """Shares not already promised to open sell orders."""
        return self.qty - self.reserved_qty

    @property
    def cost_basis(self) -> Decimal:
        return self.qty * self.avg_entry_price


def empty_position(account_id: UUID, user_id: UUID, symbol: str) -> Position:
    """A flat position, the starting point of the first buy of a symbol."""
    return Position(
        account_id=account_id,
        user_id=user_id,
        symbol=symbol,
        qty=ZERO,
        reserved_qty=ZERO,
        avg_entry_price=ZERO,
        realized_pl=ZERO,
    )


def _positive(amount: Decimal, what: str) -> None:
    if not amount.is_finite() or amount < 0:
        raise InconsistentLedger(f"{what} must be a non-negative amount, not {amount}")


def apply_fill(
    position: Position, side: Side, qty: Decimal, price: Decimal, *, released_qty: Decimal = ZERO
) -> Position:
    """The position after a fill.

    A buy averages the entry price by quantity. A sell reduces qty (and reserved_qty by
    ``released_qty``, the shares its order had reserved for this fill), books
    (price - avg_entry_price) * qty as realized P&L and leaves the average unchanged; a position
    sold down to zero stays, flat, with its realized P&L.
    """
    if not qty.is_finite() or qty <= 0 or not price.is_finite() or price <= 0:
        raise InconsistentLedger(f"a fill needs a positive qty and price, not {qty} @ {price}")
    if side is Side.BUY:
        total = position.qty + qty
        avg = ((position.cost_basis + qty * price) / total).quantize(QUANTUM)
        return replace(position, qty=total, avg_entry_price=avg)
    _positive(released_qty, "released_qty")
    if qty > position.qty:
        raise InsufficientShares(
            f"cannot sell {qty} {position.symbol}: {position.qty} held", symbol=position.symbol
        )
    if released_qty > position.reserved_qty:
        raise InconsistentLedger(f"cannot release {released_qty}: {position.reserved_qty} reserved")
    left = position.qty - qty
    reserved = position.reserved_qty - released_qty
    if reserved > left:
        # The sold shares were promised to another open sell: selling them twice is a bug.
        raise InsufficientShares(f"{qty} {position.symbol} are reserved by other sell orders")
    return replace(
        position,
        qty=left,
        reserved_qty=reserved,
        avg_entry_price=position.avg_entry_price if left else ZERO,
        realized_pl=position.realized_pl
        + ((price - position.avg_entry_price) * qty).quantize(QUANTUM),
    )


def reserve_shares(position: Position, qty: Decimal) -> Position:
    """Hold back shares for a new sell order; no shorting."""
    _positive(qty, "qty")
    if qty > position.qty_available:
        raise InsufficientShares(
            f"cannot sell {qty} {position.symbol}: {position.qty_available} available",
            symbol=position.symbol,
        )
    return replace(position, reserved_qty=position.reserved_qty + qty)


def release_shares(position: Position, qty: Decimal) -> Position:
    """Give back shares a sell order no longer needs (canceled, expired, rejected)."""
    _positive(qty, "qty")
    if qty > position.reserved_qty:
        raise InconsistentLedger(f"cannot release {qty}: {position.reserved_qty} reserved")
    return replace(position, reserved_qty=position.reserved_qty - qty)


def reserve_cash(account: Account, amount: Decimal) -> Account:
    """Hold back cash for a new buy order, within buying power."""
    _positive(amount, "amount")
    if amount > account.buying_power:
        raise InsufficientBuyingPower(
            f"order needs {amount}, buying power is {account.buying_power}",
            required=str(amount),
            buying_power=str(account.buying_power),
        )
    return replace(account, reserved_cash=account.reserved_cash + amount)


def release_cash(account: Account, amount: Decimal) -> Account:
    """Give back cash a buy order no longer needs."""
    _positive(amount, "amount")
    if amount > account.reserved_cash:
        raise InconsistentLedger(f"cannot release {amount}: {account.reserved_cash} reserved")
    return replace(account, reserved_cash=account.reserved_cash - amount)


def settle_buy(account: Account, reserved_release: Decimal, cost: Decimal) -> Account:
    """A buy fill: its reservation share is released and the actual cost leaves the cash.

    The cost may exceed the released reservation (a market buy whose price ran past the buffer);
    the difference comes out of buying power, and the fill is refused if buying power would go
    negative (cash below what other open orders reserved; the accounts table CHECKs the same).
    """
    _positive(cost, "cost")
    released = release_cash(account, reserved_release)
    if cost > released.buying_power:
        raise InsufficientBuyingPower(
            f"fill costs {cost}, buying power is {released.buying_power}", required=str(cost)
        )
    return replace(released, cash=released.cash - cost)


def settle_sell(account: Account, proceeds: Decimal) -> Account:
    """A sell fill: the proceeds are added to cash."""
    _positive(proceeds, "proceeds")
    return replace(account, cash=account.cash + proceeds)


def apply_order_event(
    account: Account, position: Position, event: OrderEvent
) -> tuple[Account, Position]:
    """What one order event does to the account and to the position in the order's symbol.

    Fills settle cash and shares; canceled, expired and rejected release the reservation the event
    reports; every other event changes nothing. Pass ``empty_position(...)`` when none exists.
    """
    order = event.order
    if order.account_id != account.id or position.account_id != account.id:
        raise InconsistentLedger(f"order {order.id} does not belong to account {account.id}")
    if position.symbol != order.symbol:
        raise InconsistentLedger(f"order {order.id} is for {order.symbol}, not {position.symbol}")
    if event.type in (OrderEventType.FILL, OrderEventType.PARTIAL_FILL):
        execution = event.execution
        if execution is None:
            raise InconsistentLedger(f"fill event {event.id} carries no execution")
        position = apply_fill(
            position,
            execution.side,
            execution.qty,
            execution.price,
            released_qty=event.released_qty,
        )
        if execution.side is Side.BUY:
            account = settle_buy(account, event.released_cash, execution.notional)
        else:
            account = settle_sell(account, execution.notional)
    elif event.type in (
        OrderEventType.CANCELED,
        OrderEventType.EXPIRED,
        OrderEventType.REJECTED,
    ):
        account = release_cash(account, event.released_cash)
        position = release_shares(position, event.released_qty)
    return account, position
