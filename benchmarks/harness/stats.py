"""Percentiles, latency summaries, medians over runs and slopes."""

from __future__ import annotations

import math
import statistics
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def percentile_at_index(values: list[float], q: float) -> float:
    """The value at index int(q * n) of the sorted values (q in 0..1); NaN for no values.

    The method fanout.py and fanout_scale_* have used since their first figures, kept so that
    those stay comparable: one rank above `percentile` when q * n is a whole number."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_ms(seconds: list[float]) -> dict[str, float | int]:
    return {
        "count": len(seconds),
        "p50_ms": round(percentile(seconds, 50) * 1000, 2),
        "p90_ms": round(percentile(seconds, 90) * 1000, 2),
        "p99_ms": round(percentile(seconds, 99) * 1000, 2),
        "max_ms": round(max(seconds, default=float("nan")) * 1000, 2),
    }


def median_of(rows: list[dict[str, Any]], path: str) -> float | None:
    """Median of a dotted key over runs, skipping runs where it is missing or NaN."""
    values = []
    for row in rows:
        value: Any = row
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, int | float) and value == value:
            values.append(float(value))
    return round(statistics.median(values), 2) if values else None


def medians(rows: list[dict[str, Any]], paths: dict[str, str]) -> dict[str, float | None]:
    """{name: median_of(rows, path)} for every (name, dotted path)."""
    return {name: median_of(rows, path) for name, path in paths.items()}


def slope_per_min(rows: list[dict[str, Any]], key: str) -> float | None:
    """Least-squares slope of rows[key] against rows["t"] (seconds), per minute."""
    points = [(r["t"], r[key]) for r in rows if isinstance(r.get(key), int | float)]
    if len(points) < 3:
        return None
    t0 = points[0][0]
    xs: list[float] = [(t - t0) / 60 for t, _ in points]
    ys = [float(v) for _, v in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var, 3)
