"""What the fanout_scale_* scripts share: their flags and their report (printed, and written to
--out if given)."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .procs import raise_nofile
from .report import command_line, emit, environment


def parser(doc: str, clients: int) -> argparse.ArgumentParser:
    found = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    found.add_argument("--clients", type=int, default=clients)
    found.add_argument("--runs", type=int, default=1)
    found.add_argument("--seed", type=int, default=1)
    found.add_argument("--out", help="also write the JSON report here")
    return found


def run(
    mode: str, args: argparse.Namespace, measure: Callable[[int], Awaitable[dict[str, Any]]]
) -> None:
    """Raise the open-file limit, run measure(limit), print (and --out) the report."""

    async def main() -> None:
        limit = raise_nofile()
        started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        result = await measure(limit)
        host = environment([], note="server and load client share the same cores")
        report = {
            "benchmark": f"fanout_scale {mode}",
            "command": command_line(),
            "started": started,
            "config": {"mode": mode, **vars(args)},
            "host": {**host, "open_file_hard_limit": limit},
            **result,
        }
        await asyncio.to_thread(emit, report, args.out)

    asyncio.run(main())
