"""What can be wrong with an order: its fields (InvalidOrder) or the change asked of it."""

from __future__ import annotations

from hub.domain.errors import InvalidInput


class InvalidOrder(InvalidInput):
    """The order's fields do not make a valid order."""

    code = "invalid_order"
    title = "Invalid order"


class InvalidQuantity(InvalidOrder):
    """The quantity is not positive or not a whole number of lots."""

    code = "invalid_quantity"
    title = "Invalid quantity"


class PriceNotOnTick(InvalidOrder):
    """A limit or stop price is not positive or not a multiple of the instrument's tick size."""

    code = "price_not_on_tick"
    title = "Price not on the tick"


class InstrumentNotTradable(InvalidOrder):
    """The instrument exists but is not open for trading."""

    code = "instrument_not_tradable"
    title = "Instrument not tradable"


class IllegalTransition(InvalidInput):
    """The order's status does not allow this change."""

    code = "illegal_transition"
    title = "Illegal order transition"


class NotCancelable(IllegalTransition):
    """The order is already final, or a cancel is already pending."""

    code = "not_cancelable"
    title = "Order not cancelable"


class InvalidFill(IllegalTransition):
    """An execution that the order cannot take: overfill, bad price, untriggered stop."""

    code = "invalid_fill"
    title = "Invalid fill"
