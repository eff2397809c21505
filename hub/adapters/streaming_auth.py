"""The streaming engine's Authorizer over Hub's access tokens: who a socket is (the access JWT),
which channels it may read, and what kind each channel is.

Client-facing channels: `quotes:<SYMBOL>` and `bars:<SYMBOL>` (latest value, public to any
user, for a known symbol), `orders` and `portfolio` (the caller's own; internally
`orders:<user id>` and `portfolio:<user id>`).
Nobody can name another user's private channel: the user id always comes from the token.

A stream ends when its access token expires (the Principal carries `exp`) or when its login
session is revoked (the Principal carries the token's `sid`; bootstrap forwards AuthService's
revocations to `Engine.revoke`).
"""

from __future__ import annotations

from collections.abc import Callable

from hub.domain.errors import InvalidToken
from hub.services.ports import AccessClaims
from streaming import AuthenticationFailed, ChannelKind, Principal

QUOTES = "quotes:"
BARS = "bars:"
PUBLIC = (QUOTES, BARS)  # per-symbol channels any user may read
PRIVATE = ("orders", "portfolio")


def kind_of(channel: str) -> ChannelKind:
    # Order events must never be dropped; quotes, forming bars and portfolio snapshots
    # supersede each other.
    return ChannelKind.RELIABLE if channel.startswith("orders:") else ChannelKind.LATEST


def principal_of(claims: AccessClaims) -> Principal:
    """The engine's principal for verified claims (an access token's, or an API key's)."""
    return Principal(
        str(claims.user_id),
        {"role": claims.role.value},
        expires_at=claims.expires_at.timestamp(),
        sid=claims.sid,
    )


class JwtAuthorizer:
    def __init__(
        self, verify: Callable[[str], AccessClaims], symbols: Callable[[], set[str]]
    ) -> None:
        self._verify = verify
        self._symbols = symbols

    async def authenticate(self, token: str) -> Principal:
        try:
            claims = self._verify(token)
        except InvalidToken as exc:
            raise AuthenticationFailed(exc.detail) from exc
        return principal_of(claims)

    def resolve(self, principal: Principal, channel: str) -> str | None:
        if channel in PRIVATE:
            return f"{channel}:{principal.id}"
        for prefix in PUBLIC:
            if channel.startswith(prefix):
                symbol = channel.removeprefix(prefix).upper()
                return prefix + symbol if symbol in self._symbols() else None
        return None
