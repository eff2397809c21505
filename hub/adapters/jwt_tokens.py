"""Access tokens as short-lived HS256 JWTs (PyJWT) with sub, exp, iat, jti, role, issuer and
audience, and `sid`: the login session (refresh-token family) they were issued for, so that
revoking the session can end the streams opened with them. Tokens without `sid` (issued before
it existed) stay valid until they expire."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from uuid import UUID

import jwt

from hub.domain.errors import InvalidToken
from hub.domain.users import Role
from hub.services.ports import AccessClaims

ALGORITHM = "HS256"  # pinned: the verifier never trusts the header's "alg"
VERIFIED_CACHE = 10_000  # tokens whose signature and claims were checked, kept until they expire


class JwtAccessTokens:
    """Issues and verifies access JWTs (the AccessTokens port)."""

    def __init__(self, secret: str, *, ttl: timedelta, issuer: str, audience: str) -> None:
        self._secret = secret
        self.ttl = ttl
        self._issuer = issuer
        self._audience = audience
        # A dashboard sends the same token with every request for 15 minutes: decoding and
        # checking the HMAC once is enough. Only the expiry changes with time, and it is checked
        # on every hit. Bounded: the oldest entry goes when it is full.
        self._verified: dict[str, AccessClaims] = {}

    def issue(self, user_id: UUID, role: Role, now: datetime, sid: UUID | None = None) -> str:
        claims = {
            "sub": str(user_id),
            "role": role.value,
            "iat": int(now.timestamp()),
            "exp": int((now + self.ttl).timestamp()),
            "jti": uuid.uuid4().hex,
            "iss": self._issuer,
            "aud": self._audience,
        }
        if sid is not None:
            claims["sid"] = sid.hex
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> AccessClaims:
        claims = self._verified.get(token)
        if claims is not None:
            if claims.expires_at.timestamp() <= time.time():
                del self._verified[token]
                raise InvalidToken("access token has expired")
            return claims
        claims = self._decode(token)
        if len(self._verified) >= VERIFIED_CACHE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["sub", "exp", "iat", "jti", "iss", "aud", "role"]},
            )
            return AccessClaims(
                user_id=UUID(claims["sub"]),
                role=Role(claims["role"]),
                jti=str(claims["jti"]),
                expires_at=datetime.fromtimestamp(claims["exp"]).astimezone(),
                sid=str(claims["sid"]) if "sid" in claims else None,
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("access token has expired") from exc
        except (jwt.InvalidTokenError, ValueError, KeyError, TypeError) as exc:
            raise InvalidToken("access token is invalid") from exc
