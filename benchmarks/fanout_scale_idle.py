"""How much server memory does one idle WebSocket cost at 10,000 connections, in Hub's engine
and in a bare Starlette endpoint under the same uvicorn?

--clients idle WebSockets (for Hub authenticated by header and subscribed to `quotes:AAPL`),
spread over --sources loopback source addresses so that ephemeral ports are not the limit;
server RSS 3 s after the last one connected minus RSS before, / connections. The servers are
fanout.py's (harness.rate_servers), not publishing. Every process raises its soft open-file limit
to the hard limit.

    python benchmarks/fanout_scale_idle.py --clients 10000 --runs 3 --out /tmp/scale_idle.json
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.rate_servers import start_rate_server
from harness.scale import parser, run
from harness.wsclient import Tally, close_all, connect_many, hub_handler, one_channel, plain_handler


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {}
    for run_index in range(args.runs):
        for name in args.only.split(","):
            server = await start_rate_server(name, args.seed + run_index)
            try:
                await asyncio.sleep(1.0)
                before = server.rss()
                t0 = time.monotonic()
                hub = name == "hub"
                handler = hub_handler(Tally(), one_channel) if hub else plain_handler
                clients, errors = await connect_many(
                    server.port, args.clients, handler, args.sources, hub=hub
                )
                opened = time.monotonic() - t0
                await asyncio.sleep(3.0)
                after = server.rss()
                row = {
                    "connections": len(clients),
                    "errors": len(errors),
                    "open_seconds": round(opened, 1),
                    "rss_before_mib": round(before / 2**20, 1),
                    "rss_after_mib": round(after / 2**20, 1),
                    "rss_per_idle_connection_kib": round((after - before) / len(clients) / 1024, 2),
                }
                close_all(clients)
            finally:
                await server.stop()
            print(f"run {run_index + 1} {name}: {row}", file=sys.stderr, flush=True)
            results.setdefault(name, []).append(row)
            await asyncio.sleep(2.0)
    summary = {
        name: {
            "rss_per_idle_connection_kib": statistics.median(
                r["rss_per_idle_connection_kib"] for r in rows
            ),
            "per_run": [r["rss_per_idle_connection_kib"] for r in rows],
        }
        for name, rows in results.items()
    }
    return {"summary": summary, "runs": results}


if __name__ == "__main__":
    found = parser(__doc__, clients=10_000)
    found.add_argument("--only", default="hub,starlette", help="candidates")
    found.add_argument("--sources", type=int, default=4, help="loopback source addresses")
    arguments = found.parse_args()
    run("idle", arguments, lambda limit: measure(arguments))
