"""A /v2 route: Alpaca's authentication, the JSON body decoded once, Alpaca-shaped errors.

The /v2 routes are not in Hub's operation table (nor in /openapi.json): their contract is
Alpaca's, described in docs/alpaca.md, and their errors are Alpaca's, not problem details.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.bootstrap import Container
from hub.domain.errors import DependencyUnavailable, HubError, NumberOutOfRange
from hub.entrypoints.http.alpaca import errors
from hub.entrypoints.http.alpaca.auth import authenticate
from hub.entrypoints.http.routing import Call, read_body, unreachable

log = structlog.get_logger("hub.http.alpaca")

Handler = Callable[[Call], Awaitable[Any]]
_encoder = msgspec.json.Encoder()


def respond(content: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(content), status, media_type="application/json")


def _decode(decoder: msgspec.json.Decoder[Any], raw: bytes) -> Any:
    if not raw.strip():
        return errors.error(400, "request body format is invalid: the body is empty")
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        return errors.error(422, f"invalid request body: {exc}", reason="validation_error")
    except msgspec.DecodeError as exc:
        return errors.error(400, f"request body format is invalid: {exc}", reason="malformed_json")


def route(
    method: str, path: str, handler: Handler, *, body: type | None = None, status: int = 200
) -> Route:
    """`handler` answers a value to encode with `status`, None for 204, or a Response."""
    decoder: msgspec.json.Decoder[Any] | None = None
    if body is not None:
        decoder = msgspec.json.Decoder(body)

    async def endpoint(request: Request) -> Response:
        request.scope["hub.route"] = path  # for the metrics middleware
        hub: Container = request.app.state.hub
        try:
            claims = await authenticate(request, hub)
            decoded: Any = None
            if decoder is not None:
                raw = await read_body(request, hub.settings.max_body_bytes)
                if isinstance(raw, Response):  # a problem: too large, or a bad Content-Length
                    return errors.error(raw.status_code, "the request body was refused")
                decoded = _decode(decoder, raw)
                if isinstance(decoded, Response):
                    return decoded
            result = await handler(Call(request, hub, claims, decoded))
        except HubError as exc:
            return errors.from_hub_error(exc)
        except ArithmeticError:
            out_of_range = NumberOutOfRange("a number in the request is out of range")
            return errors.from_hub_error(out_of_range)
        except Exception as exc:
            if unreachable(exc):
                log.warning("dependency unavailable", path=path, error=repr(exc))
                unavailable = DependencyUnavailable("a backing service is unavailable; retry")
                unavailable.retry_after = 1
                return errors.from_hub_error(unavailable)
            log.exception("unhandled error", path=request.url.path, method=request.method)
            return errors.error(500, "an unexpected error occurred; it has been logged")
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status_code=204)
        return respond(result, status)

    return Route(path, endpoint, methods=[method], name=f"{method} {path}")
