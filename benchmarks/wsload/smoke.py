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
import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.websockets import WebSocket
    from websockets.asyncio.server import ServerConnection
    from websockets.http11 import Request, Response

HERE = Path(__file__).resolve().parent
BUILD = ["cc", "-O2", "-Wall", "-Wextra", "-o", "wsload", "wsload.c", "-lz"]
SUBSCRIBED = '[{"type":"subscribed","channel":"quotes"},{"type":"subscribed","channel":"trades"}]'
AUTH = '{"type":"auth","token":"smoke"}'
SUBSCRIBE = '{"type":"subscribe","channels":["quotes","trades"]}'

RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    RESULTS.append((name, bool(ok), detail))
    print(f"  [{'ok' if ok else 'FAIL'}] {name}{': ' + detail if detail else ''}", flush=True)


def iso_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def quote_iso() -> str:
    q = json.dumps({"type": "quote", "data": {"timestamp": iso_now()}}, separators=(",", ":"))
    return f"[{q},{q}]"  # two deliveries per message, constant length


def quote_num() -> str:
    q = json.dumps({"type": "quote", "data": {"t": 0}}, separators=(",", ":"))
    q = q.replace('"t":0', f'"t":{time.time():.6f}')
    return f"[{q},{q}]"


def build(tmp: Path) -> str:
    """The benchmark's exact build command, run on a copy in tmp."""
    (tmp / "wsload.c").write_bytes((HERE / "wsload.c").read_bytes())
    r = subprocess.run(BUILD, cwd=tmp, capture_output=True, text=True)
    check("build: zero warnings", r.returncode == 0 and not r.stderr.strip(), r.stderr.strip())
    if r.returncode:
        sys.exit(1)
    return str(tmp / "wsload")


class WsLoad:
    """One wsload process driven over stdin/stdout."""

    def __init__(self, exe: str, port: int, clients: int, *args: str) -> None:
        self.argv = [
            exe,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--path",
            "/ws",
            "--clients",
            str(clients),
            *args,
        ]
        self.stderr: list[str] = []

    async def __aenter__(self) -> WsLoad:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._err = asyncio.create_task(self._drain_stderr())
        return self

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.stderr.append(line.decode().rstrip())

    async def event(self, wait_s: float = 30) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), wait_s)
        if not line:
            raise RuntimeError("wsload exited: " + "\n".join(self.stderr[-5:]))
        ev: dict[str, Any] = json.loads(line)
        return ev

    async def ready(self, wait_s: float = 30) -> dict[str, Any]:
        ev = await self.event(wait_s)
        assert ev["event"] == "ready", ev
        return ev

    async def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"stats\n")
        await self.proc.stdin.drain()
        ev = await self.event(10)
        assert ev["event"] == "stats", ev
        return ev

    async def __aexit__(self, *exc: object) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"quit\n")
            await self.proc.stdin.drain()
            try:
                rc = await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                rc = await self.proc.wait()
            if exc[0] is None:
                check("quit -> exit 0", rc == 0, f"rc={rc}")
        await self._err
        for line in self.stderr[:4]:
            print(f"    wsload stderr: {line}")
        if len(self.stderr) > 4:
            print(f"    wsload stderr: ... {len(self.stderr) - 4} more lines")


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
    exe: str,
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


async def case_formats(exe: str) -> None:
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


async def case_ping(exe: str) -> None:
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


async def case_403(exe: str) -> None:
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


async def case_fragments(exe: str) -> None:
    print(
        "7. fragmented and >64 KiB messages, deflate for half, server closes with 1000", flush=True
    )
    from websockets.asyncio.server import serve

    n_clients, n_frag, big_n = 20, 5, 1500
    q = json.dumps({"type": "quote", "data": {"timestamp": "X"}}, separators=(",", ":"))
    total = {"messages": 0, "deliveries": 0}
    arrived = asyncio.Event()
    count = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal count
        count += 1
        if count == n_clients:
            arrived.set()
        await arrived.wait()
        await asyncio.sleep(0.3)  # let wsload report "ready" before data flows
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


async def case_big_sends(exe: str) -> None:
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


async def case_uvicorn(exe: str, ws_impl: str) -> None:
    print(
        f"6. uvicorn ws={ws_impl} + Starlette, 1,000 messages per connection, deflate for all",
        flush=True,
    )
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    n_clients, n_msgs = 20, 1000
    connected = 0
    all_in = asyncio.Event()

    async def endpoint(ws: WebSocket) -> None:
        nonlocal connected
        await ws.accept()
        connected += 1
        if connected == n_clients:
            all_in.set()
        await all_in.wait()
        await asyncio.sleep(0.3)  # let wsload report "ready" before data flows
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


# ---------------------------------------------------------------------------
# throughput: a raw asyncio server in a child process (frames built once per tick)


def raw_server(rate: float) -> None:
    """Minimal WebSocket server: handshake, then one ~100-byte quote per tick
    written to every connection. Prints its port, runs until stdin closes."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    conns: set[asyncio.Transport] = set()

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.t, self.buf, self.open = transport, b"", False

        def data_received(self, data: bytes) -> None:
            if self.open:
                return  # client frames are not interesting here
            self.buf += data
            if b"\r\n\r\n" not in self.buf:
                return
            key = next(
                line.split(b":", 1)[1].strip()
                for line in self.buf.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + guid).digest())
            self.t.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self.open = True
            conns.add(self.t)

        def connection_lost(self, exc: Exception | None) -> None:
            conns.discard(self.t)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Proto, "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        stop: asyncio.Future[None] = loop.create_future()

        def on_stdin() -> None:
            if not stop.done():
                stop.set_result(None)

        loop.add_reader(0, on_stdin)
        seq, nxt = 0, time.monotonic()
        while not stop.done():
            nxt += 1 / rate
            seq += 1
            payload = (
                '{"type":"quote","data":{"symbol":"AAPL","bid":189.12,"ask":189.14,'
                f'"seq":{seq},"timestamp":"{iso_now()}"}}}}'
            ).encode()
            frame = bytes((0x81, len(payload))) + payload
            for t in list(conns):
                t.write(frame)
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
        server.close()

    asyncio.run(main())


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def case_throughput(
    exe: str, clients: int = 1000, rate: float = 100.0, secs: float = 5.0
) -> None:
    print(
        f"T. throughput: {clients} clients x {rate:.0f} msg/s (raw asyncio server, --sources 4)",
        flush=True,
    )
    srv = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--raw-server",
        str(rate),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert srv.stdin is not None and srv.stdout is not None
    port = int(await srv.stdout.readline())
    try:
        async with WsLoad(exe, port, clients, "--sources", "4", "--concurrency", "256") as wl:
            r = await wl.ready(60)
            check(
                f"ready {clients}",
                r["ready"] == clients,
                f"elapsed {r['elapsed_s']}s connect_ms={r['connect_ms']}",
            )
            await asyncio.sleep(1.0)
            await wl.stats()  # discard warm-up
            c0 = proc_cpu_s(srv.pid)
            await asyncio.sleep(secs)
            s = await wl.stats()
            srv_cpu = (proc_cpu_s(srv.pid) - c0) / s["interval_s"]
            iv, lat = s["interval_s"], s["lat_ms"]
            cpu_s = s["cpu_user_s"] + s["cpu_sys_s"]
            rate_got = s["deliveries"] / iv
            per_100k = cpu_s / iv / rate_got * 100_000 if rate_got else float("nan")
            ms_per_1k = cpu_s / s["messages"] * 1e6 if s["messages"] else float("nan")
            check(
                "throughput measured",
                s["errors"] == 0 and s["open"] == clients,
                f"{rate_got:,.0f} deliveries/s, p50={lat['p50']}ms p99={lat['p99']}ms; wsload cpu "
                f"{cpu_s / iv * 100:.1f}% of a core (user {s['cpu_user_s']}s sys {s['cpu_sys_s']}s "
                f"over {iv}s) = {per_100k * 100:.1f}% core per 100k msg/s, "
                f"{ms_per_1k:.2f} ms cpu per 1,000 msgs; server cpu {srv_cpu * 100:.0f}%; "
                f"wsload rss {s['rss_kib']} KiB",
            )
    finally:
        srv.stdin.close()
        try:
            await asyncio.wait_for(srv.wait(), 5)
        except TimeoutError:
            srv.kill()
            await srv.wait()


async def run_all(exe: str, throughput: bool) -> None:
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
    ap.add_argument("--raw-server", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.raw_server:
        raw_server(a.raw_server)
        return 0
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
