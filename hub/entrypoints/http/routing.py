"""Declared operations: each REST route is a row (method, path, types, handler) from which both
the Starlette route and its OpenAPI description are built, so the docs cannot drift."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

import msgspec
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.bootstrap import Container
from hub.domain.errors import (
    DependencyUnavailable,
    Forbidden,
    HubError,
    InvalidInput,
    InvalidToken,
    MalformedNumber,
    NumberOutOfRange,
)
from hub.domain.numeric import parse_int
from hub.domain.users import Role
from hub.entrypoints.http.problems import from_hub_error, problem
from hub.services.ports import AccessClaims

log = structlog.get_logger("hub.http")


@dataclass(slots=True)
class Call:
    """What a handler gets: the request, the container, the caller, and the decoded body."""

    request: Request
    hub: Container
    claims: AccessClaims | None
    body: Any

    @property
    def user_id(self) -> UUID:
        assert self.claims is not None, "handler of an authenticated operation"
        return self.claims.user_id


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Param:
    """A query (or, with `where="header"`, header) parameter, declared for OpenAPI."""

    name: str
    description: str
    required: bool = False
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    where: Literal["query", "header"] = "query"


def header(name: str, description: str) -> Param:
    """An optional request header, such as Idempotency-Key (a Param defaults to the query)."""
    return Param(name, description, where="header")


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    request: type | None = None
    response: type | None = None
    status: int = 200
    auth: bool = True
    admin: bool = False
    tags: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    query: tuple[Param, ...] = ()
    methods: tuple[str, ...] = ()  # extra methods served (legacy routes answer any method)
    optional_body: bool = False  # an empty body is allowed (the handler then gets None)
    decoder: msgspec.json.Decoder[Any] | None = field(default=None, compare=False)


def operation(method: str, path: str, handler: Handler, summary: str, **kw: Any) -> Operation:
    request = kw.get("request")
    decoder = msgspec.json.Decoder(request) if request is not None else None
    return Operation(method, path, handler, summary, decoder=decoder, **kw)


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("missing bearer token: send `Authorization: Bearer <access token>`")
    return token.strip()


def authenticate(request: Request, hub: Container) -> AccessClaims:
    return hub.auth.authenticate(bearer_token(request))


async def read_body(request: Request, limit: int) -> bytes | Response:
    """The request body, or a 413 problem once it passes `limit` bytes: at once when the
    Content-Length says so, else while the chunks arrive (a chunked body has no length, and a
    lying one cannot get more through), so no more than `limit` bytes is ever held."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            parse_int(declared, "Content-Length", minimum=0, maximum=limit)
        except MalformedNumber:
            # "²" passes str.isdigit() but not int(): this was a 500.
            return problem(400, "bad_request", "Content-Length must be ASCII digits")
        except InvalidInput:
            return _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> Response:
    return problem(413, "payload_too_large", f"the request body exceeds {limit} bytes")


def decode(op: Operation, raw: bytes) -> Any:
    assert op.decoder is not None
    if not raw.strip():
        return problem(
            400, "malformed_json", "the request body is empty; a JSON object is expected"
        )
    try:
        return op.decoder.decode(raw)
    except msgspec.ValidationError as exc:
        return problem(422, "validation_error", str(exc))
    except msgspec.DecodeError as exc:
        return problem(400, "malformed_json", f"the request body is not valid JSON: {exc}")


def encode(op: Operation, result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status_code=op.status if op.status != 200 else 204)
    return Response(msgspec.json.encode(result), op.status, media_type="application/json")


def unreachable(exc: BaseException) -> bool:
    """Whether the error says a backing service cannot be reached (rather than a bug)."""
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return True
    # The drivers' own words for a lost or refused connection (imported here: the embedded
    # default never loads them).
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(
        names
        & {
            "PostgresConnectionError",  # asyncpg: connection failures, 08xxx
            "CannotConnectNowError",  # asyncpg: the server is starting up or shutting down
            "ConnectionDoesNotExistError",  # asyncpg: the connection was closed under us
            "AdminShutdownError",  # asyncpg: 57P01, the server was stopped
            # asyncpg, on a pooled connection whose server went away mid-protocol (seen when
            # PostgreSQL restarts under load; this code never shares a connection between tasks)
            "InternalClientError",
            "ConnectionError",  # redis-py
            "TimeoutError",  # redis-py
        }
    )


def arithmetic_problem(request: Request, exc: ArithmeticError) -> Response:
    """422 for arithmetic that failed on a client's numbers (decimal.InvalidOperation, overflow,
    division by zero). The edge parser bounds every number so that this should not happen; if a
    path is ever missed, the client still gets a problem (and the connection stays open) rather
    than a 500, and the warning says where to add a bound."""
    log.warning("arithmetic error on input", path=request.url.path, error=repr(exc))
    return from_hub_error(request, NumberOutOfRange("a number in the request is out of range"))


def to_route(op: Operation) -> Route:
    async def endpoint(request: Request) -> Response:
        request.scope["hub.route"] = op.path  # for the metrics middleware
        hub: Container = request.app.state.hub
        try:
            claims = authenticate(request, hub) if op.auth else None
            if op.admin and (claims is None or claims.role is not Role.ADMIN):
                raise Forbidden("this operation needs the admin role")
            body: Any = None
            if op.decoder is not None:
                raw = await read_body(request, hub.settings.max_body_bytes)
                if isinstance(raw, Response):
                    return raw
                body = None if op.optional_body and not raw.strip() else decode(op, raw)
                if isinstance(body, Response):
                    return body
            return encode(op, await op.handler(Call(request, hub, claims, body)))
        except HubError as exc:
            return from_hub_error(request, exc)
        except ArithmeticError as exc:
            return arithmetic_problem(request, exc)
        except Exception as exc:
            if not unreachable(exc):
                raise  # a bug: the app's handler logs it whole and answers 500
            # A backing service is down or restarting: say so (503, retry), not "a bug".
            log.warning("dependency unavailable", path=op.path, error=repr(exc))
            unavailable = DependencyUnavailable("a backing service is unavailable; retry shortly")
            unavailable.retry_after = 1
            return from_hub_error(request, unavailable)

    methods = [op.method, *op.methods]
    return Route(op.path, endpoint, methods=methods, name=f"{op.method} {op.path}")
