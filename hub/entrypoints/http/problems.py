"""RFC 9457 problem details with a stable `code`, for every error the API can answer."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from hub.domain import errors
from hub.services.errors import ConcurrentUpdate, IdempotencyConflict

MEDIA_TYPE = "application/problem+json"

# Domain and service errors -> HTTP status, the one table of it (the legacy routes reshape the
# body, not the status). Subclasses are matched through their MRO, most specific first.
STATUS: dict[type[errors.HubError], int] = {
    errors.InconsistentLedger: 500,  # a bug, not the client's doing
    ConcurrentUpdate: 409,
    IdempotencyConflict: 409,
    errors.WatchlistNameTaken: 409,
    errors.DependencyUnavailable: 503,
    errors.InvalidInput: 422,
    errors.EmailTaken: 409,
    errors.InvalidCredentials: 401,
    errors.InvalidToken: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.RateLimited: 429,
    errors.HubError: 400,
}


class Problem(msgspec.Struct, omit_defaults=True):
    """The body of every error response."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:hub:problem:{code}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(msgspec.json.encode(body), status, headers=headers, media_type=MEDIA_TYPE)


def from_hub_error(request: Request, exc: errors.HubError) -> Response:
    status = next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)  # RateLimited, DependencyUnavailable
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if isinstance(exc, errors.InvalidToken):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return problem(
        status,
        exc.code,
        exc.detail,
        title=exc.title,
        instance=request.url.path,
        headers=headers,
        **exc.extra,
    )


def sse_problem(status: int, code: str, detail: str, headers: Mapping[str, str]) -> Response:
    """/sse errors in Hub's problem format, like every other route's."""
    return problem(status, code, detail, instance="/sse", headers=dict(headers))
