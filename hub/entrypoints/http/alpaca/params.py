"""Query parameters and numbers as Alpaca's clients send them.

alpaca-py sends times as Python's `isoformat()` (an offset, or none for a naive time, which
Alpaca reads as UTC), dates as YYYY-MM-DD, and order quantities and prices as JSON numbers
(`2.0`, `0.0001` but also `1e-05`). Every number still ends in the domain's one strict parser
(hub.domain.numeric); an exponent is only rewritten into plain digits first, within bounds, and a
number's trailing fraction zeros are dropped (2.0 is stored as 2). A decimal string is kept as
written, as everywhere in Hub.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeVar

import msgspec

from hub.domain.errors import InvalidInput, MalformedNumber, NumberOutOfRange
from hub.domain.numeric import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS, parse_decimal, parse_int
from hub.services.market_data import parse_symbols

E = TypeVar("E", bound=Enum)

NULL = msgspec.Raw(b"null")
_MAX_NUMBER_TEXT = 40


def optional_raw() -> Any:
    """The default of an optional number field: JSON null."""
    return msgspec.field(default_factory=lambda: NULL)


def decimal(raw: msgspec.Raw, field: str) -> Decimal | None:
    """A JSON number or decimal string; None for null (or an absent field)."""
    text = bytes(raw)
    if text == b"null":
        return None
    if text.startswith(b'"'):
        return parse_decimal(msgspec.json.decode(text, type=str).strip(), field)
    if not text[:1] or text[:1] not in b"-0123456789" or len(text) > _MAX_NUMBER_TEXT:
        raise MalformedNumber(f"{field} must be a number or a decimal string", field=field)
    plain = text.decode("ascii")
    if "e" in plain or "E" in plain:  # a float as Python's json writes it: 1e-05
        try:
            value = Decimal(plain)
        except InvalidOperation:
            raise MalformedNumber(f"{field} is not a number", field=field) from None
        exponent = value.as_tuple().exponent
        if not isinstance(exponent, int) or not (
            -MAX_FRACTION_DIGITS - 20 <= exponent <= MAX_INTEGER_DIGITS
        ):
            raise NumberOutOfRange(f"{field} is out of range", field=field)
        plain = format(value, "f")
    if "." in plain:  # a JSON number's spelling means nothing (Python writes 2 as 2.0): drop it
        plain = plain.rstrip("0").rstrip(".")
    return parse_decimal(plain, field)


def symbol(text: str) -> str:
    """A symbol as Hub spells it: upper case, and a crypto pair's slash as a dash (BTC/USD is
    Hub's BTC-USD)."""
    (cleaned,) = parse_symbols([text.strip().upper().replace("/", "-")])
    return cleaned


def symbols(text: str) -> list[str]:
    return parse_symbols([s.replace("/", "-") for s in text.split(",")])


def instant(params: dict[str, str], name: str) -> datetime | None:
    """An RFC 3339 time, or a date (its midnight); a time without an offset is UTC."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{name} must be an RFC 3339 time or a date", field=name) from None


def day(params: dict[str, str], name: str) -> date | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw.strip()[:10])
    except ValueError:
        raise InvalidInput(f"{name} must be a date (YYYY-MM-DD)", field=name) from None


def integer(params: dict[str, str], name: str, default: int, maximum: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    return parse_int(raw.strip(), name, minimum=1, maximum=maximum)


def choice(params: dict[str, str], name: str, kind: type[E], default: E | None) -> E | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw.strip().lower())
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        raise InvalidInput(f"{name} must be one of {allowed}", field=name) from None


def ascending(params: dict[str, str]) -> bool:
    direction = params.get("direction", "desc").strip().lower()
    if direction not in ("asc", "desc"):
        raise InvalidInput("direction must be asc or desc", field="direction")
    return direction == "asc"
