"""The ASGI application: routes from the operation tables, problem JSON for every error, and a
lifespan that runs bootstrap() inside the server's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import msgspec
import structlog
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from hub.bootstrap import bootstrap
from hub.config import Settings
from hub.entrypoints.grpc.server import grpc_server
from hub.entrypoints.http import (
    account,
    alpaca,
    api_keys,
    auth,
    bars,
    dashboard,
    health,
    legacy,
    market_data,
    openapi,
    orders,
    watchlists,
)
from hub.entrypoints.http.alpaca import errors as alpaca_errors
from hub.entrypoints.http.metrics import ContainerCollector, HttpMetrics
from hub.entrypoints.http.problems import problem, sse_problem
from hub.entrypoints.http.routing import Operation, arithmetic_problem, to_route
from streaming.sse import SseEndpoint
from streaming.websocket import WebSocketEndpoint

log = structlog.get_logger("hub.http")

_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "payload_too_large"}


def operations() -> list[Operation]:
    return [
        *auth.OPERATIONS,
        *api_keys.OPERATIONS,
        *account.OPERATIONS,
        *market_data.OPERATIONS,
        *bars.OPERATIONS,
        *orders.OPERATIONS,
        *watchlists.OPERATIONS,
        *health.OPERATIONS,
        *legacy.OPERATIONS,
    ]


class _Streaming:
    """An ASGI app that passes the connection to a streaming endpoint kept in `app.state`. The
    endpoints are built in the lifespan, over the engine that bootstrap() starts there, after
    the routes exist; so they are looked up per connection."""

    def __init__(self, name: str) -> None:
        self._name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = getattr(scope["app"].state, self._name)
        await endpoint(scope, receive, send)


class HubApp(Starlette):
    """Starlette, with WebSocket connections to /ws handed straight to the streaming endpoint.

    A socket lives for hours, and every middleware and router layer keeps a coroutine frame
    alive for all of that time (~2 KiB per socket, measured with tracemalloc), and runs again
    for each socket of a reconnect storm. None of them has work to do for it: the endpoint
    answers its own errors with close codes, and the HTTP metrics count requests, not sockets.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            scope["app"] = self
            await self.state.websocket(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/v2/"):  # Alpaca's clients read Alpaca's error shape
        return alpaca_errors.http_error(request, exc.status_code, dict(exc.headers or {}))
    detail = exc.detail
    if exc.status_code == 404:
        detail = f"no route matches {request.method} {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem(
        exc.status_code,
        _CODES.get(exc.status_code, "http_error"),
        detail,
        instance=request.url.path,
        headers=dict(exc.headers or {}),
    )


async def _arithmetic(request: Request, exc: Exception) -> Response:
    # The operations map ArithmeticError themselves (routing.to_route); this catches it on the
    # other routes, so that it is never a 500 (which also drops the keep-alive connection).
    assert isinstance(exc, ArithmeticError)
    return arithmetic_problem(request, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # A bug, never the client's fault: log it whole, tell the client nothing internal.
    log.exception("unhandled error", path=request.url.path, method=request.method)
    return problem(500, "internal_error", "an unexpected error occurred; it has been logged")


def create_app(settings: Settings, *, with_grpc: bool = False) -> HubApp:
    """The API. `with_grpc` also serves gRPC on settings.grpc_port from the same loop."""
    ops = operations()
    registry = CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            container = await stack.enter_async_context(bootstrap(settings))
            if with_grpc:
                await stack.enter_async_context(
                    grpc_server(container, settings.host, settings.grpc_port)
                )
            app.state.hub = container
            app.state.websocket = WebSocketEndpoint(container.engine)
            app.state.sse = SseEndpoint(container.engine, problem=sse_problem)
            registry.register(ContainerCollector(container))
            yield

    # Starlette tries routes in order: the streaming endpoints come first so that a reconnect
    # storm does not run every REST route's regex for each socket.
    routes: list[BaseRoute] = [
        WebSocketRoute("/ws", _Streaming("websocket")),
        Route("/sse", _Streaming("sse"), methods=["GET"]),
    ]
    routes += [to_route(op) for op in ops]
    routes += alpaca.ROUTES  # Alpaca's contract (docs/alpaca.md), outside the operation table
    routes += [
        Route("/metrics", health.metrics, methods=["GET"]),
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        Route("/docs", openapi.docs, methods=["GET"]),
        Mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="docs-static"),
    ]
    routes += dashboard.ROUTES
    app = HubApp(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(HttpMetrics, registry=registry)],
        exception_handlers={
            HTTPException: _http_error,
            ArithmeticError: _arithmetic,
            Exception: _unexpected,
        },
    )
    # No redirect from /path/ to /path (or back): Starlette builds that Location from the
    # request's Host header (an injection a cache in front could serve to others), answers
    # every method with 307 (a client must re-send its body and token), and routes each miss
    # twice. Every route has one documented spelling, so a miss is a 404 problem like any other.
    app.router.redirect_slashes = False
    app.state.registry = registry
    app.state.openapi = msgspec.json.encode(openapi.build(ops))
    return app
