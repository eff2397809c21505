"""Timestamps in query parameters: RFC 3339 with a zone, read into aware UTC datetimes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from hub.domain.errors import InvalidInput


def instant(raw: str) -> datetime | None:
    """An RFC 3339 timestamp with its zone, in UTC; None when it is anything else. A naive one
    cannot be compared with the stored (aware) times, and an offset that moves it past year 1
    or 9999 cannot be converted: both would otherwise fail deep in the query, as a 500."""
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return value.astimezone(UTC) if value.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def time_param(params: Mapping[str, str], name: str) -> datetime | None:
    """The query parameter `name` as an instant, None when absent; InvalidInput (422) naming
    the parameter when it is not RFC 3339 with a zone."""
    raw = params.get(name)
    if raw is None:
        return None
    value = instant(raw)
    if value is None:
        raise InvalidInput(
            f"{name} must be an RFC 3339 timestamp with a time zone (e.g. Z)", field=name
        )
    return value
