"""Decimal fields of request bodies (quantities, prices), read by the domain's one strict parser.

The fields are declared as `msgspec.Raw` rather than `Decimal`: msgspec's Decimal takes whatever
`Decimal()` takes ("1e28", "NaN", "1_000", " 10 ", full-width digits), and once a JSON number is
a Decimal its spelling is gone ("1e2" and "100" are the same value). The raw JSON keeps the text
as the client wrote it, so a JSON string and a JSON number both meet `parse_decimal`'s grammar.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import msgspec

from hub.domain.errors import MalformedNumber
from hub.domain.numeric import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS, parse_decimal

NULL = msgspec.Raw(b"null")
PATTERN = rf"^[+-]?[0-9]{{1,{MAX_INTEGER_DIGITS}}}(\.[0-9]{{1,{MAX_FRACTION_DIGITS}}})?$"
_STRING: dict[str, Any] = {"type": "string", "format": "decimal", "pattern": PATTERN}
_NUMBER: dict[str, Any] = {"type": "number"}
_NULL: dict[str, Any] = {"type": "null"}
_ABOUT = (
    f"decimal: at most {MAX_INTEGER_DIGITS} digits before the point and {MAX_FRACTION_DIGITS} "
    "after it; ASCII digits, no exponent"
)


def _schema(*alternatives: dict[str, Any]) -> msgspec.Meta:
    return msgspec.Meta(extra_json_schema={"anyOf": list(alternatives), "description": _ABOUT})


# A decimal string ("189.12"), or a JSON number written the same way; the Optional ones also
# take null, and default to it (with `absent()`).
DecimalText = Annotated[msgspec.Raw, _schema(_STRING, _NUMBER)]
OptionalDecimalText = Annotated[msgspec.Raw, _schema(_STRING, _NUMBER, _NULL)]
# The legacy routes' spelling: a JSON number first (as Go's float64 fields), a string accepted.
DecimalNumber = Annotated[msgspec.Raw, _schema(_NUMBER, _STRING)]
OptionalDecimalNumber = Annotated[msgspec.Raw, _schema(_NUMBER, _STRING, _NULL)]


def absent() -> Any:
    """The default of an optional decimal field: JSON null. (A Raw cannot be a plain default:
    the OpenAPI generator would have to encode it.)"""
    return msgspec.field(default_factory=lambda: NULL)


def decimal_field(raw: msgspec.Raw, field: str) -> Decimal:
    """The value of a required decimal field; MalformedNumber or NumberOutOfRange otherwise."""
    text = bytes(raw)
    if text.startswith(b'"'):
        return parse_decimal(msgspec.json.decode(text, type=str), field)
    if text[:1] and text[:1] in b"-0123456789":
        # A JSON number (msgspec has checked its syntax): ASCII, read as written.
        return parse_decimal(text.decode("ascii"), field)
    raise MalformedNumber(
        f'{field} must be a decimal string such as "189.12" or a JSON number', field=field
    )


def optional_decimal_field(raw: msgspec.Raw, field: str) -> Decimal | None:
    """As decimal_field, with JSON null (or an absent field, whose default is NULL) as None."""
    return None if bytes(raw) == b"null" else decimal_field(raw, field)
