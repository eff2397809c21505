"""The open-loop HTTP load generator: a raw asyncio HTTP/1.1 client (keep-alive connections,
Content-Length bodies only), so that one Python process can offer a few thousand requests per
second without becoming the bottleneck; it reports its own CPU so that this can be checked.

Request i is sent at start + i/rate whatever happened to earlier ones (open loop), and latency
runs from that due time, so time spent waiting for a free connection counts (no coordinated
omission)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from .cpu import CpuMeter, HostCpu
from .stats import latency_ms, percentile


def http_request(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; responses must carry
    Content-Length. Parsing happens in data_received: no task or future per request."""

    def __init__(self, loop: _Loop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.current: tuple[int, float] | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, i: int, scheduled: float) -> None:
        self.current = (i, scheduled)
        if self.transport is None:
            self.connection_lost(None)
            return
        self.transport.write(self.loop.make_request(i))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.current is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            at = head.find(b"content-length:")
            if at < 0:
                raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
            stop = head.find(b"\r\n", at)
            length = int(head[at + 15 : stop if stop > 0 else None])
            if len(self.buffer) < end + 4 + length:
                return
            status = int(head[9:12])
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            done, self.current = self.current, None
            self.loop.completed(self, done[0], done[1], status, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.current is not None:
            i, scheduled = self.current
            self.current = None
            self.loop.failed(self, i, scheduled)
        if not self.closed.done():
            self.closed.set_result(None)


class _Loop:
    def __init__(
        self,
        make_request: Callable[[int], bytes],
        first_measured: int,
        on_response: Callable[[int, int, bytes, float, float], None] | None,
    ) -> None:
        self.make_request = make_request
        self.first_measured = first_measured
        self.on_response = on_response
        self.idle: list[_Connection] = []
        self.pending: collections.deque[tuple[int, float]] = collections.deque()
        self.latencies: list[float] = []
        self.lateness: list[float] = []
        self.statuses: dict[str, int] = {}
        self.outstanding = 0
        self.measured_done = 0

    def submit(self, i: int, scheduled: float) -> None:
        self.outstanding += 1
        if self.idle:
            self._send(self.idle.pop(), i, scheduled)
        else:
            self.pending.append((i, scheduled))

    def _send(self, conn: _Connection, i: int, scheduled: float) -> None:
        self.lateness.append(time.perf_counter() - scheduled)
        conn.send(i, scheduled)

    def completed(
        self, conn: _Connection, i: int, scheduled: float, status: int, body: bytes
    ) -> None:
        done = time.perf_counter()
        self.outstanding -= 1
        if i >= self.first_measured:
            self.latencies.append(done - scheduled)
            self.measured_done += 1
            self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        if self.on_response is not None:
            self.on_response(i, status, body, scheduled, done)
        if self.pending:
            self._send(conn, *self.pending.popleft())
        else:
            self.idle.append(conn)

    def failed(self, conn: _Connection, i: int, scheduled: float) -> None:
        self.outstanding -= 1
        if i >= self.first_measured:
            self.statuses["connection_lost"] = self.statuses.get("connection_lost", 0) + 1
        if conn in self.idle:
            self.idle.remove(conn)


@dataclass
class OpenLoopResult:
    offered_per_s: float
    completed_per_s: float
    latency: dict[str, float | int]
    statuses: dict[str, int]
    unfinished: int
    client_cpu_pct: float
    late_dispatch_ms_p99: float


async def open_loop(
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    *,
    rate: float,
    duration: float,
    warmup: float,
    connections: int,
    on_response: Callable[[int, int, bytes, float, float], None] | None = None,
    drain_timeout: float = 30.0,
) -> OpenLoopResult:
    """Send request i at start + i/rate whatever happened to earlier ones (open loop) over a
    pool of keep-alive connections; latency runs from the scheduled send time, so time spent
    waiting for a free connection counts (no coordinated omission). Requests scheduled during
    the warm-up are sent but not measured."""
    total = int(rate * (warmup + duration))
    state = _Loop(make_request, int(rate * warmup), on_response)
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(connections):
        _, conn = await loop.create_connection(lambda: _Connection(state), host, port)
        conns.append(conn)
        state.idle.append(conn)
    me = psutil.Process()
    start = time.perf_counter() + 0.01
    sent = 0
    cpu0 = me.cpu_times()
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            state.submit(sent, start + sent / rate)
            sent += 1
        await asyncio.sleep(0.001)  # libuv timers tick in ms: 0.0005 would spin
    deadline = time.perf_counter() + drain_timeout
    while state.outstanding > 0 and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.002)
    end = time.perf_counter()
    cpu1 = me.cpu_times()
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    measured_wall = max(end - (start + warmup), 1e-9)
    return OpenLoopResult(
        offered_per_s=rate,
        completed_per_s=round(state.measured_done / measured_wall, 1),
        latency=latency_ms(state.latencies),
        statuses=state.statuses,
        unfinished=state.outstanding,
        client_cpu_pct=round(
            100 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (end - start), 1
        ),
        late_dispatch_ms_p99=round(percentile(state.lateness, 99) * 1000, 2),
    )


async def metered_open_loop(
    pids: dict[str, int], host: str, port: int, make_request: Callable[[int], bytes], **kw: Any
) -> tuple[OpenLoopResult, dict[str, float], float]:
    """`open_loop` with the servers' CPU (% of a core, per process) and the host's CPU measured
    over the same span."""
    cpu, host_cpu = CpuMeter(pids), HostCpu()
    cpu.start()
    host_cpu.start()
    result = await open_loop(host, port, make_request, **kw)
    return result, cpu.stop(), host_cpu.stop()


def load_flags(parser: argparse.ArgumentParser, *, duration: float, quick: str) -> None:
    """The flags of a benchmark made of open-loop steps (each run seeded)."""
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--duration", type=float, default=duration, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds sent, not measured")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
