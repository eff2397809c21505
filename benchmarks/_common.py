"""Helpers shared by the market-data and orders benchmarks: the environment stamp, Hub's
processes on real services, an open-loop HTTP load generator, CPU meters and percentiles.

The load generator is a raw asyncio HTTP/1.1 client (keep-alive connections, Content-Length
bodies only), so that one Python process can offer a few thousand requests per second without
becoming the bottleneck; each benchmark reports the generator's own CPU so that can be checked.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
# Hub's processes run from this tree: another checkout (e.g. a `git worktree` of an older commit)
# measures that code with this benchmark, for before/after figures in one method.
HUB_ROOT = Path(os.environ.get("HUB_BENCH_ROOT", ROOT)).resolve()
POSTGRES_URL = os.environ.get("HUB_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_BASE = os.environ.get("HUB_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
AMQP_URL = os.environ.get("HUB_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
JWT_SECRET = "bench-secret-0123456789abcdefghijklmnopqrstuv"
PASSWORD = "Ben4ch-Load-Gen!"
NOTE = (
    "load generator, Hub's processes, PostgreSQL, Redis and RabbitMQ all share the host's cores "
    "(a shared, noisy VM): figures are lower bounds of what a dedicated host would show"
)

# --- the environment stamp ----------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment(packages: Iterable[str]) -> dict[str, Any]:
    versions = {}
    for package in ("hub", *packages):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HUB_ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "hub", "streaming"],
        cwd=HUB_ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "git_commit": commit + ("+uncommitted changes in hub/ or streaming/" if dirty else ""),
        "versions": versions,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "note": NOTE,
    }


def write_report(name: str, report: dict[str, Any], out: str | None) -> Path:
    path = Path(out) if out else RESULTS / f"{name}-{time.strftime('%Y-%m-%d')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


# --- statistics ---------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def latency_ms(seconds: list[float]) -> dict[str, float | int]:
    return {
        "count": len(seconds),
        "p50_ms": round(percentile(seconds, 50) * 1000, 2),
        "p90_ms": round(percentile(seconds, 90) * 1000, 2),
        "p99_ms": round(percentile(seconds, 99) * 1000, 2),
        "max_ms": round(max(seconds, default=float("nan")) * 1000, 2),
    }


def median_of(rows: list[dict[str, Any]], path: str) -> float | None:
    """Median of a dotted key over runs, skipping runs where it is missing or NaN."""
    values = []
    for row in rows:
        value: Any = row
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, int | float) and value == value:
            values.append(float(value))
    return round(statistics.median(values), 2) if values else None


# --- CPU ----------------------------------------------------------------------------------------


class CpuMeter:
    """CPU used by some processes between start() and stop(), in % of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._start: dict[str, float] = {}
        self._t0 = 0.0

    def _busy(self, proc: psutil.Process) -> float:
        try:
            t = proc.cpu_times()
            kids = sum(c.cpu_times().user + c.cpu_times().system for c in proc.children())
            return float(t.user + t.system + kids)
        except psutil.Error:
            return 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._start = {name: self._busy(p) for name, p in self._procs.items()}

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._t0
        return {
            name: round(100 * (self._busy(p) - self._start[name]) / wall, 1)
            for name, p in self._procs.items()
        }


class HostCpu:
    """Whole-host busy % between start() and stop() (100 = every core busy)."""

    def start(self) -> None:
        self._t0 = psutil.cpu_times()

    def stop(self) -> float:
        t1 = psutil.cpu_times()
        total = sum(t1) - sum(self._t0)
        idle = (t1.idle + t1.iowait) - (self._t0.idle + self._t0.iowait)
        return round(100 * (1 - idle / total), 1) if total > 0 else float("nan")


# --- processes ----------------------------------------------------------------------------------


def raise_nofile() -> int:
    """Raise the soft open-file limit to the hard limit (thousands of sockets); return it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def spawn(name: str, argv: list[str], env: dict[str, str], logdir: Path) -> Proc:
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=HUB_ROOT
        )
    return Proc(name, popen, log)


def hub_argv(command: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hub.entrypoints.cli", command, *extra]


async def wait_ready(
    url: str, proc: Proc, seconds: float = 60, headers: dict[str, str] | None = None
) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=2, headers=headers) as client:
        while True:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{proc.name} did not become ready:\n{proc.tail()}")
            await asyncio.sleep(0.1)


async def stop_all(procs: list[Proc], seconds: float = 15) -> None:
    """SIGTERM each (serve last: workers first drain), then SIGKILL what is still alive."""
    for proc in procs:
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + seconds
    for proc in procs:
        while proc.popen.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait()


@dataclass
class Hub:
    """A running Hub: `hub serve` plus, in services mode, workers and the feed."""

    url: str
    host: str
    port: int
    grpc_port: int
    env: dict[str, str]
    serve: Proc
    helpers: list[Proc] = field(default_factory=list)
    logdir: Path = field(default_factory=Path)

    def pids(self) -> dict[str, int]:
        return {p.name: p.pid for p in [self.serve, *self.helpers]}


def services_env(
    schema_url: str, redis_db: int, *, amqp: bool = True, **extra: str
) -> dict[str, str]:
    env = {
        "HUB_DATABASE_URL": schema_url,
        "HUB_REDIS_URL": f"{REDIS_BASE}/{redis_db}",
        "HUB_JWT_SECRET": JWT_SECRET,
        "HUB_LOG_LEVEL": "warning",
        **extra,
    }
    if amqp:
        env["HUB_AMQP_URL"] = AMQP_URL
        env["HUB_AMQP_PREFIX"] = f"bench-{uuid.uuid4().hex[:8]}."
    return env


@contextlib.asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A database URL whose search_path is a new, empty schema, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{sep}search_path={schema}"
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


@contextlib.asynccontextmanager
async def run_hub(
    env: dict[str, str],
    *,
    workers: int = 0,
    feed: bool = False,
    migrate: bool = False,
    serve_cpus: str | None = None,
) -> AsyncIterator[Hub]:
    """Start `hub serve` (after `hub migrate`, and with `hub worker` x N and `hub feed` when
    asked) on free ports; stop everything with SIGTERM on exit. `serve_cpus` pins `hub serve`
    to those cores (taskset list, e.g. "0")."""
    logdir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    port, grpc_port = free_port(), free_port()
    full = {**env, "HUB_PORT": str(port), "HUB_GRPC_PORT": str(grpc_port)}
    if migrate:
        migrating = await asyncio.create_subprocess_exec(
            *hub_argv("migrate"),
            cwd=HUB_ROOT,
            env={**os.environ, **full},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await migrating.communicate()
        if migrating.returncode != 0:
            raise RuntimeError(f"hub migrate failed:\n{out.decode(errors='replace')}")
    helpers: list[Proc] = []
    pin = ["taskset", "-c", serve_cpus] if serve_cpus else []
    serve = spawn("serve", [*pin, *hub_argv("serve")], full, logdir)
    hub = Hub(f"http://127.0.0.1:{port}", "127.0.0.1", port, grpc_port, full, serve, [], logdir)
    try:
        await wait_ready(f"{hub.url}/readyz", serve)
        if feed:
            helpers.append(spawn("feed", hub_argv("feed"), full, logdir))
        helpers += [
            spawn(f"worker{i + 1}", hub_argv("worker"), full, logdir) for i in range(workers)
        ]
        hub.helpers = helpers
        await asyncio.sleep(1.5)  # let the feed publish and the workers bind their queues
        for proc in helpers:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
        yield hub
    finally:
        await stop_all([*helpers, serve])
        if "HUB_AMQP_PREFIX" in full:
            from hub.adapters.rabbitmq import delete_topology

            await delete_topology(full["HUB_AMQP_URL"], full["HUB_AMQP_PREFIX"])


async def register_and_login(
    url: str, emails: list[str], concurrency: int = 4
) -> dict[str, dict[str, str]]:
    """Register each email (skipping ones that exist) and log in; return email -> tokens."""
    tokens: dict[str, dict[str, str]] = {}
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def one(email: str) -> None:
            async with limit:
                body = {"email": email, "password": PASSWORD}
                r = await http.post("/api/v1/auth/register", json=body)
                if r.status_code not in (201, 409):
                    raise RuntimeError(f"register {email}: {r.status_code} {r.text}")
                r = await http.post("/api/v1/auth/login", json=body)
                if r.status_code != 200:
                    raise RuntimeError(f"login {email}: {r.status_code} {r.text}")
                tokens[email] = r.json()

        await asyncio.gather(*(one(e) for e in emails))
    return tokens


async def scrape_metrics(url: str, prefix: str) -> dict[str, float]:
    """Samples of /metrics whose name starts with prefix (labels kept in the key)."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{url}/metrics")).text
    found = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


# --- the open-loop HTTP load generator ----------------------------------------------------------


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
