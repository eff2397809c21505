"""Authentication and authorization are a port: the application plugs in an Authorizer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is on the other end of a connection, as established by `Authorizer.authenticate`."""

    id: str
    claims: Mapping[str, object] = field(default_factory=dict, compare=False, hash=False)
    #: When the credentials expire (Unix time, seconds), or None if they do not. The engine
    #: ends the principal's streams then (WebSocket close 4003), unless a WebSocket client
    #: renewed them in band with a fresh token.
    expires_at: float | None = field(default=None, compare=False)
    #: The login session the credentials belong to (e.g. a JWT `sid` claim), or None.
    #: `Engine.revoke(sid)` ends every stream authenticated within it, on every node.
    sid: str | None = field(default=None, compare=False)


class Authorizer(Protocol):
    """Decides who a connection is and which channels it may read."""

    async def authenticate(self, token: str) -> Principal:
        """Return the principal for a bearer token; raise `AuthenticationFailed` if invalid."""
        ...

    def resolve(self, principal: Principal, channel: str) -> str | None:
        """Map a client-facing channel name to an internal channel, or None if forbidden."""
        ...


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header among raw ASGI headers."""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None
