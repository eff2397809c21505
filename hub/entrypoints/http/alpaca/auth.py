"""Who is calling a /v2 route: an API key (Alpaca's `APCA-API-KEY-ID` and `APCA-API-SECRET-KEY`
headers) or a Hub access token (`Authorization: Bearer`). Both end as the same AccessClaims."""

from __future__ import annotations

from starlette.requests import Request

from hub.bootstrap import Container
from hub.domain.errors import InvalidToken
from hub.entrypoints.http.routing import bearer_token
from hub.services.ports import AccessClaims

KEY_ID = "apca-api-key-id"
SECRET = "apca-api-secret-key"


async def authenticate(request: Request, hub: Container) -> AccessClaims:
    """The caller's claims; InvalidToken (401) without valid credentials, RateLimited (429)
    once this address has failed too many key checks."""
    key_id, secret = request.headers.get(KEY_ID), request.headers.get(SECRET)
    if key_id is not None or secret is not None:
        if not key_id or not secret:
            raise InvalidToken("send both APCA-API-KEY-ID and APCA-API-SECRET-KEY")
        client = request.client.host if request.client else None
        return await hub.api_keys.authenticate(key_id.strip(), secret.strip(), client)
    if "authorization" in request.headers:
        return hub.auth.authenticate(bearer_token(request))
    raise InvalidToken(
        "missing credentials: send APCA-API-KEY-ID and APCA-API-SECRET-KEY (an API key from "
        "POST /api/v1/api-keys), or Authorization: Bearer <access token>"
    )
