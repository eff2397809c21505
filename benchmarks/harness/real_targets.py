"""The real quote path's candidates (fanout_real_*), each started for one measurement and
removed after it (Redis keys under its prefix, its schema, its RabbitMQ queues):

- hub (and hub-deflate): `hub serve` in services mode (PostgreSQL, Redis, RabbitMQ), pinned to
  SERVER_CPUS; quotes come from `hub feed` through the Redis broker.
- node-ws (the peer): Node.js `ws` on SERVER_CPUS, fed by node-redis from the same Redis pub/sub
  channels, sending each publication to its subscribers as one frame (its defaults: no
  permessage-deflate); with a schema and Redis prefix for `hub feed` to publish to it.
- bare-uvicorn (the floor, for handshakes and idle memory only): an ASGI WebSocket endpoint that
  accepts and waits, under the uvicorn settings `hub serve` uses.

The load client (wsload) and the feed run on CLIENT_CPUS."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from .config import SERVER_CPUS
from .hub import migrate, run_hub
from .node import REDIS_SERVER, install_node
from .procs import free_port, terminate, wait_listening
from .services import fresh_schema, redis_prefix, services_env

REDIS_DB = 13


BARE_SERVER = """
import os, sys, uvicorn

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
            ws=os.environ.get("BARE_WS", "websockets-sansio"), ws_per_message_deflate=False,
            access_log=False,
            log_level="warning")
"""


@dataclass
class Target:
    """A running server under test: where to connect and which process to meter."""

    name: str
    port: int
    pid: int
    path: str
    prefix: str


@contextlib.asynccontextmanager
async def hub_target(deflate: bool) -> AsyncIterator[tuple[Target, dict[str, str]]]:
    async with fresh_schema() as schema, redis_prefix(REDIS_DB) as (redis_url, prefix):
        env = services_env(schema, REDIS_DB, HUB_WS_DEFLATE=str(deflate).lower())
        env["HUB_REDIS_URL"] = redis_url
        async with run_hub(env, migrate_first=True, serve_cpus=SERVER_CPUS) as hub:
            name = "hub-deflate" if deflate else "hub"
            yield Target(name, hub.port, hub.serve.pid, "/ws", prefix), hub.env


@contextlib.asynccontextmanager
async def node_target(node_dir: Path, redis_url: str, prefix: str) -> AsyncIterator[Target]:
    port = free_port()
    url = redis_url.split("?")[0]
    proc = await asyncio.create_subprocess_exec(
        "taskset",
        "-c",
        SERVER_CPUS,
        "node",
        str(node_dir / "server.js"),
        str(port),
        prefix,
        url,
        cwd=node_dir,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"node peer did not start: {line!r}")
        yield Target("node-ws", port, proc.pid, "/", prefix)
    finally:
        await terminate(proc)


@contextlib.asynccontextmanager
async def node_world(node_dir: Path) -> AsyncIterator[tuple[Target, dict[str, str]]]:
    """The peer plus what `hub feed` needs to publish to it (a schema and a Redis prefix)."""
    async with fresh_schema() as schema, redis_prefix(REDIS_DB) as (redis_url, prefix):
        env = services_env(schema, REDIS_DB, amqp=False)
        env["HUB_REDIS_URL"] = redis_url
        await migrate(env)
        async with node_target(node_dir, redis_url, prefix) as target:
            yield target, env


@contextlib.asynccontextmanager
async def bare_target(ws: str) -> AsyncIterator[Target]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        "taskset",
        "-c",
        SERVER_CPUS,
        sys.executable,
        "-c",
        BARE_SERVER,
        str(port),
        env={**os.environ, "BARE_WS": ws},
    )
    try:
        await wait_listening(port, 300, closed=False)
        yield Target("bare-uvicorn", port, proc.pid, "/", "")
    finally:
        await terminate(proc)


def install_peer() -> tuple[Path | None, dict[str, str]]:
    """The node-ws peer's directory and versions ("node", "node-ws", "node-redis": not "redis",
    which is redis-py's key in the report)."""
    directory, found = install_node(REDIS_SERVER, ["ws@8", "redis@4"], "fanout-real-node-")
    versions = {("node" if k == "node" else f"node-{k}"): v for k, v in found.items()}
    return directory, versions
