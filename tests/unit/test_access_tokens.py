from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from hub.adapters.jwt_tokens import JwtAccessTokens
from hub.domain.errors import InvalidToken
from hub.domain.users import Role

SECRET = "s" * 16 + "0123456789abcdef0123"


def tokens(secret: str = SECRET, **kw: str) -> JwtAccessTokens:
    return JwtAccessTokens(
        secret,
        ttl=timedelta(minutes=15),
        issuer=kw.get("issuer", "hub"),
        audience=kw.get("audience", "hub-api"),
    )


def test_round_trip_carries_subject_role_and_jti() -> None:
    user = uuid.uuid4()
    t = tokens()
    token = t.issue(user, Role.ADMIN, datetime.now(UTC))
    claims = t.verify(token)
    assert claims.user_id == user and claims.role is Role.ADMIN and len(claims.jti) == 32
    raw = jwt.decode(token, options={"verify_signature": False})
    assert raw["exp"] - raw["iat"] == 900


def test_each_token_has_a_new_jti() -> None:
    t, now, user = tokens(), datetime.now(UTC), uuid.uuid4()
    assert (
        t.verify(t.issue(user, Role.USER, now)).jti != t.verify(t.issue(user, Role.USER, now)).jti
    )


def test_expired() -> None:
    t = tokens()
    token = t.issue(uuid.uuid4(), Role.USER, datetime.now(UTC) - timedelta(minutes=16))
    with pytest.raises(InvalidToken, match="expired"):
        t.verify(token)


def test_forged_signature() -> None:
    token = tokens("f" * 16 + "another-secret-0123").issue(
        uuid.uuid4(), Role.USER, datetime.now(UTC)
    )
    with pytest.raises(InvalidToken):
        tokens().verify(token)


@pytest.mark.parametrize("field", ["issuer", "audience"])
def test_wrong_issuer_or_audience(field: str) -> None:
    token = tokens(**{field: "someone-else"}).issue(uuid.uuid4(), Role.USER, datetime.now(UTC))
    with pytest.raises(InvalidToken):
        tokens().verify(token)


def test_alg_none_is_refused() -> None:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "sub": str(uuid.uuid4()),
        "role": "admin",
        "iat": now,
        "exp": now + 60,
        "jti": "x",
        "iss": "hub",
        "aud": "hub-api",
    }
    forged = jwt.encode(claims, key=None, algorithm="none")
    with pytest.raises(InvalidToken):
        tokens().verify(forged)


def test_missing_claims_and_garbage() -> None:
    bare = jwt.encode({"sub": str(uuid.uuid4())}, SECRET, algorithm="HS256")
    for token in (bare, "not-a-jwt", ""):
        with pytest.raises(InvalidToken):
            tokens().verify(token)


def test_a_verified_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    import time as time_module

    t = tokens()
    token = t.issue(uuid.uuid4(), Role.USER, datetime.now(UTC))
    first = t.verify(token)
    assert t.verify(token) is first  # the second check is served from the verified cache
    later = time_module.time() + 16 * 60
    monkeypatch.setattr(time_module, "time", lambda: later)
    with pytest.raises(InvalidToken, match="expired"):
        t.verify(token)


def test_the_verified_cache_never_accepts_a_token_it_did_not_check() -> None:
    t, other = tokens(), tokens("f" * 16 + "another-secret-0123")
    good = t.issue(uuid.uuid4(), Role.USER, datetime.now(UTC))
    t.verify(good)
    with pytest.raises(InvalidToken):
        t.verify(other.issue(uuid.uuid4(), Role.USER, datetime.now(UTC)))
    with pytest.raises(InvalidToken):
        t.verify(good[:-2] + ("AA" if not good.endswith("AA") else "BB"))
