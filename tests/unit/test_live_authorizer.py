"""The streaming JWT authorizer hub gives the engine (hub/adapters/streaming_auth.py): who a
socket is, and which channels that user may read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from hub.adapters.jwt_tokens import JwtAccessTokens
from hub.adapters.streaming_auth import JwtAuthorizer, kind_of
from hub.domain.users import Role
from streaming import AuthenticationFailed, ChannelKind, Engine, Limits, Principal
from tests.unit.streaming.support import client, serve

SECRET = "live-authorizer-secret-0123456789abcdef"
SYMBOLS = {"AAPL", "ETH-USD", "VOO"}
ALICE, BOB = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
def tokens() -> JwtAccessTokens:
    return JwtAccessTokens(SECRET, ttl=timedelta(minutes=15), issuer="hub", audience="hub-api")


@pytest.fixture
def authorizer(tokens: JwtAccessTokens) -> JwtAuthorizer:
    return JwtAuthorizer(tokens.verify, lambda: SYMBOLS)


async def test_a_valid_token_names_its_user_and_role(
    tokens: JwtAccessTokens, authorizer: JwtAuthorizer
) -> None:
    principal = await authorizer.authenticate(tokens.issue(ALICE, Role.ADMIN, datetime.now(UTC)))
    assert principal == Principal(str(ALICE), {"role": "admin"})


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b.c", "Bearer x", "\x00" * 10, "é" * 50],
)
async def test_malformed_tokens_are_refused(authorizer: JwtAuthorizer, token: str) -> None:
    with pytest.raises(AuthenticationFailed, match="invalid"):
        await authorizer.authenticate(token)


async def test_expired_tokens_are_refused(
    tokens: JwtAccessTokens, authorizer: JwtAuthorizer
) -> None:
    issued = datetime.now(UTC) - timedelta(minutes=16)  # ttl is 15 minutes
    with pytest.raises(AuthenticationFailed, match="expired"):
        await authorizer.authenticate(tokens.issue(ALICE, Role.USER, issued))


async def test_tokens_signed_with_another_secret_are_refused(authorizer: JwtAuthorizer) -> None:
    other = JwtAccessTokens("x" * 40, ttl=timedelta(minutes=15), issuer="hub", audience="hub-api")
    with pytest.raises(AuthenticationFailed):
        await authorizer.authenticate(other.issue(ALICE, Role.ADMIN, datetime.now(UTC)))


async def test_tokens_without_a_role_are_refused(authorizer: JwtAuthorizer) -> None:
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": str(ALICE), "iat": now, "exp": now + 60, "jti": "j", "iss": "hub"}
    token = jwt.encode({**claims, "aud": "hub-api"}, SECRET, algorithm="HS256")
    with pytest.raises(AuthenticationFailed):
        await authorizer.authenticate(token)


@pytest.mark.parametrize("channel", ["orders", "portfolio"])
def test_private_channels_are_the_callers_own(authorizer: JwtAuthorizer, channel: str) -> None:
    assert authorizer.resolve(Principal(str(ALICE)), channel) == f"{channel}:{ALICE}"
    assert authorizer.resolve(Principal(str(BOB)), channel) == f"{channel}:{BOB}"


@pytest.mark.parametrize(
    "channel",
    [
        f"orders:{BOB}",  # another user's internal channel name
        f"portfolio:{BOB}",
        f"orders:{ALICE}",  # even one's own: only the short names are client-facing
        "ORDERS",  # private names are exact
        "Portfolio",
        "orders ",
        "quotes",
        "quotes:",
        "quotes:NOPE",  # unknown symbol
        "quotes:AAPL ",
        "quotes:*",
        "QUOTES:AAPL",  # the prefix is exact, only the symbol is case-folded
        "bars",
        "bars:",
        "bars:NOPE",
        "BARS:AAPL",
        "bars:AAPL:1Min",
        "events:x",
        "",
    ],
)
def test_other_channels_are_refused(authorizer: JwtAuthorizer, channel: str) -> None:
    assert authorizer.resolve(Principal(str(ALICE)), channel) is None


@pytest.mark.parametrize(
    ("channel", "resolved"),
    [
        ("quotes:AAPL", "quotes:AAPL"),
        ("quotes:aapl", "quotes:AAPL"),
        ("quotes:eth-usd", "quotes:ETH-USD"),
        ("quotes:VoO", "quotes:VOO"),
        ("bars:AAPL", "bars:AAPL"),
        ("bars:eth-usd", "bars:ETH-USD"),
    ],
)
def test_symbol_channels_are_case_insensitive(
    authorizer: JwtAuthorizer, channel: str, resolved: str
) -> None:
    assert authorizer.resolve(Principal(str(ALICE)), channel) == resolved


def test_symbols_are_read_at_resolve_time(tokens: JwtAccessTokens) -> None:
    symbols = {"AAPL"}
    authorizer = JwtAuthorizer(tokens.verify, lambda: symbols)
    assert authorizer.resolve(Principal(str(ALICE)), "quotes:MSFT") is None
    symbols.add("MSFT")
    assert authorizer.resolve(Principal(str(ALICE)), "quotes:msft") == "quotes:MSFT"


def test_only_order_channels_are_reliable() -> None:
    assert kind_of(f"orders:{ALICE}") is ChannelKind.RELIABLE
    assert kind_of(f"portfolio:{ALICE}") is ChannelKind.LATEST
    assert kind_of("quotes:AAPL") is ChannelKind.LATEST


async def test_on_a_real_socket_another_users_orders_are_forbidden(
    tokens: JwtAccessTokens, authorizer: JwtAuthorizer
) -> None:
    engine = Engine("memory://", authorizer=authorizer, kind_of=kind_of, limits=Limits())
    async with engine, serve(engine) as address:
        token = tokens.issue(ALICE, Role.USER, datetime.now(UTC))
        async with client(address, token) as c:
            (subscribed,) = await c.subscribe("orders")
            assert subscribed["channel"] == "orders"
            await c.send({"action": "subscribe", "channels": [f"orders:{BOB}", "quotes:nope"]})
            errors = [await c.expect("error"), await c.expect("error")]
            assert {e["code"] for e in errors} == {"forbidden"}
            assert {e["channel"] for e in errors} == {f"orders:{BOB}", "quotes:nope"}
            # Alice's own stream still gets her events, and only hers.
            await engine.publish(f"orders:{BOB}", "order", {"order": "bob's"})
            await engine.publish(f"orders:{ALICE}", "order", {"order": "alice's"})
            message = await c.expect("order")
            assert message["channel"] == "orders" and message["data"] == {"order": "alice's"}
        async with client(address, None) as anonymous:
            await anonymous.send({"action": "auth", "token": "garbage"})
            assert (await anonymous.expect("error"))["code"] == "authentication_failed"
