"""The minimal peers measured beside Hub: Starlette apps under the uvicorn settings `hub serve`
uses (uvloop, httptools, no access log), each verifying the same HS256 JWT with PyJWT on every
request, then doing the least its benchmark's route needs. Each runs in its own process:
`bench_python("harness.peers", NAME, "--port", P, ...)`.

- peer-memory (market_data): Hub's own body for the symbol, from a dict
- peer-redis (market_data):  the two Redis MGETs Hub's cache-hit path made, decoded, re-encoded
- peer-insert (orders):      decodes the order, one INSERT into PostgreSQL
- peer (reads):              the caller's account row, one SELECT on a unique index
"""

from __future__ import annotations

import argparse
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from .config import JWT_SECRET
from .procs import Proc, bench_python, free_port, spawn, stop_all, wait_ready

if TYPE_CHECKING:
    import asyncpg
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route


def claims(request: Request) -> dict[str, Any] | None:
    """The bearer token's claims, verified as Hub verifies them; None if it is not valid."""
    import jwt

    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        return None
    try:
        found: dict[str, Any] = jwt.decode(
            header[7:],
            JWT_SECRET,
            algorithms=["HS256"],
            issuer="hub",
            audience="hub-api",
            options={"require": ["sub", "exp", "iat", "jti", "iss", "aud", "role"]},
        )
    except jwt.InvalidTokenError:
        return None
    return found


def run(
    routes: list[Route], port: int, lifespan: Any = None, mode: Literal["on", "off"] = "on"
) -> None:
    import uvicorn
    from starlette.applications import Starlette

    uvicorn.run(
        Starlette(routes=routes, lifespan=lifespan),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan=mode,
        access_log=False,
        log_level="warning",
    )


def unauthorized() -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"detail": "unauthorized"}, 401)


async def ok(request: Request) -> Response:
    from starlette.responses import Response

    return Response(b"ok")


def market_data(name: str, port: int, bodies_file: str, redis_url: str) -> None:
    from redis.asyncio import Redis
    from starlette.responses import Response
    from starlette.routing import Route

    bodies: dict[str, bytes] = {
        s: b.encode() for s, b in json.loads(Path(bodies_file).read_text()).items()
    }
    redis = Redis.from_url(redis_url)
    encoder, decode = msgspec.json.Encoder(), msgspec.json.decode

    async def from_memory(request: Request) -> Response:
        if claims(request) is None:
            return unauthorized()
        symbol = request.query_params.get("symbols", "").upper()
        return Response(bodies[symbol], media_type="application/json")

    async def from_redis(request: Request) -> Response:
        if claims(request) is None:
            return unauthorized()
        symbol = request.query_params.get("symbols", "").upper()
        (raw_instrument,) = await redis.mget([f"market_data:{symbol}"])
        (raw_quote,) = await redis.mget([f"hub:quote:{symbol}"])
        assert raw_instrument is not None  # the run warms the cache first
        i = decode(raw_instrument)
        item = {k: i[k] for k in ("symbol", "name", "category", "currency")}
        item["quote"] = decode(raw_quote) if raw_quote else None
        body = encoder.encode({"data": [item], "unknown_symbols": []})
        return Response(body, media_type="application/json")

    endpoint = from_memory if name == "peer-memory" else from_redis
    run([Route("/api/v1/market-data", endpoint), Route("/readyz", endpoint)], port, mode="off")


def pool_lifespan(
    database_url: str, pool: list[asyncpg.Pool], setup: str = "", **options: Any
) -> Any:
    """A lifespan that opens an asyncpg pool into pool[0] (running `setup` once) and closes it."""
    import asyncpg

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool.append(await asyncpg.create_pool(database_url, **options))
        if setup:
            await pool[0].execute(setup)
        yield
        await pool[0].close()

    return lifespan


def insert(port: int, database_url: str) -> None:
    from starlette.responses import Response
    from starlette.routing import Route

    class Order(msgspec.Struct, forbid_unknown_fields=True):
        symbol: str
        side: str
        type: str
        qty: str

    decoder, encoder = msgspec.json.Decoder(Order), msgspec.json.Encoder()
    pool: list[asyncpg.Pool] = []
    table = (
        "CREATE TABLE IF NOT EXISTS peer_orders (id uuid PRIMARY KEY, user_id uuid NOT NULL,"
        " symbol text NOT NULL, side text NOT NULL, type text NOT NULL, qty numeric NOT NULL,"
        " status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
    )

    async def submit(request: Request) -> Response:
        if (found := claims(request)) is None:
            return unauthorized()
        order = decoder.decode(await request.body())
        oid = uuid.uuid4()
        row = await pool[0].fetchrow(
            "INSERT INTO peer_orders (id, user_id, symbol, side, type, qty, status)"
            " VALUES ($1, $2, $3, $4, $5, $6, 'pending_new') RETURNING created_at",
            oid,
            uuid.UUID(found["sub"]),
            order.symbol,
            order.side,
            order.type,
            order.qty,
        )
        body = {"id": str(oid), "status": "pending_new", "created_at": row[0].isoformat()}
        return Response(encoder.encode(body), 202, media_type="application/json")

    routes = [Route("/api/v1/orders", submit, methods=["POST"]), Route("/readyz", ok)]
    run(routes, port, pool_lifespan(database_url, pool, table, min_size=4, max_size=10))


def account(port: int, database_url: str) -> None:
    from starlette.responses import Response
    from starlette.routing import Route

    encoder = msgspec.json.Encoder()
    pool: list[asyncpg.Pool] = []

    async def release(conn: asyncpg.Connection) -> None:  # as Hub's pool does
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")

    def invalid() -> Response:
        body = b'{"status":401,"code":"invalid_token"}'
        return Response(body, 401, media_type="application/problem+json")

    async def read(request: Request) -> Response:
        if (found := claims(request)) is None:
            return invalid()
        row = await pool[0].fetchrow(
            "SELECT id, cash, reserved_cash, currency, created_at FROM accounts WHERE user_id = $1",
            uuid.UUID(found["sub"]),
        )
        if row is None:
            return Response(b'{"status":404,"code":"not_found"}', 404)
        body = {
            "id": row["id"],
            "cash": str(row["cash"]),
            "reserved_cash": str(row["reserved_cash"]),
            "buying_power": str(row["cash"] - row["reserved_cash"]),
            "currency": row["currency"],
            "created_at": row["created_at"],
        }
        return Response(encoder.encode(body), media_type="application/json")

    lifespan = pool_lifespan(
        database_url, pool, min_size=10, max_size=20, command_timeout=30, reset=release
    )
    run([Route("/api/v1/account", read), Route("/readyz", ok)], port, lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description="one peer (benchmarks' child)")
    parser.add_argument("name", choices=["peer-memory", "peer-redis", "peer-insert", "peer"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--bodies", default="")
    parser.add_argument("--redis-url", default="")
    args = parser.parse_args()
    if args.name in ("peer-memory", "peer-redis"):
        market_data(args.name, args.port, args.bodies, args.redis_url)
    elif args.name == "peer-insert":
        insert(args.port, args.database_url)
    else:
        account(args.port, args.database_url)


@contextlib.asynccontextmanager
async def start_peer(
    name: str,
    *args: str,
    logdir: Path,
    log_name: str | None = None,
    ready_path: str = "/readyz",
    headers: dict[str, str] | None = None,
) -> AsyncIterator[tuple[int, Proc]]:
    """The peer NAME (with its own flags) on a free port, answering GET ready_path; stopped on
    exit. Its log: logdir/LOG_NAME.log (LOG_NAME defaults to NAME)."""
    port = free_port()
    argv = bench_python("harness.peers", name, "--port", str(port), *args)
    proc = spawn(log_name or name, argv, {}, logdir)
    try:
        await wait_ready(f"http://127.0.0.1:{port}{ready_path}", proc, headers=headers)
        yield port, proc
    finally:
        await stop_all([proc])
