"""Strict, bounded parsing of the numbers clients send: quantities, prices, page sizes.

`Decimal(text)` and `int(text)` are far more permissive than a money API should be: they take
exponents ("1e28"), "NaN" and "Infinity", underscores ("1_000"), padding (" 10 "), and any
Unicode digit (full-width ones; `str.isdigit` even takes a superscript two, which `int` then
refuses). Worse, a value they accept can break the arithmetic later: 1e28 % 0.01 raises
`decimal.InvalidOperation` once the quotient no longer fits the 28-digit context. Every number
therefore enters through this one grammar, with bounds chosen so that no rule downstream can
overflow.
"""

from __future__ import annotations

import re
from decimal import Decimal

from hub.domain.errors import InvalidInput, MalformedNumber, NumberOutOfRange

# Bounds of a decimal quantity or price, digits as written.
# - 10 fraction digits: QUANTUM (1e-10) is the finest scale Hub stores or computes to, and the
#   finest tick (0.01) and lot (0.0001) need far fewer; a finer value can never be valid.
# - 12 integer digits: an order's notional is capped at 1,000,000 and the smallest tick is 0.01,
#   so no valid quantity reaches 9 digits and no listed price reaches 7; 12 leaves a wide margin.
# - Together at most 22 significant digits: a value divided by (or taken modulo) any step down
#   to 1e-10 has a quotient of at most 22 digits, inside the default 28-digit Decimal context,
#   so the tick and lot rules can no longer raise; and a NUMERIC column holds it exactly.
MAX_INTEGER_DIGITS = 12
MAX_FRACTION_DIGITS = 10

# ASCII only: `\d` would match every Unicode digit. A sign, digits, and an optional point with
# digits on both sides (the JSON number grammar without its exponent).
_DECIMAL = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]+))?", re.ASCII)
_INTEGER = re.compile(r"[0-9]+", re.ASCII)


def parse_decimal(text: str, field: str) -> Decimal:
    """`text` as a Decimal: `[+-]digits[.digits]`, at most MAX_INTEGER_DIGITS before the point
    and MAX_FRACTION_DIGITS after it. Negative zero is read as zero. The sign is kept: whether
    a value must be positive is the caller's rule (and its error code)."""
    match = _DECIMAL.fullmatch(text)
    if match is None:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise MalformedNumber(
            f"{field} must be a plain decimal number such as 10 or 189.12 "
            f"(ASCII digits, no exponent, spaces or separators), not {shown!r}",
            field=field,
        )
    _sign, whole, fraction = match.groups()
    if len(whole) > MAX_INTEGER_DIGITS or len(fraction or "") > MAX_FRACTION_DIGITS:
        raise NumberOutOfRange(
            f"{field} may have at most {MAX_INTEGER_DIGITS} digits before the decimal point "
            f"and {MAX_FRACTION_DIGITS} after it",
            field=field,
        )
    value = Decimal(text)
    return value.copy_abs() if value.is_zero() else value


def parse_int(text: str, field: str, *, minimum: int, maximum: int) -> int:
    """`text` as an int from `minimum` to `maximum`: ASCII digits only (no sign, no spaces).
    MalformedNumber when it is not digits, InvalidInput when it is out of range (both are the
    `validation_error` page sizes always answered). The length is checked before converting, so
    a megabyte of digits costs nothing (and never reaches int()'s own 4300-digit limit)."""
    message = f"{field} must be a whole number from {minimum} to {maximum}"
    if _INTEGER.fullmatch(text) is None:
        raise MalformedNumber(message, field=field)
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(maximum)) or not minimum <= int(digits) <= maximum:
        raise InvalidInput(message, field=field)
    return int(digits)
