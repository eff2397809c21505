"""The result JSON: the environment stamp (versions, host, commit) and where the file goes."""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

from .config import HUB_ROOT, RESULTS

NOTE = (
    "load generator, Hub's processes, PostgreSQL, Redis and RabbitMQ all share the host's cores "
    "(a shared, noisy VM): figures are lower bounds of what a dedicated host would show"
)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def git_commit(tree: Path = HUB_ROOT) -> str:
    """The tree's short commit, marked when hub/ or streaming/ have uncommitted changes."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "hub", "streaming"],
        cwd=tree,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return commit + ("+uncommitted changes in hub/ or streaming/" if dirty else "")


def environment(
    packages: Iterable[str], *, note: str = NOTE, tree: Path = HUB_ROOT
) -> dict[str, Any]:
    versions = {}
    for package in ("hub", *packages):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "git_commit": git_commit(tree),
        "versions": versions,
        "load_average_1_5_15": load_average(),
        "note": note,
    }


def command_line() -> str:
    return " ".join([".venv/bin/python", *sys.argv])


def write_report(name: str, report: dict[str, Any], out: str | None) -> Path:
    """`out`, or benchmarks/results/NAME-DATE.json."""
    path = Path(out) if out else RESULTS / f"{name}-{time.strftime('%Y-%m-%d')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def emit(report: dict[str, Any], out: str | None) -> None:
    """Print the report as JSON, and write it to `out` too if given."""
    text = json.dumps(report, indent=2)
    if out:
        Path(out).write_text(text + "\n")
    print(text)


def head(name: str, doc: str) -> dict[str, Any]:
    """A report's first keys: the benchmark, its question (the docstring's first paragraph), when
    (UTC) and the command."""
    return {
        "benchmark": name,
        "question": doc.split("\n\n")[0].replace("\n", " "),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command_line(),
    }


def finish(
    name: str,
    report: dict[str, Any],
    out: str | None,
    chart: Callable[[dict[str, Any], Path], Path] | None = None,
) -> Path:
    """Write the report (and its chart beside it), print its summary; the JSON's path."""
    path = write_report(name, report, out)
    drawn = f" and {chart(report, path.with_suffix('.png'))}" if chart else ""
    print(json.dumps(report["summary"], indent=2))
    print(f"wrote {path}{drawn}", file=sys.stderr)
    return path


def out_flag(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--out", help=f"JSON path (default benchmarks/results/{name}-DATE.json)")
