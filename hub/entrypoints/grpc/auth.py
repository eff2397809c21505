"""Every gRPC call carries `authorization: Bearer <access JWT>`; there is no localhost bypass.
Only the standard health and reflection services are open, as probes and tools expect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from hub.domain.errors import InvalidToken
from hub.services.ports import AccessClaims

OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def bearer(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    raise InvalidToken("missing `authorization: Bearer <access token>` metadata")


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, verify: Callable[[str], AccessClaims]) -> None:
        self._verify = verify

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(OPEN_SERVICES):
            return handler
        try:
            self._verify(bearer(details.invocation_metadata))
        except InvalidToken as exc:
            return _denied(handler, exc.detail)
        return handler


def _denied(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    async def abort(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def abort_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover - makes this an async generator, as a stream handler must be

    kw = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(abort_stream, **kw)
    return grpc.unary_unary_rpc_method_handler(abort, **kw)
