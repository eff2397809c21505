"""PostgreSQL and Redis restarted while orders flow: every order the API accepted (202) fills
exactly once, and cash and positions reconcile to the cent afterwards. Each test owns the
service it restarts (a private PostgreSQL cluster, a private redis-server, on free ports) and
runs `hub` as real subprocesses, whose output is kept under the test's tmp_path."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from redis import Redis
from redis.exceptions import RedisError

from tests.e2e.server import NO_HISTORY, free_port
from tests.integration.test_order_faults import SECRET, reconcile

pytestmark = pytest.mark.integration

# 3 traders x 15 market buys of 1 share over 6 s; the dependency goes down 2 s in, for ~2 s.
USERS, ORDERS_EACH, LOAD_S, OUTAGE_AT, OUTAGE_S = 3, 15, 6.0, 2.0, 2.0
FILL_DEADLINE_S = 60.0  # the supervisor re-drives an order stuck in pending_new after 15 s
HUB = [sys.executable, "-m", "hub.entrypoints.cli"]


def as_postgres(*cmd: str) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


@dataclass
class PrivatePostgres:
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/hub"

    def ctl(self, *args: str, check: bool = True) -> None:
        cmd = as_postgres("pg_ctl", "-D", str(self.root / "data"), "-w", *args)
        subprocess.run(cmd, check=check, timeout=60, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.ctl("-o", options, "-l", str(self.root / "postgres.log"), "start")


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this module's own (a test restarts it), migrated by `hub migrate`."""
    pg = PrivatePostgres(Path(tempfile.mkdtemp(prefix="hub-pg-")), free_port())
    if os.geteuid() == 0:
        shutil.chown(pg.root, "postgres")
    try:
        initdb = ["initdb", "-D", str(pg.root / "data"), "-A", "trust", "-U", "postgres"]
        subprocess.run(as_postgres(*initdb), check=True, timeout=120, capture_output=True)
        pg.start()
        createdb = ["createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "hub"]
        subprocess.run(createdb, check=True, timeout=60, capture_output=True)
        env = {**os.environ, "HUB_DATABASE_URL": pg.url, "HUB_JWT_SECRET": SECRET}
        subprocess.run([*HUB, "migrate"], env=env, check=True, timeout=120, capture_output=True)
        yield pg
    finally:
        pg.ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(pg.root, ignore_errors=True)


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    """An empty database of the shared Redis, flushed afterwards (that database only)."""
    parts = urlsplit(redis_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    with Redis(host=host, port=port) as client:  # 12, 13, 15: benchmarks and other tests
        keyspace = client.info("keyspace")
    db = next((n for n in range(11, 0, -1) if f"db{n}" not in keyspace), None)
    assert db is not None, "no empty database among 1-11 on the shared Redis"
    try:
        yield f"redis://{host}:{port}/{db}"
    finally:
        with Redis(host=host, port=port, db=db) as client:
            client.flushdb()


def redis_server(port: int) -> subprocess.Popen[bytes]:
    """A private redis-server (no persistence: it comes back empty), once it answers."""
    server = shutil.which("redis-server") or pytest.fail("redis-server is not installed")
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([server, *args], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with Redis(port=port, socket_connect_timeout=0.5) as client:
                client.ping()
            return process
        except RedisError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)


def hub_env(database_url: str, redis_url: str, amqp_url: str, amqp_prefix: str) -> dict[str, str]:
    return {
        "HUB_DATABASE_URL": database_url,
        "HUB_REDIS_URL": redis_url,
        "HUB_AMQP_URL": amqp_url,
        "HUB_AMQP_PREFIX": amqp_prefix,
        "HUB_JWT_SECRET": SECRET,
        "HUB_LOGIN_LIMIT_PER_CLIENT": "1000",
        "HUB_REGISTER_LIMIT_PER_CLIENT": "1000",
        **NO_HISTORY,
    }


@contextmanager
def hub(env: dict[str, str], logs: Path, *commands: str) -> Iterator[str]:
    """Run `hub serve` and the other `hub` commands given until the block ends (SIGTERM, then
    SIGKILL); yield the API's URL once /readyz says 200."""
    port = free_port()
    env = {**os.environ, **env, "HUB_PORT": str(port), "HUB_GRPC_PORT": str(free_port())}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for command in ("serve", *commands):
            with open(logs / f"hub-{command}.log", "wb") as out:
                processes.append(subprocess.Popen([*HUB, command], env=env, stdout=out, stderr=out))
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 30
        while not ready(url):
            assert all(p.poll() is None for p in processes), f"hub exited early: see {logs}"
            assert time.monotonic() < deadline, f"hub serve never became ready: see {logs}"
            time.sleep(0.1)
        yield url
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def ready(url: str, down: str | None = None) -> bool:
    """/readyz says 200; with `down`, rather: it says 503 with that check down."""
    try:
        r = httpx.get(f"{url}/readyz", timeout=5)
    except httpx.TransportError:
        return False
    if down is None:
        return r.status_code == 200
    return r.status_code == 503 and r.json()["checks"].get(down, {}).get("status") == "down"


@dataclass
class Trader:
    auth: dict[str, str]
    user_id: str
    accepted: list[str] = field(default_factory=list)
    refused: list[tuple[int, str | None]] = field(default_factory=list)  # status, problem code
    last_accepted_at: float = 0.0  # time.monotonic()

    def submit(self, http: httpx.Client, symbol: str) -> None:
        body = {"symbol": symbol, "side": "buy", "type": "market", "qty": "1"}
        try:
            r = http.post("/api/v1/orders", json=body, headers=self.auth)
        except httpx.TransportError:
            r = None
        if r is not None and r.status_code == 202:
            self.accepted.append(r.json()["id"])
            self.last_accepted_at = time.monotonic()
        elif r is None or "problem+json" not in r.headers.get("content-type", ""):
            self.refused.append((r.status_code if r else 0, None))
        else:
            self.refused.append((r.status_code, r.json()["code"]))


def trader(http: httpx.Client) -> Trader:
    credentials = {"email": f"r{uuid.uuid4().hex[:12]}@example.com", "password": "Str0ng-Enough!"}
    assert http.post("/api/v1/auth/register", json=credentials).status_code == 201
    token = http.post("/api/v1/auth/login", json=credentials).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    return Trader(auth, http.get("/api/v1/auth/me", headers=auth).json()["id"])


def under_load(url: str, outage: Callable[[], None]) -> list[Trader]:
    """USERS traders each submit ORDERS_EACH market buys evenly over LOAD_S seconds (AAPL and
    MSFT in turn) while `outage` runs from OUTAGE_AT seconds in; return what they were told."""
    with httpx.Client(base_url=url, timeout=10) as http:
        traders = [trader(http) for _ in range(USERS)]
    start = time.monotonic() + 0.2

    def run(t: Trader) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            for i in range(ORDERS_EACH):
                time.sleep(max(0.0, start + i * LOAD_S / ORDERS_EACH - time.monotonic()))
                t.submit(http, ("AAPL", "MSFT")[i % 2])

    threads = [threading.Thread(target=run, args=(t,)) for t in traders]
    for thread in threads:
        thread.start()
    try:
        time.sleep(max(0.0, start + OUTAGE_AT - time.monotonic()))
        outage()
    finally:
        for thread in threads:
            thread.join()
    return traders


def await_fills(url: str, traders: list[Trader]) -> float:
    """Poll GET /api/v1/orders/{id} until every accepted order is filled; return the wait."""
    started = time.monotonic()
    waiting = {order_id: t.auth for t in traders for order_id in t.accepted}
    status: dict[str, str] = {}
    with httpx.Client(base_url=url, timeout=5) as http:
        while waiting:
            for order_id, auth in list(waiting.items()):
                r = http.get(f"/api/v1/orders/{order_id}", headers=auth)
                status[order_id] = r.json()["status"] if r.status_code == 200 else r.text
                if status[order_id] == "filled":
                    del waiting[order_id]
            left = {order_id: status[order_id] for order_id in waiting}
            assert time.monotonic() - started < FILL_DEADLINE_S, f"not filled: {left}"
            time.sleep(0.5 if waiting else 0)
    return time.monotonic() - started


def restart_under_load(
    url: str, check: str, stop: Callable[[], None], start: Callable[[], None]
) -> list[Trader]:
    """Stop the dependency mid-load, watch /readyz report `check` down, start it again after
    OUTAGE_S; then every accepted order must fill (once: see `assert_reconciled`)."""
    seen_down: list[bool] = []
    back_at: list[float] = []

    def outage() -> None:
        stop()
        try:
            ends = time.monotonic() + OUTAGE_S
            while time.monotonic() < ends:
                seen_down.append(ready(url, down=check))
                time.sleep(0.2)
        finally:
            start()
            back_at.append(time.monotonic())

    traders = under_load(url, outage)
    refused = [r for t in traders for r in t.refused]
    accepted = sum(len(t.accepted) for t in traders)
    print(f"\n{check}: {accepted} accepted, refused (status, code): {refused}")
    assert any(seen_down), f"/readyz never reported {check} down"
    assert all(code for _, code in refused), f"a refusal without a problem JSON: {refused}"
    # A dependency that is down is said to be (503, retry), never reported as a bug (500).
    assert all(status == 503 for status, _ in refused), f"not a 503: {refused}"
    assert max(t.last_accepted_at for t in traders) > back_at[0], "no 202 after the restart"
    print(f"{check}: every accepted order filled {await_fills(url, traders):.1f} s after the load")
    deadline = time.monotonic() + 15
    while not ready(url):
        assert time.monotonic() < deadline, "/readyz did not recover"
        time.sleep(0.2)
    return traders


def assert_reconciled(database_url: str, traders: list[Trader]) -> None:
    stored = 0
    for t in traders:
        state = asyncio.run(reconcile(database_url, t.user_id, Decimal("100000.00")))
        # A submit that failed may still have committed its order: then it must fill as well.
        assert set(state["statuses"]) == {"filled"}, state["statuses"]
        assert {uuid.UUID(i) for i in t.accepted} <= state["fills_per_order"].keys()
        assert len(state["fills_per_order"]) == sum(state["statuses"].values())
        assert set(state["fills_per_order"].values()) == {1}, "an order filled twice"
        assert state["cash"] == state["expected_cash"]
        assert state["reserved_cash"] == 0
        assert state["shares"] == state["expected_shares"]
        stored += len(state["fills_per_order"])
    accepted = sum(len(t.accepted) for t in traders)
    print(f"{stored} orders stored, all filled once; {accepted} of them were answered 202")


def test_postgres_restarted_under_load_loses_no_accepted_order(
    private_postgres: PrivatePostgres,
    redis_db: str,
    amqp_url: str,
    amqp_prefix: str,
    tmp_path: Path,
) -> None:
    env = hub_env(private_postgres.url, redis_db, amqp_url, amqp_prefix)
    env |= {"HUB_FEED_IN_PROCESS": "true", "HUB_WORKER_IN_PROCESS": "true"}
    with hub(env, tmp_path) as url:
        stop = partial(private_postgres.ctl, "-m", "fast", "stop")
        traders = restart_under_load(url, "postgres", stop, private_postgres.start)
    assert_reconciled(private_postgres.url, traders)


def test_redis_killed_under_load_loses_no_accepted_order(
    schema_url: str, amqp_url: str, amqp_prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    env = hub_env(schema_url, f"redis://127.0.0.1:{port}/0", amqp_url, amqp_prefix)
    servers = [redis_server(port)]

    def kill() -> None:
        servers[-1].send_signal(signal.SIGKILL)
        servers[-1].wait()

    def restart() -> None:
        servers.append(redis_server(port))

    try:
        # As deployed: the API, a worker and the feed, each a process pricing from the quotes
        # it hears through Redis.
        with hub(env, tmp_path, "worker", "feed") as url:
            traders = restart_under_load(url, "redis", kill, restart)
        with Redis(port=port) as client:
            assert client.exists("hub:quote:AAPL"), "the feed did not publish after the restart"
    finally:
        for server in servers:
            server.kill()
            server.wait()
    assert_reconciled(schema_url, traders)
