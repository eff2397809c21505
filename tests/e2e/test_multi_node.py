"""Several nodes behind one load balancer, as real processes on the local services: two
`hub serve` nodes, two `hub worker`s and one `hub feed` sharing PostgreSQL, Redis and RabbitMQ.

What a user relies on once there is more than one API node: an order submitted on one node is
seen filling on another's socket; a client whose node dies recovers on another node with `since`
(WebSocket) or `Last-Event-ID` (SSE), with exactly the events it missed; and a worker killed
mid-load loses no order and fills none twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import websockets

from tests.e2e.server import NO_HISTORY, RunningServer, hub_serve

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PASSWORD = "Str0ng-Enough!"


@dataclass
class Cluster:
    a: RunningServer
    b: RunningServer
    workers: list[subprocess.Popen[bytes]]
    database_url: str


def _process(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hub.entrypoints.cli", command],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextmanager
def cluster(schema_url: str, redis_url: str, amqp_url: str, prefix: str) -> Iterator[Cluster]:
    env = {
        "HUB_DATABASE_URL": schema_url,
        # Its own broker namespace: other runs on this Redis never cross these channels.
        "HUB_REDIS_URL": f"{redis_url}?prefix={prefix}",
        "HUB_AMQP_URL": amqp_url,
        "HUB_AMQP_PREFIX": prefix,
        "HUB_JWT_SECRET": "e2e-secret-0123456789abcdefghijklmnop",
        "HUB_FEED_QPS": "100",
        "HUB_REGISTER_LIMIT_PER_CLIENT": "1000",
        **NO_HISTORY,
    }
    helpers = [_process("feed", env), _process("worker", env), _process("worker", env)]
    try:
        with ExitStack() as nodes:
            a = nodes.enter_context(hub_serve(env))
            b = nodes.enter_context(hub_serve(env))
            yield Cluster(a, b, helpers[1:], schema_url)
    finally:
        for process in helpers:
            if process.poll() is None:
                process.terminate()
        for process in helpers:
            try:
                process.wait(timeout=20)
            finally:
                if process.poll() is None:
                    process.kill()


@pytest.fixture
def nodes(schema_url: str, redis_url: str, amqp_url: str, amqp_prefix: str) -> Iterator[Cluster]:
    with cluster(schema_url, redis_url, amqp_url, amqp_prefix) as c:
        yield c
    asyncio.run(_delete_keys(redis_url, amqp_prefix))


async def _delete_keys(redis_url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def trader(url: str) -> dict[str, str]:
    """A new user's bearer header (tokens are valid on every node: one signing secret)."""
    email = f"mn{uuid.uuid4().hex[:10]}@example.com"
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        r = await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def buy(url: str, auth: dict[str, str], qty: str = "1") -> str:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        r = await http.post(
            "/api/v1/orders",
            headers=auth,
            json={"symbol": "AAPL", "side": "buy", "type": "market", "qty": qty},
        )
        assert r.status_code == 202, r.text
        order_id: str = r.json()["id"]
        return order_id


async def filled(url: str, auth: dict[str, str], order_ids: set[str], seconds: float = 30) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        async with asyncio.timeout(seconds):
            while True:
                r = await http.get("/api/v1/orders?status=closed&limit=500", headers=auth)
                done = {o["id"] for o in r.json()["orders"] if o["status"] == "filled"}
                if order_ids <= done:
                    return
                await asyncio.sleep(0.2)


def ws_url(server: RunningServer) -> str:
    return server.url.replace("http://", "ws://") + "/ws"


class Socket:
    """A client's WebSocket: one frame may carry several messages (a `subscribed` and the
    replay after it), so they are handed out one at a time."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.pending: deque[dict[str, Any]] = deque()

    async def next(self) -> dict[str, Any]:
        while not self.pending:
            self.pending.extend(json.loads(await self.ws.recv()))
        return self.pending.popleft()

    async def order_events(self, *until: tuple[str, str], seconds: float = 20) -> list[Any]:
        """(order id, status, seq) of every order event until each (order id, status) of
        `until` was seen (two orders may finish in either order)."""
        seen: list[Any] = []
        waiting = set(until)
        async with asyncio.timeout(seconds):
            while waiting:
                m = await self.next()
                if m["type"] == "order":
                    seen.append((m["data"]["id"], m["data"]["status"], m["seq"]))
                    waiting.discard((m["data"]["id"], m["data"]["status"]))
        return seen

    async def subscribe(self, since: int | None = None) -> dict[str, Any]:
        request: dict[str, Any] = {"action": "subscribe", "channels": ["orders"]}
        if since is not None:
            request["since"] = {"orders": since}
        await self.ws.send(json.dumps(request))
        async with asyncio.timeout(10):
            while (m := await self.next())["type"] != "subscribed":
                pass
            return m


async def submit_on_a_fill_seen_on_b_then_b_dies(c: Cluster) -> None:
    auth = await trader(c.a.url)
    async with websockets.connect(ws_url(c.b), additional_headers=auth) as ws_b:
        on_b = Socket(ws_b)
        last = (await on_b.subscribe())["seq"]
        first = await buy(c.a.url, auth)
        seen = await on_b.order_events((first, "filled"))
        assert [s for _, s, _ in seen] == ["pending_new", "new", "filled"]
        last = seen[-1][2]

        c.b.process.send_signal(signal.SIGKILL)  # the node dies under its client
        c.b.process.wait(timeout=10)
        missed = [await buy(c.a.url, auth), await buy(c.a.url, auth)]
        await filled(c.a.url, auth, set(missed))

    async with websockets.connect(ws_url(c.a), additional_headers=auth) as ws_a:
        on_a = Socket(ws_a)
        answer = await on_a.subscribe(since=last)
        assert answer["recovered"] is True
        replayed = await on_a.order_events((missed[0], "filled"), (missed[1], "filled"))
    # Exactly what was missed: both orders' whole histories, in seq order, nothing before.
    assert [seq for *_, seq in replayed] == list(range(last + 1, last + 1 + len(replayed)))
    assert [(i, s) for i, s, _ in replayed if i == missed[0]] == [
        (missed[0], s) for s in ("pending_new", "new", "filled")
    ]
    assert {i for i, _, _ in replayed} == set(missed)


@pytest.mark.timeout(120)
def test_an_order_fills_across_nodes_and_a_client_recovers_on_another_node(
    nodes: Cluster,
) -> None:
    asyncio.run(submit_on_a_fill_seen_on_b_then_b_dies(nodes))


async def sse_events(
    http: httpx.AsyncClient, auth: dict[str, str], last_event_id: str | None, stop: Any
) -> tuple[str | None, list[dict[str, Any]]]:
    """Read the SSE stream until `stop(data)`; return the last `id:` seen and the data."""
    headers = dict(auth)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    seen: list[dict[str, Any]] = []
    event_id = last_event_id
    async with asyncio.timeout(20):
        async with http.stream("GET", "/sse?channels=orders", headers=headers) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                if line.startswith("id:"):
                    event_id = line.removeprefix("id:").strip()
                elif line.startswith("data:"):
                    data = json.loads(line.removeprefix("data:"))
                    seen.append(data)
                    if stop(data):
                        return event_id, seen
    raise AssertionError("the stream ended early")


async def sse_resumes_on_another_node(c: Cluster) -> None:
    auth = await trader(c.a.url)
    async with httpx.AsyncClient(base_url=c.a.url, timeout=None) as on_a:
        event_id, _ = await sse_events(on_a, auth, None, lambda d: d["type"] == "subscribed")
    missed = await buy(c.b.url, auth)
    await filled(c.b.url, auth, {missed})
    async with httpx.AsyncClient(base_url=c.b.url, timeout=None) as on_b:
        _, seen = await sse_events(
            on_b,
            auth,
            event_id,
            lambda d: d["type"] == "order" and d["data"]["status"] == "filled",
        )
    answer = next(d for d in seen if d["type"] == "subscribed")
    assert answer["recovered"] is True
    statuses = [d["data"]["status"] for d in seen if d["type"] == "order"]
    assert statuses == ["pending_new", "new", "filled"]


@pytest.mark.timeout(120)
def test_sse_last_event_id_resumes_on_another_node(nodes: Cluster) -> None:
    asyncio.run(sse_resumes_on_another_node(nodes))


async def worker_killed_mid_load(c: Cluster) -> None:
    # One order in flight per account at a time (the per-account admission limit), many
    # accounts at once, half of them on each node.
    users = await asyncio.gather(*(trader(c.a.url) for _ in range(12)))
    placed: list[tuple[dict[str, str], str]] = []

    async def round_of_orders() -> None:
        ids = await asyncio.gather(
            *((buy((c.a if i % 2 else c.b).url, u, qty="2")) for i, u in enumerate(users))
        )
        placed.extend(zip(users, ids, strict=True))

    async def load() -> None:
        for _ in range(5):
            await round_of_orders()

    submitting = asyncio.create_task(load())
    await asyncio.sleep(0.3)  # orders are flowing through both workers now
    c.workers[0].send_signal(signal.SIGKILL)  # mid-load: its unacked messages go back
    await submitting
    assert len(placed) == 5 * len(users)
    for auth in users:
        await filled(c.a.url, auth, {o for a, o in placed if a is auth}, seconds=60)

    conn = await asyncpg.connect(c.database_url)
    try:
        fills = await conn.fetch(
            "SELECT order_id, count(*) AS n, sum(qty) AS qty FROM executions GROUP BY order_id"
        )
        positions = await conn.fetchval("SELECT sum(qty) FROM positions WHERE symbol = 'AAPL'")
    finally:
        await conn.close()
    by_order = {str(r["order_id"]): (r["n"], r["qty"]) for r in fills}
    assert set(by_order) == {o for _, o in placed}
    assert all(n == 1 and qty == 2 for n, qty in by_order.values()), by_order
    assert positions == 2 * len(placed)  # every share bought once, none twice


@pytest.mark.timeout(180)
def test_a_worker_killed_mid_load_fills_every_order_exactly_once(nodes: Cluster) -> None:
    asyncio.run(worker_killed_mid_load(nodes))
