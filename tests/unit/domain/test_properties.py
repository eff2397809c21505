"""Property tests: the order state machine, and cash/share conservation over random sequences."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from uuid import uuid4

from hypothesis import event, given, settings
from hypothesis import strategies as st

from hub.domain.accounts import Account
from hub.domain.errors import HubError, InsufficientBuyingPower
from hub.domain.instruments import Category
from hub.domain.matching import match_quote
from hub.domain.orders import (
    TRANSITIONS,
    Order,
    OrderEvent,
    OrderType,
    Side,
    SubmitOrder,
    TimeInForce,
    accept,
    cancel,
    expire,
    fill,
    new_order,
    reject,
    request_cancel,
    trigger,
)
from hub.domain.positions import (
    Position,
    apply_fill,
    apply_order_event,
    empty_position,
    reserve_cash,
    reserve_shares,
)
from hub.domain.quotes import Quote
from hub.domain.risk import RiskLimits, check_order

from .factories import ACCOUNT_ID, NOW, USER_ID, D, account, instrument, order, quote

TICK = D("0.01")
ZERO = Decimal(0)
SETTINGS = settings(max_examples=200, deadline=None)

# --- (a) the state machine ---------------------------------------------------------------------

ops = st.one_of(
    st.just(("accept",)),
    st.just(("request_cancel",)),
    st.just(("cancel",)),
    st.just(("expire",)),
    st.just(("reject",)),
    st.just(("trigger",)),
    st.tuples(st.just("fill"), st.integers(-2, 12), st.integers(-300, 300)),
    st.tuples(st.just("match"), st.integers(-800, 800)),
)

order_kinds = st.sampled_from(
    [
        (OrderType.MARKET, None, None),
        (OrderType.LIMIT, "100.00", None),
        (OrderType.STOP, None, "101.00"),
        (OrderType.STOP_LIMIT, "101.50", "101.00"),
    ]
)


def _apply(o: Order, op: tuple[Any, ...], at: Any) -> tuple[Order, list[OrderEvent]]:
    name = op[0]
    if name == "accept":
        o, e = accept(o, at)
    elif name == "request_cancel":
        o, e = request_cancel(o, at)
    elif name == "cancel":
        o, e = cancel(o, at)
    elif name == "expire":
        o, e = expire(o, at)
    elif name == "reject":
        o, e = reject(o, "test", at)
    elif name == "trigger":
        o, e = trigger(o, at)
    elif name == "fill":
        price = D("100.00") + op[2] * TICK
        o, e = fill(o, exec_id=uuid4(), qty=D(op[1]), price=price, at=at)
    else:
        mid = D("100.00") + op[1] * TICK
        return match_quote(
            o,
            quote(bid=str(mid - TICK), ask=str(mid + TICK), last=str(mid)),
            exec_id=uuid4(),
            at=at,
        )
    return o, [e]


@SETTINGS
@given(
    kind=order_kinds,
    side=st.sampled_from(list(Side)),
    tif=st.sampled_from([TimeInForce.DAY, TimeInForce.GTC]),
    sequence=st.lists(ops, max_size=25),
)
def test_state_machine_never_breaks(
    kind: tuple[OrderType, str | None, str | None],
    side: Side,
    tif: TimeInForce,
    sequence: list[tuple[Any, ...]],
) -> None:
    type_, limit, stop = kind
    current = order(side, type_, qty="10", limit=limit, stop=stop, tif=tif, accepted=False)
    reserved_at_start = current.reserved_cash + current.reserved_qty
    released = D(0)
    for step, op in enumerate(sequence):
        at = NOW + timedelta(seconds=step)
        before = current
        try:
            current, events = _apply(before, op, at)
        except HubError:
            current = before
            continue
        if before.is_terminal:
            assert current == before and not events
        if not events:
            assert current == before
            continue
        assert current.version == before.version + len(events)
        assert current.version > before.version
        assert current.status == before.status or current.status in TRANSITIONS[before.status]
        assert before.filled_qty <= current.filled_qty <= current.qty
        assert current.reserved_cash >= 0 and current.reserved_qty >= 0
        assert current.updated_at == at
        released += sum((e.released_cash + e.released_qty for e in events), D(0))
        assert events[-1].order == current
    # A reservation is only ever moved, never created or lost.
    assert released + current.reserved_cash + current.reserved_qty == reserved_at_start
    if current.is_terminal:
        assert current.reserved_cash == 0 and current.reserved_qty == 0


# --- (b) cash and share conservation -----------------------------------------------------------

INSTRUMENTS = {
    "AAPL": instrument("AAPL"),
    "BTC": instrument("BTC", category=Category.CRYPTO, lot_size=D("0.001")),
}


@dataclass
class Book:
    """A tiny worker: one account, its positions, its orders and the running totals."""

    account: Account
    positions: dict[str, Position]
    orders: list[Order] = field(default_factory=list)
    quotes: dict[str, Quote] = field(default_factory=dict)
    initial_cash: Decimal = ZERO
    initial_qty: dict[str, Decimal] = field(default_factory=dict)
    bought_cost: Decimal = ZERO
    sold_proceeds: Decimal = ZERO
    net_qty: dict[str, Decimal] = field(default_factory=dict)

    def settle(self, index: int, new: Order, events: list[OrderEvent]) -> None:
        account, positions = self.account, dict(self.positions)
        try:
            for e in events:
                account, positions[new.symbol] = apply_order_event(
                    account, positions[new.symbol], e
                )
        except InsufficientBuyingPower:
            # The fill would overdraw: the worker cancels the order instead.
            new, cancel_event = cancel(self.orders[index], NOW)
            self.settle(index, new, [cancel_event])
            return
        self.account, self.positions, self.orders[index] = account, positions, new
        for e in events:
            event(f"event {e.type}")
            if e.execution is not None:
                x = e.execution
                sign = 1 if x.side is Side.BUY else -1
                self.net_qty[x.symbol] = self.net_qty.get(x.symbol, D(0)) + sign * x.qty
                if x.side is Side.BUY:
                    self.bought_cost += x.notional
                else:
                    self.sold_proceeds += x.notional

    def check(self) -> None:
        a = self.account
        assert a.cash == self.initial_cash - self.bought_cost + self.sold_proceeds
        assert 0 <= a.reserved_cash <= a.cash
        assert a.reserved_cash == sum((o.reserved_cash for o in self.orders), D(0))
        for symbol, p in self.positions.items():
            assert p.qty >= 0 and 0 <= p.reserved_qty <= p.qty
            expected = self.initial_qty[symbol] + self.net_qty.get(symbol, D(0))
            assert p.qty == expected
            open_sells = (o.reserved_qty for o in self.orders if o.symbol == symbol)
            assert p.reserved_qty == sum(open_sells, D(0))


def _quote(symbol: str, mid_ticks: int) -> Quote:
    mid = D("100.00") + mid_ticks * TICK
    return quote(symbol, bid=str(mid - TICK), ask=str(mid + TICK), last=str(mid))


submits = st.tuples(
    st.just("submit"),
    st.sampled_from(list(INSTRUMENTS)),
    st.sampled_from(list(Side)),
    order_kinds,
    st.integers(1, 40),  # lots
    st.integers(-1200, 1200),  # price offset in ticks
    st.sampled_from(list(TimeInForce)),
)
quotes = st.tuples(st.just("quote"), st.sampled_from(list(INSTRUMENTS)), st.integers(-1500, 1500))
book_ops = st.one_of(
    submits,
    submits,
    submits,
    quotes,
    quotes,
    st.tuples(st.just("fill"), st.integers(0, 30), st.integers(1, 4), st.integers(-400, 400)),
    st.tuples(st.just("request_cancel"), st.integers(0, 30)),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("expire"), st.integers(0, 30)),
)


def _submit(book: Book, op: tuple[Any, ...]) -> None:
    _, symbol, side, (type_, limit, stop), lots, offset, tif = op
    inst = INSTRUMENTS[symbol]
    shift = offset * TICK
    command = SubmitOrder(
        symbol=symbol,
        side=side,
        type=type_,
        qty=lots * inst.lot_size,
        time_in_force=tif,
        limit_price=None if limit is None else D(limit) + shift,
        stop_price=None if stop is None else D(stop) + shift,
    )
    position = book.positions[symbol]
    try:
        reservation = check_order(
            command,
            instrument=inst,
            quote=book.quotes[symbol],
            account=book.account,
            available_qty=position.qty_available,
            market_open=True,
            now=NOW,
            limits=RiskLimits(price_collar=D("0.5")),
        )
    except HubError:
        return
    created, _ = new_order(
        command,
        instrument=inst,
        reservation=reservation,
        account_id=ACCOUNT_ID,
        user_id=USER_ID,
        at=NOW,
    )
    book.account = reserve_cash(book.account, reservation.cash)
    book.positions[symbol] = reserve_shares(position, reservation.qty)
    book.orders.append(accept(created, NOW)[0])


def _step(book: Book, op: tuple[Any, ...]) -> None:
    name = op[0]
    if name == "submit":
        _submit(book, op)
        return
    if name == "quote":
        book.quotes[op[1]] = _quote(op[1], op[2])
        for i, o in enumerate(book.orders):
            if o.symbol == op[1]:
                new, events = match_quote(o, book.quotes[op[1]], exec_id=uuid4(), at=NOW)
                book.settle(i, new, events)
        return
    if not book.orders:
        return
    index = op[1] % len(book.orders)
    o = book.orders[index]
    try:
        if name == "fill":
            lot = INSTRUMENTS[o.symbol].lot_size
            part = (o.remaining_qty * op[2] / 4 / lot).to_integral_value(ROUND_FLOOR) * lot
            price = D("100.00") + op[3] * TICK
            new, event = fill(o, exec_id=uuid4(), qty=max(part, lot), price=price, at=NOW)
        elif name == "request_cancel":
            new, event = request_cancel(o, NOW)
        elif name == "cancel":
            new, event = cancel(o, NOW)
        else:
            new, event = expire(o, NOW)
    except HubError:
        return
    book.settle(index, new, [event])


@SETTINGS
@given(
    cash=st.integers(0, 200_000),
    aapl=st.integers(0, 50),
    btc_lots=st.integers(0, 5000),
    sequence=st.lists(book_ops, min_size=5, max_size=60),
)
def test_cash_and_shares_are_conserved(
    cash: int, aapl: int, btc_lots: int, sequence: list[tuple[Any, ...]]
) -> None:
    positions = {}
    initial_qty = {"AAPL": D(aapl), "BTC": btc_lots * D("0.001")}
    for symbol, qty in initial_qty.items():
        flat = empty_position(ACCOUNT_ID, USER_ID, symbol)
        positions[symbol] = apply_fill(flat, Side.BUY, qty, D("90.00")) if qty else flat
    book = Book(
        account=account(str(cash)),
        positions=positions,
        quotes={s: _quote(s, 0) for s in INSTRUMENTS},
        initial_cash=D(cash),
        initial_qty=initial_qty,
    )
    book.check()
    for op in sequence:
        _step(book, op)
        book.check()
    # Closing every open order gives back every reservation.
    for i, o in enumerate(book.orders):
        if not o.is_terminal:
            new, event = cancel(o, NOW)
            book.settle(i, new, [event])
    book.check()
    assert book.account.reserved_cash == 0
    assert all(p.reserved_qty == 0 for p in book.positions.values())
