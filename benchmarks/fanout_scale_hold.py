"""How many concurrent WebSocket connections does one Hub process hold (target 50,000), and does
a publication still reach every one of them?

Opens --clients connections (capped at the open-file hard limit minus 100 descriptors of
headroom, and says so), each authenticated by header and subscribed to `quotes:AAPL`, spread over
--sources loopback source addresses; holds them --hold s, then publishes 2 quotes/s for 3 s and
counts the connections reached. The server is fanout.py's Hub (harness.rate_servers). Every
process raises its soft open-file limit to the hard limit (`ulimit -Hn`).

    python benchmarks/fanout_scale_hold.py --clients 50000 --hold 10 --out /tmp/scale_hold.json
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
from harness.wsclient import Tally, close_all, connect_many, hub_handler, one_channel


async def measure(args: argparse.Namespace, limit: int) -> dict[str, Any]:
    headroom = 100  # listening socket, epoll, pipes, redis, module files, ...
    n = min(args.clients, limit - headroom)
    capped = n < args.clients
    server = await start_rate_server("hub", args.seed)
    tally = Tally()
    try:
        await asyncio.sleep(1.0)
        before = server.rss()
        t0 = time.monotonic()
        clients, errors = await connect_many(
            server.port, n, hub_handler(tally, one_channel), args.sources, hub=True
        )
        opened = time.monotonic() - t0
        print(f"opened {len(clients)} in {opened:.1f}s", file=sys.stderr, flush=True)
        await asyncio.sleep(args.hold)
        alive = [c for c in clients if not c.closed.done()]
        rss = server.rss()
        # 2 publications/s for 3 s: every live client should receive about 6.
        await server.rate(2)
        await asyncio.sleep(3.0)
        await server.rate(0)
        await asyncio.sleep(2.0)
        reached = sum(1 for c in alive if c.got > 0)
        received = [c.got for c in alive]
        result = {
            "requested": args.clients,
            "attempted": n,
            "capped_by_open_file_limit": capped,
            "open_file_hard_limit": limit,
            "source_addresses": args.sources,
            "opened": len(clients),
            "open_errors": len(errors),
            "first_errors": sorted(set(errors))[:3],
            "open_seconds": round(opened, 1),
            "held_after_seconds": args.hold,
            "held": len(alive),
            "publication_reached": reached,
            "received_min_median_max": [min(received), statistics.median(received), max(received)]
            if received
            else None,
            "server_rss_mib": round(rss / 2**20, 1),
            "rss_per_connection_kib": round((rss - before) / max(len(alive), 1) / 1024, 2),
        }
        close_all(clients)
    finally:
        await server.stop()
    return result


if __name__ == "__main__":
    found = parser(__doc__, clients=50_000)
    found.add_argument("--sources", type=int, default=4, help="loopback source addresses")
    found.add_argument("--hold", type=float, default=10.0, help="seconds to hold")
    arguments = found.parse_args()
    run("hold", arguments, lambda limit: measure(arguments, limit))
