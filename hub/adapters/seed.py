"""The demo instruments (sql/seed/instruments.csv): the one list that `hub migrate` loads into
Postgres, the memory adapter serves, and the simulator prices."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal

from hub.adapters.sql_files import sql_folder
from hub.domain.instruments import Category, Instrument


@dataclass(frozen=True, slots=True)
class SeedInstrument:
    instrument: Instrument
    base_price: Decimal
    volatility: Decimal  # annualised, e.g. 0.28


def seed_instruments() -> list[SeedInstrument]:
    text = (sql_folder() / "seed" / "instruments.csv").read_text("utf-8")
    rows = csv.DictReader(io.StringIO(text))
    return [
        SeedInstrument(
            instrument=Instrument(
                symbol=row["symbol"],
                name=row["name"],
                category=Category(row["category"]),
                currency=row["currency"],
                tick_size=Decimal(row["tick_size"]),
                lot_size=Decimal(row["lot_size"]),
                tradable=row["tradable"] == "true",
            ),
            base_price=Decimal(row["base_price"]),
            volatility=Decimal(row["volatility"]),
        )
        for row in rows
    ]
