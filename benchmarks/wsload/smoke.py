"""Manual smoke check for benchmarks/wsload/wsload.c (not a pytest test).

    .venv/bin/python benchmarks/wsload/smoke.py [--skip-throughput] [--keep]

Builds wsload with the benchmark's build command into a temporary directory,
runs it against in-process Python servers (websockets, uvicorn + Starlette)
and checks what it reports. A final throughput check runs 1,000 clients
against a minimal raw-asyncio server in a child process (a real library server
cannot push 100k frames/s from Python) and prints wsload's CPU cost.

wsload control protocol: it connects at startup, prints one JSON line
{"event":"ready",...} once every connection is ready or failed, then one
{"event":"stats",...} line per "stats" line on stdin; "quit" or EOF ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smoke_checks import (
    AUTH,
    RESULTS,
    SUBSCRIBE,
    SUBSCRIBED,
    WsLoad,
    build,
    check,
    quote_iso,
    quote_num,
)
from smoke_cost import case_throughput
from smoke_protocol import (
    case_403,
    case_big_sends,
    case_formats,
    case_fragments,
    case_ping,
    case_uvicorn,
)

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection


# ---------------------------------------------------------------------------
# websockets (library) servers


class QuoteServer:
    """auth + subscribe in, one frame with "subscribed" twice out, then a quote
    broadcast every 10 ms to every subscribed connection."""

    # serve_kw: keyword arguments for websockets' serve(), which has no typed kwargs bundle.
    def __init__(self, make_quote: Callable[[], str] = quote_iso, **serve_kw: Any) -> None:
        self.make_quote = make_quote
        self.serve_kw = serve_kw
        self.clients: set[ServerConnection] = set()
        self.bad_requests = 0

    async def handler(self, ws: ServerConnection) -> None:
        first, second = await ws.recv(), await ws.recv()
        assert ws.request is not None  # set by the handshake, before the handler runs
        if (first, second) != (AUTH, SUBSCRIBE) or ws.request.headers.get("X-Smoke") != "1":
            self.bad_requests += 1
        await ws.send(SUBSCRIBED)
        self.clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            self.clients.discard(ws)

    async def pump(self) -> None:
        from websockets.asyncio.server import broadcast

        while True:
            await asyncio.sleep(0.01)
            if self.clients:
                broadcast(self.clients, self.make_quote())

    async def __aenter__(self) -> QuoteServer:
        from websockets.asyncio.server import serve

        self.server = await serve(self.handler, "127.0.0.1", 0, backlog=1024, **self.serve_kw)
        self.port = self.server.sockets[0].getsockname()[1]
        self.pump_task = asyncio.create_task(self.pump())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.pump_task.cancel()
        self.server.close()
        await self.server.wait_closed()


def quote_args(*more: str) -> list[str]:
    return [
        "--send",
        AUTH,
        "--send",
        SUBSCRIBE,
        "--ready-marker",
        '"subscribed"',
        "--ready-count",
        "2",
        "--header",
        "X-Smoke: 1",
        *more,
    ]


async def run_quotes(
    exe: Path,
    title: str,
    make_quote: Callable[[], str],
    compression: str | None,
    args: list[str],
    deflate_expected: int | None,
) -> None:
    print(title, flush=True)
    length = len(make_quote())
    srv = QuoteServer(make_quote, compression=compression)
    async with srv, WsLoad(exe, srv.port, 200, *args) as wl:
        r = await wl.ready()
        check(
            "ready 200 / failed 0",
            r["ready"] == 200 and r["failed"] == 0,
            f"ready={r['ready']} failed={r['failed']} elapsed={r['elapsed_s']}s "
            f"connect_ms={r['connect_ms']}",
        )
        check("statuses", r["statuses"] == {"101": 200}, str(r["statuses"]))
        if deflate_expected is not None:
            check(
                "deflate_accepted",
                r["deflate_accepted"] == deflate_expected,
                f"{r['deflate_accepted']} (want {deflate_expected})",
            )
        await asyncio.sleep(1.0)
        s = await wl.stats()
        m, d, lat = s["messages"], s["deliveries"], s["lat_ms"]
        check("server saw auth+subscribe+header", srv.bad_requests == 0, str(srv.bad_requests))
        check("messages arrive", m >= 200 * 40, f"{m} messages in {s['interval_s']}s")
        check(
            "2 deliveries per message", d == 2 * m and lat["n"] == d, f"deliveries={d} n={lat['n']}"
        )
        check(
            "payload bytes decoded exactly",
            s["bytes"] == m * length,
            f"bytes={s['bytes']} want {m * length}, wire={s['wire_bytes']}, "
            f"inflated={s['inflated']}",
        )
        check("latency 0 < p50 < 50 ms", 0 < lat["p50"] < 50, json.dumps(lat))
        check(
            "open/ready/no errors",
            s["open"] == 200
            and s["ready"] == 200
            and s["errors"] == 0
            and s["closed_by_server"] == 0,
            f"open={s['open']} errors={s['errors']}",
        )
        if deflate_expected:
            check(
                "compressed half inflated",
                0.4 * m <= s["inflated"] <= 0.6 * m,
                f"inflated={s['inflated']} of {m}",
            )
        print(f"    stats: {json.dumps(s)}")


async def run_all(exe: Path, throughput: bool) -> None:
    await run_quotes(
        exe,
        "1. websockets, no compression, ISO timestamps, 200 clients",
        quote_iso,
        None,
        quote_args(),
        0,
    )
    await run_quotes(
        exe,
        "2. websockets, permessage-deflate for half the clients",
        quote_iso,
        "deflate",
        quote_args("--deflate-share", "0.5"),
        100,
    )
    await run_quotes(
        exe,
        "3. websockets, numeric time key",
        quote_num,
        None,
        quote_args("--time-key", '"t":'),
        None,
    )
    await case_formats(exe)
    await case_ping(exe)
    await case_403(exe)
    await case_uvicorn(exe, "websockets-sansio")
    await case_uvicorn(exe, "wsproto")
    await case_fragments(exe)
    await case_big_sends(exe)
    if throughput:
        await case_throughput(exe)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary build directory")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wsload-smoke-"))
    try:
        exe = build(tmp)
        print(f"built {exe}")
        asyncio.run(run_all(exe, not a.skip_throughput))
    finally:
        if not a.keep:
            shutil.rmtree(tmp)
    failed = [name for name, ok, _ in RESULTS if not ok]
    summary = f"{len(RESULTS) - len(failed)}/{len(RESULTS)} checks passed"
    print("\n" + summary + (f"; FAILED: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
