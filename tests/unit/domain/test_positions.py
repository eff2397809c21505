"""Positions and the cash/share ledger."""

from __future__ import annotations

from uuid import uuid4

import pytest

from hub.domain.errors import (
    Forbidden,
    InconsistentLedger,
    InsufficientBuyingPower,
    InsufficientShares,
)
from hub.domain.orders import OrderType, Side, cancel, fill, request_cancel
from hub.domain.positions import (
    Position,
    apply_fill,
    apply_order_event,
    empty_position,
    release_cash,
    release_shares,
    reserve_cash,
    reserve_shares,
    settle_buy,
    settle_sell,
)

from .factories import ACCOUNT_ID, NOW, USER_ID, D, account, order


def flat(symbol: str = "AAPL") -> Position:
    return empty_position(ACCOUNT_ID, USER_ID, symbol)


def test_buys_average_the_entry_price() -> None:
    p = apply_fill(flat(), Side.BUY, D(10), D("100"))
    p = apply_fill(p, Side.BUY, D(30), D("120"))
    assert p.qty == 40 and p.avg_entry_price == D("115")
    thirds = apply_fill(apply_fill(flat(), Side.BUY, D(2), D("1")), Side.BUY, D(1), D("2"))
    assert thirds.avg_entry_price == D("1.3333333333")  # stored scale, as NUMERIC(28, 10)
    assert p.cost_basis == D("4600")
    assert p.realized_pl == 0


def test_sells_book_realized_pl_and_keep_the_average() -> None:
    p = apply_fill(flat(), Side.BUY, D(10), D("100"))
    p = reserve_shares(p, D(4))
    p = apply_fill(p, Side.SELL, D(4), D("110"), released_qty=D(4))
    assert p.qty == 6 and p.reserved_qty == 0 and p.avg_entry_price == D("100")
    assert p.realized_pl == D("40")
    p = apply_fill(p, Side.SELL, D(6), D("90"))
    assert p.qty == 0 and p.realized_pl == D("-20") and p.cost_basis == 0
    again = apply_fill(p, Side.BUY, D(1), D("50"))
    assert again.avg_entry_price == D("50") and again.realized_pl == D("-20")


def test_never_short() -> None:
    p = apply_fill(flat(), Side.BUY, D(5), D("100"))
    with pytest.raises(InsufficientShares) as info:
        apply_fill(p, Side.SELL, D(6), D("100"))
    assert info.value.code == "insufficient_shares"
    assert isinstance(info.value, Forbidden)
    with pytest.raises(InsufficientShares):
        reserve_shares(reserve_shares(p, D(3)), D(3))


def test_shares_reserved_for_another_sell_cannot_be_sold_again() -> None:
    p = reserve_shares(apply_fill(flat(), Side.BUY, D(5), D("100")), D(5))
    with pytest.raises(InsufficientShares):
        apply_fill(p, Side.SELL, D(1), D("100"))  # an unreserved sell of reserved shares


def test_release_shares_bounds() -> None:
    p = reserve_shares(apply_fill(flat(), Side.BUY, D(5), D("100")), D(2))
    assert p.qty_available == 3
    assert release_shares(p, D(2)).reserved_qty == 0
    with pytest.raises(InconsistentLedger):
        release_shares(p, D(3))
    with pytest.raises(InconsistentLedger):
        release_shares(p, D(-1))


@pytest.mark.parametrize(("qty", "price"), [("0", "1"), ("1", "0"), ("-1", "1"), ("NaN", "1")])
def test_fill_needs_positive_qty_and_price(qty: str, price: str) -> None:
    with pytest.raises(InconsistentLedger):
        apply_fill(flat(), Side.BUY, D(qty), D(price))


def test_cash_reserve_release_settle() -> None:
    a = reserve_cash(account("1000"), D("600"))
    assert a.reserved_cash == D("600") and a.buying_power == D("400")
    with pytest.raises(InsufficientBuyingPower) as info:
        reserve_cash(a, D("400.01"))
    assert info.value.code == "insufficient_buying_power"
    a = settle_buy(a, D("300"), D("290"))
    assert a.cash == D("710") and a.reserved_cash == D("300")
    a = release_cash(a, D("300"))
    assert a.reserved_cash == 0
    with pytest.raises(InconsistentLedger):
        release_cash(a, D("0.01"))
    assert settle_sell(a, D("90")).cash == D("800")


def test_settle_buy_never_overdraws() -> None:
    a = reserve_cash(account("1000"), D("1000"))
    assert settle_buy(a, D("1000"), D("1000")).cash == 0
    with pytest.raises(InsufficientBuyingPower):
        settle_buy(a, D("1000"), D("1000.01"))


def test_settle_buy_may_use_free_buying_power_but_not_other_reservations() -> None:
    a = reserve_cash(account("1000"), D("600"))
    slipped = settle_buy(a, D("300"), D("301"))  # 1 over its release, from free buying power
    assert slipped.cash == D("699") and slipped.reserved_cash == D("300")
    with pytest.raises(InsufficientBuyingPower):
        settle_buy(a, D("300"), D("700.01"))  # would eat the other order's 300


def test_apply_order_event_buy_fill_and_cancel() -> None:
    buy = order(qty="10", limit="100.00")
    a = reserve_cash(account("5000"), buy.reserved_cash)
    p = flat()
    part, ev = fill(buy, exec_id=uuid4(), qty=D(4), price=D("99.50"), at=NOW)
    a, p = apply_order_event(a, p, ev)
    assert a.cash == D("5000") - D("398.00")
    assert a.reserved_cash == D("600.00") and p.qty == 4
    pc, ev = request_cancel(part, NOW)
    assert apply_order_event(a, p, ev) == (a, p)
    _, ev = cancel(pc, NOW)
    a, p = apply_order_event(a, p, ev)
    assert a.reserved_cash == 0 and a.cash == D("4602.00")


def test_apply_order_event_sell_fill() -> None:
    p = reserve_shares(apply_fill(flat(), Side.BUY, D(10), D("100")), D(10))
    sell = order(Side.SELL, OrderType.MARKET, qty="10", limit=None)
    _, ev = fill(sell, exec_id=uuid4(), qty=D(10), price=D("101.00"), at=NOW)
    a, p = apply_order_event(account("0"), p, ev)
    assert a.cash == D("1010.00")
    assert p.qty == 0 and p.reserved_qty == 0 and p.realized_pl == D("10.00")


def test_apply_order_event_checks_ownership() -> None:
    _, ev = cancel(order(), NOW)
    with pytest.raises(InconsistentLedger):
        apply_order_event(account(), flat("MSFT"), ev)
    other = empty_position(uuid4(), USER_ID, "AAPL")
    with pytest.raises(InconsistentLedger):
        apply_order_event(account(), other, ev)
