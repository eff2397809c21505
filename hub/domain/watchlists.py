"""Watchlists: several named lists per user, each of at most 20 symbols, kept in the order the
user added them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from msgspec.structs import replace

from hub.domain.errors import InvalidInput, WatchlistFull

MAX_SYMBOLS = 20
MAX_NAME = 100
DEFAULT_NAME = "My watchlist"
DEFAULT_SYMBOLS = ("AAPL", "MSFT", "AMZN", "VOO", "BTC-USD")


class Watchlist(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    user_id: UUID
    name: str
    symbols: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


def clean_name(name: str) -> str:
    cleaned = name.strip()
    if not 0 < len(cleaned) <= MAX_NAME:
        raise InvalidInput(f"name must be 1 to {MAX_NAME} characters", field="name")
    return cleaned


def with_symbols(watchlist: Watchlist, symbols: tuple[str, ...], at: datetime) -> Watchlist:
    unique = tuple(dict.fromkeys(symbols))
    if len(unique) > MAX_SYMBOLS:
        raise WatchlistFull(f"a watchlist holds at most {MAX_SYMBOLS} symbols")
    return replace(watchlist, symbols=unique, updated_at=at)


def add_symbol(watchlist: Watchlist, symbol: str, at: datetime) -> Watchlist:
    if symbol in watchlist.symbols:
        return watchlist
    return with_symbols(watchlist, (*watchlist.symbols, symbol), at)


def remove_symbol(watchlist: Watchlist, symbol: str, at: datetime) -> Watchlist:
    return replace(
        watchlist, symbols=tuple(s for s in watchlist.symbols if s != symbol), updated_at=at
    )
