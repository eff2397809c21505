"""Charts next to the JSON results (matplotlib, the [bench] extra), drawn off-screen."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def figure(
    path: Path, figsize: tuple[float, float], ncols: int = 1, dpi: int = 110
) -> Iterator[Any]:
    """(fig, axes) of 1 x ncols panels; laid out, written to `path` and closed on exit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=figsize)
    try:
        yield fig, axes
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)


def label(ax: Any, xlabel: str, ylabel: str, title: str, *, legend: bool = True) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend:
        ax.legend(fontsize=7)


def nan_for_none(values: list[Any]) -> list[float]:
    return [float("nan") if v is None else v for v in values]
