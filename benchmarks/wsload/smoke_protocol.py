"""wsload smoke checks of the protocol's edges: timestamp formats, server pings, refused
handshakes, fragmented and >64 KiB messages, large sends (64-bit frame lengths), and uvicorn's
WebSocket implementations under Starlette."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING

from smoke_checks import Gate, WsLoad, check, iso_now, quote_iso

if TYPE_CHECKING:
    from starlette.websockets import WebSocket
    from websockets.asyncio.server import ServerConnection
    from websockets.http11 import Request, Response


def timestamp_variants(t: float) -> list[str]:
    """The same instant t in every format wsload should accept (ISO ones quoted)."""
    utc = dt.datetime.fromtimestamp(t, dt.UTC)
    base, us = utc.strftime("%Y-%m-%dT%H:%M:%S"), utc.strftime("%f")
    east = utc.astimezone(dt.timezone(dt.timedelta(hours=1))).strftime("%Y-%m-%dT%H:%M:%S")
    west = utc.astimezone(dt.timezone(-dt.timedelta(hours=5, minutes=30))).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )
    return [
        f'"{base}.{us}Z"',
        f'"{base}.{us[:3]}Z"',
        f'"{base}.{us}789Z"',
        f'"{base}.{us[:1]}Z"',
        f'"{base}Z"',
        f'"{base}.{us}+00:00"',
        f'"{east}.{us}+01:00"',
        f'"{west}.{us}-05:30"',
        f'"{base}.{us}"',
        f'"{base.replace("T", " ")}.{us}Z"',
        f"{t:.6f}",
        f"{int(t)}",
    ]


async def case_formats(exe: Path) -> None:
    print(
        "3b. timestamp formats: one instant, 1 s ago, as ISO (Z, 0-9 digits, +hh:mm, -hh:mm, "
        "no zone, space) and as a number; key '\"ts\":' + space",
        flush=True,
    )
    from websockets.asyncio.server import serve

    n_variants = len(timestamp_variants(time.time()))

    async def handler(ws: ServerConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                v = timestamp_variants(time.time() - 1.0)
                await ws.send("[" + ",".join(f'{{"ts": {x}}}' for x in v) + "]")
                await asyncio.sleep(0.02)
        except ConnectionClosed:
            pass

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with WsLoad(exe, port, 20, "--time-key", '"ts":') as wl:
            await wl.ready()
            await asyncio.sleep(1.0)
            s = await wl.stats()
            lat = s["lat_ms"]
            check(
                "every variant parsed",
                s["deliveries"] == n_variants * s["messages"] == lat["n"] > 0,
                f"messages={s['messages']} deliveries={s['deliveries']} n={lat['n']}",
            )
            # 10 of 12 variants are exact (~1000 ms); the two whole-second ones are up
            # to 1 s older. A wrong zone offset would show up as hours in "max".
            check(
                "latency ~1000 ms", 1000 <= lat["p50"] < 1100 and lat["max"] < 2100, json.dumps(lat)
            )


async def case_ping(exe: Path) -> None:
    print("4. server pings every 0.2 s, closes without pong after 0.5 s", flush=True)
    from websockets.asyncio.server import serve

    conns: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        conns.add(ws)
        await ws.wait_closed()

    async with serve(
        handler, "127.0.0.1", 0, compression=None, ping_interval=0.2, ping_timeout=0.5
    ) as server:
        port = server.sockets[0].getsockname()[1]
        async with WsLoad(exe, port, 50) as wl:
            r = await wl.ready()
            check("ready after 101 (no marker)", r["ready"] == 50, str(r["ready"]))
            await asyncio.sleep(2.0)
            s = await wl.stats()
            check(
                "closed_by_server == 0 after 2 s",
                s["closed_by_server"] == 0 and s["open"] == 50,
                f"closed={s['closed_by_server']} open={s['open']} codes={s['close_codes']}",
            )
            alive = [c for c in conns if c.state.name == "OPEN"]
            check(
                "server got pongs",
                len(alive) == 50 and all(c.latency > 0 for c in alive),
                f"alive={len(alive)} max latency={max((c.latency for c in alive), default=0):.5f}s",
            )


async def case_403(exe: Path) -> None:
    print("5. server rejects every 3rd handshake with 403", flush=True)
    from websockets.asyncio.server import serve

    seen = 0

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        nonlocal seen
        seen += 1
        if seen % 3 == 0:
            return connection.respond(HTTPStatus.FORBIDDEN, "forbidden\n")
        return None

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        async with WsLoad(exe, port, 30, "--concurrency", "4") as wl:
            r = await wl.ready()
            check(
                "ready 20 / failed 10",
                r["ready"] == 20 and r["failed"] == 10,
                f"ready={r['ready']} failed={r['failed']}",
            )
            check(
                "statuses 101:20 403:10",
                r["statuses"] == {"101": 20, "403": 10},
                str(r["statuses"]),
            )


async def case_fragments(exe: Path) -> None:
    print(
        "7. fragmented and >64 KiB messages, deflate for half, server closes with 1000", flush=True
    )
    from websockets.asyncio.server import serve

    n_clients, n_frag, big_n = 20, 5, 1500
    q = json.dumps({"type": "quote", "data": {"timestamp": "X"}}, separators=(",", ":"))
    total = {"messages": 0, "deliveries": 0}
    gate = Gate(n_clients)

    async def handler(ws: ServerConnection) -> None:
        await gate.wait()
        for _ in range(n_frag):
            a, b = q.replace("X", iso_now()), q.replace("X", iso_now())
            cut = len(a) // 2  # split inside the time key's value on purpose
            await ws.send(["[", a[:cut], a[cut:] + ",", b + ",", a + "]"])
        for _ in range(3):
            big = "[" + ",".join(q.replace("X", iso_now()) for _ in range(big_n)) + "]"
            await ws.send(big)
        await ws.close(1000)

    async with serve(handler, "127.0.0.1", 0, compression="deflate", max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with WsLoad(exe, port, n_clients, "--deflate-share", "0.5") as wl:
            r = await wl.ready()
            check(
                "deflate_accepted 10",
                r["deflate_accepted"] == n_clients // 2,
                str(r["deflate_accepted"]),
            )
            deadline = time.monotonic() + 10
            codes: dict[str, int] = {}
            while time.monotonic() < deadline:
                await asyncio.sleep(0.3)
                s = await wl.stats()
                total["messages"] += s["messages"]
                total["deliveries"] += s["deliveries"]
                for k, v in s["close_codes"].items():
                    codes[k] = codes.get(k, 0) + v
                if s["open"] == 0:
                    break
            want_m, want_d = n_clients * (n_frag + 3), n_clients * (n_frag * 3 + 3 * big_n)
            check(
                "all messages/deliveries",
                total == {"messages": want_m, "deliveries": want_d},
                f"{total} want messages={want_m} deliveries={want_d}",
            )
            check("close codes", codes == {"1000": n_clients}, str(codes))


async def case_big_sends(exe: Path) -> None:
    print("8. 18 x 100 KB --send messages per connection (64-bit frame lengths)", flush=True)
    from websockets.asyncio.server import serve

    texts = [f"{i:02d}" + "x" * 100_000 for i in range(18)]
    good = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal good
        got = [await ws.recv() for _ in texts]
        good += got == texts
        await ws.send('{"type":"subscribed"}')
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        args = [a for t in texts for a in ("--send", t)]
        async with WsLoad(exe, port, 20, *args, "--ready-marker", '"subscribed"') as wl:
            r = await wl.ready()
            check("all ready", r["ready"] == 20, str(r["ready"]))
            check("server received every message intact", good == 20, f"{good}/20")


# ---------------------------------------------------------------------------
# uvicorn + Starlette


async def case_uvicorn(exe: Path, ws_impl: str) -> None:
    print(
        f"6. uvicorn ws={ws_impl} + Starlette, 1,000 messages per connection, deflate for all",
        flush=True,
    )
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    n_clients, n_msgs = 20, 1000
    gate = Gate(n_clients)

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        await gate.wait()
        for _ in range(n_msgs):
            await ws.send_text(quote_iso())
        await ws.close(1000)

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, ws=ws_impl, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # uvicorn offers no started event
        if server.started:
            break
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    length = len(quote_iso())
    try:
        async with WsLoad(exe, port, n_clients, "--deflate-share", "1.0") as wl:
            r = await wl.ready()
            check(
                "deflate_accepted = all",
                r["deflate_accepted"] == n_clients,
                str(r["deflate_accepted"]),
            )
            tot = {"messages": 0, "deliveries": 0, "bytes": 0, "inflated": 0, "n": 0, "closed": 0}
            p50 = 0.0
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                await asyncio.sleep(0.3)
                s = await wl.stats()
                for k in ("messages", "deliveries", "bytes", "inflated"):
                    tot[k] += s[k]
                tot["n"] += s["lat_ms"]["n"]
                tot["closed"] += s["closed_by_server"]
                p50 = max(p50, s["lat_ms"]["p50"])
                if s["open"] == 0:
                    break
            m = n_clients * n_msgs
            check(
                "all arrived, all inflated",
                tot["messages"] == m
                and tot["inflated"] == m
                and tot["deliveries"] == 2 * m
                and tot["n"] == 2 * m,
                str(tot),
            )
            check(
                "payload bytes decoded exactly",
                tot["bytes"] == m * length,
                f"{tot['bytes']} want {m * length}",
            )
            check(
                "closed by server with close frame", tot["closed"] == n_clients, str(tot["closed"])
            )
            check("latency parsed (p50 > 0)", p50 > 0, f"max interval p50 {p50} ms")
    finally:
        server.should_exit = True
        await task
