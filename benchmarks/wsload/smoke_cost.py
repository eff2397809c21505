"""What does wsload cost? 1,000 clients against a minimal raw-asyncio server in a child process
(a real library server cannot push 100k frames/s from Python), 100 messages/s each: deliveries/s,
latency, and wsload's CPU per 100k messages/s.

    .venv/bin/python benchmarks/wsload/smoke_cost.py     # alone; smoke.py runs it last
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from smoke_checks import RESULTS, WsLoad, build, check, iso_now


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
    exe: Path, clients: int = 1000, rate: float = 100.0, secs: float = 5.0
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raw-server", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.raw_server:
        raw_server(a.raw_server)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="wsload-cost-"))
    try:
        asyncio.run(case_throughput(build(tmp)))
    finally:
        shutil.rmtree(tmp)
    return 0 if all(ok for _, ok, _ in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
