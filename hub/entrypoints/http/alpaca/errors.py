"""Errors in Alpaca's shape: `{"code": 40410000, "message": "..."}`, where the code is the HTTP
status followed by five digits (Alpaca's own convention), plus Hub's string code as `reason`.

The status of a Hub error is the one table in hub/entrypoints/http/problems.py; here only the
body changes. The numeric codes are stable and listed in docs/alpaca.md.
"""

from __future__ import annotations

from http import HTTPStatus

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from hub.domain.errors import HubError, InvalidToken
from hub.entrypoints.http.problems import STATUS

# HTTP status -> Alpaca code. 40010001 and 42210000 are Alpaca's own for a malformed request and
# for one it understood but refuses; 40310000 is its "insufficient buying power".
CODES: dict[int, int] = {
    400: 40010001,
    401: 40110000,
    403: 40310000,
    404: 40410000,
    405: 40510000,
    409: 40910000,
    413: 41310000,
    422: 42210000,
    429: 42910000,
    500: 50010000,
    503: 50310000,
}


class AlpacaError(msgspec.Struct, omit_defaults=True):
    code: int
    message: str
    reason: str | None = None  # Hub's stable string code (e.g. insufficient_buying_power)


def code_of(status: int) -> int:
    return CODES.get(status, status * 100_000)


def error(
    status: int,
    message: str,
    *,
    reason: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = msgspec.json.encode(AlpacaError(code_of(status), message, reason))
    return Response(body, status, headers=headers, media_type="application/json")


def from_hub_error(exc: HubError) -> Response:
    status = next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if isinstance(exc, InvalidToken):
        headers["WWW-Authenticate"] = 'APCA-API-KEY-ID realm="hub"'
    return error(status, exc.detail, reason=exc.code, headers=headers)


def http_error(request: Request, status: int, headers: dict[str, str] | None = None) -> Response:
    """A routing miss under /v2 (no such route, or not with this method), in Alpaca's shape."""
    if status == 404:
        message = f"endpoint not found: {request.method} {request.url.path}"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = HTTPStatus(status).phrase
    return error(status, message, reason="not_found" if status == 404 else None, headers=headers)
