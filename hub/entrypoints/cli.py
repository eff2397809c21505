"""The `hub` command: serve, migrate, users."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys

import structlog

from hub.config import ConfigError, Mode, Settings


def configure_logging(settings: Settings) -> None:
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    renderer = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
    )
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)


def _banner(settings: Settings) -> str:
    from hub.bootstrap import DEMO_EMAIL, DEMO_PASSWORD

    url = f"http://{settings.host}:{settings.port}"
    lines = [
        f"Hub is starting on {url}  (API docs: {url}/docs,"
        f" gRPC: {settings.host}:{settings.grpc_port})"
    ]
    if settings.mode is Mode.EMBEDDED:
        lines += [
            "NOTICE: embedded mode - all state is IN MEMORY and is lost when the process stops.",
            "        Set HUB_DATABASE_URL, HUB_REDIS_URL and HUB_AMQP_URL to use real services.",
        ]
        if settings.jwt_secret is None:
            lines.append(
                "        A JWT secret was generated for this run: tokens die with the process."
            )
        if settings.demo:
            lines.append(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}")
    else:
        configured = [
            n
            for n, v in (
                ("postgres", settings.database_url),
                ("redis", settings.redis_url),
                ("rabbitmq", settings.amqp_url),
            )
            if v
        ]
        lines.append(f"Services mode: {', '.join(configured)}")
    return "\n".join(lines)


def _tune_gc() -> None:
    """Fewer cyclic-GC passes over a heap of long-lived connections.

    Each socket keeps ~100 tracked objects alive, so at 10,000 sockets every full collection
    walks a million objects, and CPython's default young-generation threshold (700
    allocations) promotes many request-scoped objects that would have died a moment later.
    Measured in benchmarks/fanout_real_storm.py (8,000 sockets subscribing to 34 channels):
    0.80-0.86 ms of CPU per socket with this, 1.04-1.11 ms with the defaults. Objects that exist
    at start-up are frozen (never scanned again), and the young generation is collected every
    50,000 allocations instead of 700.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def serve(settings: Settings) -> int:
    import uvicorn

    from hub.entrypoints.http.app import create_app
    from streaming import Limits
    from streaming.direct import DirectWebSocketProtocol

    print(_banner(settings), flush=True)
    config = uvicorn.Config(
        create_app(settings, with_grpc=True),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        # uvicorn's websockets-sansio protocol plus direct writes of shared fan-out frames.
        ws=DirectWebSocketProtocol,
        ws_per_message_deflate=settings.ws_deflate,
        # Refuse an oversized frame from its header instead of buffering up to uvicorn's default
        # 16 MiB per socket before the engine's limit (Limits.max_frame_bytes) can say no;
        # a little above that limit, so that the engine still answers a frame just over it.
        ws_max_size=Limits().transport_max_frame_bytes,
        # The engine's heartbeat (one task for all sockets, docs/protocol.md) pings and closes
        # idle connections; uvicorn's own protocol pings would add a timer per socket and a
        # ping every 20 s to each, which at 10,000 sockets is 500 pings/s for nothing.
        ws_ping_interval=None,
        ws_ping_timeout=None,
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )
    # uvicorn installs the SIGINT/SIGTERM handlers: it stops accepting, lets requests finish,
    # then runs the lifespan shutdown, which closes every resource bootstrap() opened.
    server = uvicorn.Server(config)
    _tune_gc()
    server.run()
    return 0 if server.started else 1


async def _migrate(settings: Settings) -> int:
    from hub.adapters.postgres.database import create_pool
    from hub.adapters.postgres.instruments import load_seed
    from hub.adapters.postgres.migrations import migrate

    if not settings.database_url:
        print("hub migrate: HUB_DATABASE_URL is not set", file=sys.stderr)
        return 2
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        async with pool.acquire() as conn:
            applied = await migrate(conn)
            seeded = await load_seed(conn)
    finally:
        await pool.close()
    print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    if seeded:
        print(f"seeded {seeded} instruments")
    return 0


def dump_tasks() -> None:
    """SIGUSR1: print every asyncio task and where it waits (for a process that seems stuck)."""
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}", file=sys.stderr)
        awaitable: object = task.get_coro()
        while awaitable is not None:
            frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "ag_frame", None)
            where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else ""
            print(f"    {type(awaitable).__name__} {where}", file=sys.stderr)
            awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "ag_await", None)
    sys.stderr.flush()


async def _run_until_signal(settings: Settings, *, feed: bool, worker: bool, banner: str) -> int:
    """Run the feed and/or the order worker, without HTTP, until SIGINT or SIGTERM; then close
    everything bootstrap opened (in-flight work finishes or is redelivered: acks follow commits)."""
    import signal

    from hub.bootstrap import StartupError, bootstrap

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
    try:
        async with bootstrap(settings, run_feed=feed, run_worker=worker, serve_api=False):
            print(banner, flush=True)
            await stop.wait()
    except StartupError as exc:
        print(f"hub: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


async def _set_role(settings: Settings, email: str, role: str) -> int:
    from hub.adapters.postgres.database import create_pool
    from hub.adapters.postgres.users import PostgresUsers
    from hub.domain.users import Role

    if not settings.database_url:
        print(
            "hub users set-role: HUB_DATABASE_URL is not set (in embedded mode, "
            "list the email in HUB_ADMIN_EMAILS instead)",
            file=sys.stderr,
        )
        return 2
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        changed = await PostgresUsers(pool).set_role(email.strip().lower(), Role(role))
    finally:
        await pool.close()
    if not changed:
        print(f"no user with email {email}", file=sys.stderr)
        return 1
    print(f"{email} is now {role}; tokens issued from now on carry the new role")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description="Hub brokerage backend")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the API (HTTP, WebSocket, SSE, gRPC)")
    s.add_argument("--host", help="bind address (HUB_HOST, default 127.0.0.1)")
    s.add_argument("--port", type=int, help="HTTP port (HUB_PORT, default 8000)")
    s.add_argument("--grpc-port", type=int, help="gRPC port (HUB_GRPC_PORT, default 50051)")
    sub.add_parser("migrate", help="apply the database migrations and seed data (idempotent)")
    sub.add_parser("feed", help="run the simulated market feed (services mode: exactly one)")
    sub.add_parser("worker", help="run an order worker (services mode: any number)")
    u = sub.add_parser("users", help="manage users")
    usub = u.add_subparsers(dest="users_command", required=True)
    r = usub.add_parser("set-role", help="make a user an admin, or a user again")
    r.add_argument("email")
    r.add_argument("role", choices=["user", "admin"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides: dict[str, str] = {}
    if args.command == "serve":
        for flag, var in (
            ("host", "HUB_HOST"),
            ("port", "HUB_PORT"),
            ("grpc_port", "HUB_GRPC_PORT"),
        ):
            value = getattr(args, flag)
            if value is not None:
                overrides[var] = str(value)
    import os

    try:
        settings = Settings.from_env({**os.environ, **overrides})
    except ConfigError as exc:
        print(f"hub: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    if args.command == "serve":
        return serve(settings)
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command in ("feed", "worker"):
        # The standard loop, not uvloop: with uvloop, cancelling a redis-py write at shutdown
        # could stall for seconds (seen in tests/e2e); these processes are not HTTP-bound.
        feed = args.command == "feed"
        banner = (
            f"hub feed: publishing {settings.feed_quotes_per_second} quotes/s"
            if feed
            else "hub worker: consuming orders"
        )
        return asyncio.run(_run_until_signal(settings, feed=feed, worker=not feed, banner=banner))
    return asyncio.run(_set_role(settings, args.email, args.role))


if __name__ == "__main__":
    sys.exit(main())
