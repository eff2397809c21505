"""The Order aggregate: submit validation, status machine, fills, reservations, matching."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from hub.domain.errors import (
    IllegalTransition,
    InstrumentNotTradable,
    InvalidFill,
    InvalidOrder,
    InvalidQuantity,
    NotCancelable,
    PriceNotOnTick,
)
from hub.domain.matching import marketable_price, match_quote, stop_triggered
from hub.domain.orders import (
    TRANSITIONS,
    OrderEventType,
    OrderStatus,
    OrderType,
    Reservation,
    Side,
    TimeInForce,
    accept,
    cancel,
    expire,
    fill,
    new_order,
    reject,
    request_cancel,
    trigger,
    validate_submit,
)

from .factories import ACCOUNT_ID, NOW, USER_ID, D, instrument, order, quote, submit

LATER = NOW + timedelta(seconds=1)


# --- submit validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "limit", "stop"),
    [
        (OrderType.MARKET, None, None),
        (OrderType.LIMIT, "100.00", None),
        (OrderType.STOP, None, "100.00"),
        (OrderType.STOP_LIMIT, "101.00", "100.00"),
    ],
)
def test_valid_field_combinations(type_: OrderType, limit: str | None, stop: str | None) -> None:
    validate_submit(submit(type_=type_, limit=limit, stop=stop), instrument())


@pytest.mark.parametrize(
    ("type_", "limit", "stop", "field"),
    [
        (OrderType.MARKET, "100.00", None, "limit_price"),
        (OrderType.MARKET, None, "100.00", "stop_price"),
        (OrderType.LIMIT, None, None, "limit_price"),
        (OrderType.LIMIT, "100.00", "99.00", "stop_price"),
        (OrderType.STOP, None, None, "stop_price"),
        (OrderType.STOP, "100.00", "100.00", "limit_price"),
        (OrderType.STOP_LIMIT, None, "100.00", "limit_price"),
        (OrderType.STOP_LIMIT, "100.00", None, "stop_price"),
    ],
)
def test_invalid_field_combinations(
    type_: OrderType, limit: str | None, stop: str | None, field: str
) -> None:
    with pytest.raises(InvalidOrder) as info:
        validate_submit(submit(type_=type_, limit=limit, stop=stop), instrument())
    assert info.value.code == "invalid_order"
    assert info.value.extra["field"] == field


@pytest.mark.parametrize("qty", ["0", "-1", "1.5", "NaN", "Infinity"])
def test_quantity_must_be_positive_whole_lots(qty: str) -> None:
    with pytest.raises(InvalidQuantity) as info:
        validate_submit(submit(qty=qty), instrument())
    assert info.value.code == "invalid_quantity"


def test_fractional_lots_for_crypto() -> None:
    btc = instrument("BTCUSD", lot_size=D("0.0001"))
    validate_submit(submit(qty="0.0003", symbol="BTCUSD"), btc)
    with pytest.raises(InvalidQuantity):
        validate_submit(submit(qty="0.00015", symbol="BTCUSD"), btc)


@pytest.mark.parametrize("price", ["100.005", "0", "-1.00", "NaN"])
def test_prices_on_the_tick(price: str) -> None:
    with pytest.raises(PriceNotOnTick) as info:
        validate_submit(submit(limit=price), instrument())
    assert info.value.code == "price_not_on_tick"
    with pytest.raises(PriceNotOnTick):
        validate_submit(submit(type_=OrderType.STOP, limit=None, stop=price), instrument())


def test_instrument_must_be_tradable_and_match() -> None:
    with pytest.raises(InstrumentNotTradable) as info:
        validate_submit(submit(), instrument(tradable=False))
    assert info.value.code == "instrument_not_tradable"
    with pytest.raises(InvalidOrder):
        validate_submit(submit(symbol="MSFT"), instrument())


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
def test_stops_cannot_be_ioc_or_fok(tif: TimeInForce) -> None:
    with pytest.raises(InvalidOrder):
        validate_submit(
            submit(type_=OrderType.STOP, limit=None, stop="100.00", tif=tif), instrument()
        )
    validate_submit(submit(type_=OrderType.MARKET, limit=None, tif=tif), instrument())


def test_new_order_is_pending_new_with_its_reservation() -> None:
    created, event = new_order(
        submit(),
        instrument=instrument(),
        reservation=Reservation(cash=D("1000.00")),
        account_id=ACCOUNT_ID,
        user_id=USER_ID,
        at=NOW,
    )
    assert created.status is OrderStatus.PENDING_NEW
    assert created.reserved_cash == D("1000.00")
    assert created.filled_qty == 0 and created.filled_avg_price is None
    assert created.version == 1
    assert event.type is OrderEventType.NEW and event.order == created


@pytest.mark.parametrize(
    ("side", "reservation"),
    [
        (Side.BUY, Reservation()),
        (Side.BUY, Reservation(cash=D(1), qty=D(1))),
        (Side.SELL, Reservation(qty=D(5))),
        (Side.SELL, Reservation(cash=D(1), qty=D(10))),
    ],
)
def test_new_order_needs_the_right_reservation(side: Side, reservation: Reservation) -> None:
    with pytest.raises(InvalidOrder):
        new_order(
            submit(side),
            instrument=instrument(),
            reservation=reservation,
            account_id=ACCOUNT_ID,
            user_id=USER_ID,
            at=NOW,
        )


# --- state machine -----------------------------------------------------------------------------


def test_terminal_statuses_have_no_way_out() -> None:
    terminal = {s for s in OrderStatus if s.is_terminal}
    assert terminal == {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.REJECTED,
    }
    assert set(TRANSITIONS) == set(OrderStatus)


def test_accept_sets_submitted_at_and_bumps_version() -> None:
    pending = order(accepted=False)
    accepted, event = accept(pending, LATER)
    assert accepted.status is OrderStatus.NEW
    assert accepted.submitted_at == LATER and accepted.updated_at == LATER
    assert accepted.version == pending.version + 1
    assert event.type is OrderEventType.ACCEPTED
    with pytest.raises(IllegalTransition):
        accept(accepted, LATER)


def test_reject_only_before_acceptance_and_releases_everything() -> None:
    pending = order(accepted=False)
    rejected, event = reject(pending, "market closed", LATER)
    assert rejected.status is OrderStatus.REJECTED
    assert rejected.reject_reason == "market closed"
    assert rejected.reserved_cash == 0 and event.released_cash == pending.reserved_cash
    with pytest.raises(IllegalTransition) as info:
        reject(order(), "late", LATER)
    assert info.value.code == "illegal_transition"


def test_cancel_flow_and_not_cancelable() -> None:
    working = order()
    pending, event = request_cancel(working, LATER)
    assert pending.status is OrderStatus.PENDING_CANCEL
    assert pending.reserved_cash == working.reserved_cash  # held until confirmed
    assert event.released_cash == 0
    with pytest.raises(NotCancelable):
        request_cancel(pending, LATER)
    canceled, event = cancel(pending, LATER)
    assert canceled.status is OrderStatus.CANCELED and canceled.canceled_at == LATER
    assert canceled.reserved_cash == 0 and event.released_cash == working.reserved_cash
    for op in (request_cancel, cancel):
        with pytest.raises(NotCancelable) as info:
            op(canceled, LATER)
        assert info.value.code == "not_cancelable"


def test_pending_new_can_be_canceled() -> None:
    canceled, _ = cancel(order(accepted=False), LATER)
    assert canceled.status is OrderStatus.CANCELED


def test_expire_releases_sell_reservation() -> None:
    sell = order(Side.SELL, qty="7")
    expired, event = expire(sell, LATER)
    assert expired.status is OrderStatus.EXPIRED and expired.expired_at == LATER
    assert expired.reserved_qty == 0 and event.released_qty == D(7)
    with pytest.raises(IllegalTransition):
        expire(expired, LATER)


# --- fills -------------------------------------------------------------------------------------


def test_partial_then_full_fill_weighted_average() -> None:
    buy = order(qty="10", limit="100.00")  # reserves 1000.00
    first, event = fill(buy, exec_id=uuid4(), qty=D(4), price=D("99.00"), at=LATER)
    assert first.status is OrderStatus.PARTIALLY_FILLED
    assert first.filled_qty == 4 and first.filled_avg_price == D("99.00")
    assert event.type is OrderEventType.PARTIAL_FILL
    assert event.released_cash == D("400.00") and first.reserved_cash == D("600.00")
    assert event.execution is not None and event.execution.notional == D("396.00")
    done, event = fill(first, exec_id=uuid4(), qty=D(6), price=D("100.00"), at=LATER)
    assert done.status is OrderStatus.FILLED and done.filled_at == LATER
    assert done.filled_avg_price == D("99.6")
    thirds, _ = fill(
        order(qty="3", limit="2.00"), exec_id=uuid4(), qty=D(2), price=D("1"), at=LATER
    )
    thirds, _ = fill(thirds, exec_id=uuid4(), qty=D(1), price=D("2"), at=LATER)
    assert thirds.filled_avg_price == D("1.3333333333")
    assert done.reserved_cash == 0 and event.released_cash == D("600.00")
    assert event.type is OrderEventType.FILL
    assert done.version == buy.version + 2


def test_buy_release_rounds_up_and_last_fill_releases_the_rest() -> None:
    buy = order(type_=OrderType.MARKET, qty="3", limit=None, reserved_cash="100.00")
    a, ev_a = fill(buy, exec_id=uuid4(), qty=D(1), price=D("10.00"), at=LATER)
    assert ev_a.released_cash == D("33.3333333334")
    b, ev_b = fill(a, exec_id=uuid4(), qty=D(2), price=D("10.00"), at=LATER)
    assert ev_a.released_cash + ev_b.released_cash == D("100.00")
    assert b.reserved_cash == 0


def test_limit_buy_release_covers_every_fill_exactly() -> None:
    buy = order(qty="7", limit="100.03")  # reserves exactly 700.21
    for qty in ("3", "1", "3"):
        before = buy
        buy, event = fill(buy, exec_id=uuid4(), qty=D(qty), price=D("100.03"), at=LATER)
        assert event.released_cash == D(qty) * D("100.03")
        assert buy.reserved_cash == before.reserved_cash - event.released_cash


def test_sell_fill_releases_the_filled_shares() -> None:
    sell = order(Side.SELL, qty="10", limit="100.00")
    part, event = fill(sell, exec_id=uuid4(), qty=D(3), price=D("100.50"), at=LATER)
    assert part.reserved_qty == D(7) and event.released_qty == D(3)
    assert event.released_cash == 0


@pytest.mark.parametrize("qty", ["0", "-1", "11"])
def test_fill_qty_must_fit(qty: str) -> None:
    with pytest.raises(InvalidFill) as info:
        fill(order(qty="10"), exec_id=uuid4(), qty=D(qty), price=D("99.00"), at=LATER)
    assert info.value.code == "invalid_fill"


def test_fill_cannot_be_worse_than_the_limit() -> None:
    with pytest.raises(InvalidFill):
        fill(
            order(Side.BUY, limit="100.00"), exec_id=uuid4(), qty=D(1), price=D("100.01"), at=LATER
        )
    with pytest.raises(InvalidFill):
        fill(
            order(Side.SELL, limit="100.00"), exec_id=uuid4(), qty=D(1), price=D("99.99"), at=LATER
        )


def test_untriggered_stop_cannot_fill_and_pending_new_cannot_fill() -> None:
    stop = order(type_=OrderType.STOP, limit=None, stop="101.00")
    with pytest.raises(InvalidFill):
        fill(stop, exec_id=uuid4(), qty=D(1), price=D("101.00"), at=LATER)
    with pytest.raises(IllegalTransition):
        fill(order(accepted=False), exec_id=uuid4(), qty=D(1), price=D("99.00"), at=LATER)


def test_partial_fill_while_pending_cancel_stays_pending_cancel() -> None:
    pending, _ = request_cancel(order(qty="10"), LATER)
    part, _ = fill(pending, exec_id=uuid4(), qty=D(2), price=D("99.00"), at=LATER)
    assert part.status is OrderStatus.PENDING_CANCEL
    done, _ = fill(part, exec_id=uuid4(), qty=D(8), price=D("99.00"), at=LATER)
    assert done.status is OrderStatus.FILLED


def test_filled_order_cannot_change() -> None:
    done, _ = fill(order(qty="1"), exec_id=uuid4(), qty=D(1), price=D("99.00"), at=LATER)
    with pytest.raises(InvalidFill):
        fill(done, exec_id=uuid4(), qty=D(1), price=D("99.00"), at=LATER)
    with pytest.raises(NotCancelable):
        cancel(done, LATER)
    with pytest.raises(IllegalTransition):
        expire(done, LATER)


# --- pricing and triggering --------------------------------------------------------------------


def test_market_orders_take_the_touch() -> None:
    q = quote(bid="99.99", ask="100.01")
    assert marketable_price(order(type_=OrderType.MARKET, limit=None), q) == D("100.01")
    sell = order(Side.SELL, OrderType.MARKET, limit=None)
    assert marketable_price(sell, q) == D("99.99")
    assert marketable_price(sell, quote(bid="0")) is None


def test_limit_orders_fill_at_the_touch_when_it_is_at_or_better() -> None:
    q = quote(bid="99.99", ask="100.01")
    assert marketable_price(order(limit="100.01"), q) == D("100.01")
    assert marketable_price(order(limit="100.50"), q) == D("100.01")  # price improvement
    assert marketable_price(order(limit="100.00"), q) is None
    assert marketable_price(order(Side.SELL, limit="99.99"), q) == D("99.99")
    assert marketable_price(order(Side.SELL, limit="99.00"), q) == D("99.99")
    assert marketable_price(order(Side.SELL, limit="100.00"), q) is None


def test_buy_stop_triggers_on_last_or_ask_at_or_above() -> None:
    stop = order(type_=OrderType.STOP, limit=None, stop="101.00")
    assert not stop_triggered(stop, quote(last="100.00", ask="100.99"))
    assert stop_triggered(stop, quote(last="101.00", ask="100.99"))
    assert stop_triggered(stop, quote(last="100.00", ask="101.00"))
    assert marketable_price(stop, quote(last="102.00", ask="102.01")) is None  # not triggered yet


def test_sell_stop_triggers_on_last_or_bid_at_or_below() -> None:
    stop = order(Side.SELL, OrderType.STOP, limit=None, stop="99.00")
    assert not stop_triggered(stop, quote(last="99.50", bid="99.01"))
    assert stop_triggered(stop, quote(last="99.00", bid="99.01"))
    assert stop_triggered(stop, quote(last="99.50", bid="98.99"))
    assert not stop_triggered(stop, quote(last="99.50", bid="0"))
    assert not stop_triggered(order(), quote())


def test_trigger_turns_stop_into_market_and_stop_limit_into_limit() -> None:
    stop, event = trigger(order(type_=OrderType.STOP, limit=None, stop="101.00"), LATER)
    assert stop.triggered and event.type is OrderEventType.TRIGGERED
    assert marketable_price(stop, quote(ask="102.00")) == D("102.00")
    stop_limit, _ = trigger(order(type_=OrderType.STOP_LIMIT, limit="101.50", stop="101.00"), LATER)
    assert marketable_price(stop_limit, quote(ask="101.50")) == D("101.50")
    assert marketable_price(stop_limit, quote(ask="101.51")) is None
    with pytest.raises(IllegalTransition):
        trigger(stop, LATER)
    with pytest.raises(IllegalTransition):
        trigger(order(), LATER)


# --- the simulated venue -----------------------------------------------------------------------


def test_match_fills_marketable_order_fully() -> None:
    filled, events = match_quote(
        order(limit="100.05"), quote(ask="100.01"), exec_id=uuid4(), at=LATER
    )
    assert filled.status is OrderStatus.FILLED and filled.filled_avg_price == D("100.01")
    assert [e.type for e in events] == [OrderEventType.FILL]


def test_match_leaves_resting_limit_alone() -> None:
    resting = order(limit="99.00")
    same, events = match_quote(resting, quote(), exec_id=uuid4(), at=LATER)
    assert same == resting and events == []


def test_match_triggers_then_fills_a_stop() -> None:
    stop = order(type_=OrderType.STOP, limit=None, stop="101.00", reserved_cash="1100.00")
    done, events = match_quote(stop, quote(last="101.00", ask="101.02"), exec_id=uuid4(), at=LATER)
    assert [e.type for e in events] == [OrderEventType.TRIGGERED, OrderEventType.FILL]
    assert done.filled_avg_price == D("101.02")


def test_match_triggers_stop_limit_that_is_not_yet_marketable() -> None:
    stop_limit = order(type_=OrderType.STOP_LIMIT, limit="101.00", stop="101.00")
    after, events = match_quote(
        stop_limit, quote(last="101.00", ask="101.05"), exec_id=uuid4(), at=LATER
    )
    assert after.triggered and after.status is OrderStatus.NEW
    assert [e.type for e in events] == [OrderEventType.TRIGGERED]


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
def test_ioc_and_fok_cancel_when_not_marketable(tif: TimeInForce) -> None:
    unmarketable = order(limit="99.00", tif=tif)
    canceled, events = match_quote(unmarketable, quote(), exec_id=uuid4(), at=LATER)
    assert canceled.status is OrderStatus.CANCELED
    assert events[0].released_cash == unmarketable.reserved_cash
    marketable = order(limit="101.00", tif=tif)
    filled, _ = match_quote(marketable, quote(), exec_id=uuid4(), at=LATER)
    assert filled.status is OrderStatus.FILLED and filled.filled_qty == marketable.qty


def test_match_ignores_orders_not_working_and_checks_symbol() -> None:
    pending = order(accepted=False)
    assert match_quote(pending, quote(), exec_id=uuid4(), at=LATER) == (pending, [])
    with pytest.raises(InvalidFill):
        match_quote(order(), quote("MSFT"), exec_id=uuid4(), at=LATER)


def test_orders_and_events_encode_to_json() -> None:
    import msgspec

    _, event = fill(order(qty="2"), exec_id=uuid4(), qty=D(1), price=D("99.50"), at=LATER)
    decoded = msgspec.json.decode(msgspec.json.encode(event), type=type(event))
    assert decoded == event
    assert isinstance(decoded.order.qty, Decimal)
