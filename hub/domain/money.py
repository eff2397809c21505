"""Decimal money helpers. Money never touches float: amounts are parsed from strings or ints."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")


def to_cents(amount: Decimal) -> Decimal:
    """Round a cash amount to cents, banker's rounding, once, at the edge."""
    # "+ 0" turns a negative zero ("-0.00", a tiny loss rounded away) into a plain zero.
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN) + 0


def parse_money(text: str) -> Decimal:
    """Parse a decimal string such as "100000.00"; raise ValueError for anything else."""
    try:
        value = Decimal(text)
    except ArithmeticError as exc:
        raise ValueError(f"not a decimal amount: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {text!r}")
    return value
