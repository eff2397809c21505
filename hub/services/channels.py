"""Names of the fan-out channels hub publishes on."""

from __future__ import annotations

from uuid import UUID


def quotes_channel(symbol: str) -> str:
    return f"quotes:{symbol}"


def bars_channel(symbol: str) -> str:
    """The forming 1-minute bar of one symbol (latest value)."""
    return f"bars:{symbol}"


def orders_channel(user_id: UUID | str) -> str:
    return f"orders:{user_id}"


def portfolio_channel(user_id: UUID | str) -> str:
    return f"portfolio:{user_id}"
