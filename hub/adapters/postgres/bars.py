"""Bars in PostgreSQL (sql/migrations/0004_bars.sql): one row per (symbol, timeframe, t), each
write one statement over arrays, each read one index range scan."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import asyncpg

from hub.domain.bars import Bar, Timeframe, merge

_COLUMNS = "symbol, timeframe, t, o, h, l, c, v, n, notional, as_of"
_ROWS = (
    "SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::numeric[],"
    " $5::numeric[], $6::numeric[], $7::numeric[], $8::numeric[], $9::integer[],"
    " $10::numeric[], $11::timestamptz[])"
)
# The SQL form of hub.domain.bars.merge: the snapshot further along, by (as_of, n), is kept.
_UPSERT = (
    f"INSERT INTO bars ({_COLUMNS}) {_ROWS}"
    " ON CONFLICT (symbol, timeframe, t) DO UPDATE SET"
    " o = excluded.o, h = excluded.h, l = excluded.l, c = excluded.c, v = excluded.v,"
    " n = excluded.n, notional = excluded.notional, as_of = excluded.as_of"
    " WHERE (excluded.as_of, excluded.n) >= (bars.as_of, bars.n)"
)
_INSERT_MISSING = f"INSERT INTO bars ({_COLUMNS}) {_ROWS} ON CONFLICT DO NOTHING"
# A statement's arrays stay a few megabytes; a year of backfill is a few dozen statements.
_BATCH = 5000


def _bar(row: asyncpg.Record) -> Bar:
    return Bar(
        symbol=row["symbol"],
        timeframe=Timeframe(row["timeframe"]),
        t=row["t"],
        o=row["o"],
        h=row["h"],
        l=row["l"],
        c=row["c"],
        v=row["v"],
        n=row["n"],
        notional=row["notional"],
        as_of=row["as_of"],
    )


def _columns(bars: Sequence[Bar]) -> list[list[object]]:
    return [
        [b.symbol for b in bars],
        [str(b.timeframe) for b in bars],
        [b.t for b in bars],
        [b.o for b in bars],
        [b.h for b in bars],
        [b.l for b in bars],
        [b.c for b in bars],
        [b.v for b in bars],
        [b.n for b in bars],
        [b.notional for b in bars],
        [b.as_of for b in bars],
    ]


class PostgresBars:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def upsert(self, bars: Iterable[Bar]) -> None:
        # One statement cannot update a row twice: fold repeats of a key first, as the store
        # would. Key order keeps two writers (there should be one) from deadlocking.
        latest: dict[tuple[str, Timeframe, datetime], Bar] = {}
        for bar in bars:
            latest[bar.key] = merge(latest.get(bar.key), bar)
        if latest:
            rows = [latest[key] for key in sorted(latest)]
            await self._pool.execute(_UPSERT, *_columns(rows))

    async def insert_missing(self, bars: Iterable[Bar]) -> int:
        batch: list[Bar] = []
        inserted = 0
        for bar in bars:
            batch.append(bar)
            if len(batch) == _BATCH:
                inserted += await self._insert(batch)
                batch = []
        if batch:
            inserted += await self._insert(batch)
        return inserted

    async def _insert(self, batch: Sequence[Bar]) -> int:
        status: str = await self._pool.execute(_INSERT_MISSING, *_columns(batch))
        return int(status.rsplit(" ", 1)[1])  # "INSERT 0 <rows>"

    async def query(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int,
    ) -> list[Bar]:
        if limit <= 0:
            return []
        # Each shape of range (open or closed at either end) is its own statement, so that
        # each is planned as the index range scan it is; a catch-all `($3 IS NULL OR t >= $3)`
        # would leave a generic plan that filters instead.
        where = "symbol = $1 AND timeframe = $2"
        args: list[object] = [symbol, timeframe.value]
        if start is not None:
            args.append(start)
            where += f" AND t >= ${len(args)}"
        if end is not None:
            args.append(end)
            where += f" AND t <= ${len(args)}"
        args.append(limit)
        order = "ASC" if start is not None else "DESC"
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM bars WHERE {where} ORDER BY t {order} LIMIT ${len(args)}",
            *args,
        )
        bars = [_bar(row) for row in rows]
        if start is None:
            bars.reverse()  # the most recent `limit`, read newest first, answered ascending
        return bars

    async def latest(self, symbols: Iterable[str]) -> list[Bar]:
        # One index probe per (symbol, timeframe), newest first, instead of a scan of all bars.
        rows = await self._pool.fetch(
            f"SELECT b.* FROM unnest($1::text[]) AS s (symbol)"
            f" CROSS JOIN unnest($2::text[]) AS f (timeframe)"
            f" CROSS JOIN LATERAL (SELECT {_COLUMNS} FROM bars"
            f"  WHERE bars.symbol = s.symbol AND bars.timeframe = f.timeframe"
            f"  ORDER BY t DESC LIMIT 1) AS b",
            list(symbols),
            [t.value for t in Timeframe],
        )
        return [_bar(row) for row in rows]

    async def prune(self, before: Mapping[Timeframe, datetime]) -> int:
        deleted = 0
        async with self._pool.acquire() as conn:
            for timeframe, cutoff in before.items():
                status: str = await conn.execute(
                    "DELETE FROM bars WHERE timeframe = $1 AND t < $2", timeframe.value, cutoff
                )
                deleted += int(status.rsplit(" ", 1)[1])  # "DELETE <rows>"
        return deleted
