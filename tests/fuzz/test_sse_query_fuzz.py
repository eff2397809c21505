"""Garbage query strings on Hub's /sse (a real uvicorn server, embedded wiring): every answer is a
stream or a 4xx problem, never a 5xx. Examples come from the day's seed (tests/fuzz/seed.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from hub.config import Settings
from hub.entrypoints.http.app import create_app
from tests.http_suite import PASSWORD, PROBLEM, email
from tests.unit.streaming.support import serve_app

from .seed import REPLAY, SEED
from .test_openapi_fuzz import check_problem


@dataclass(frozen=True)
class Server:
    http: httpx.AsyncClient
    token: str


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    app = create_app(Settings(login_limit_per_client=1_000_000))
    async with (
        serve_app(app, lifespan="on") as address,
        httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http,
    ):
        address_ = email()
        r = await http.post("/api/v1/auth/register", json={"email": address_, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = await http.post("/api/v1/auth/login", json={"email": address_, "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield Server(http, r.json()["access_token"])


VALID = "<valid>"  # replaced by the registered user's token
channel = st.one_of(
    st.sampled_from(
        [
            "quotes:AAPL",
            "quotes:aapl",
            "quotes:NOPE",
            "quotes:",
            "orders",
            "portfolio",
            f"orders:{uuid.uuid4()}",
            "ORDERS",
            "x" * 300,
            "",
        ]
    ),
    st.text(max_size=40),
)
channels = st.lists(channel, max_size=40).map(",".join) | st.text(max_size=80)
tokens = st.one_of(
    st.just(VALID),
    st.sampled_from(["", "garbage", "a.b.c", "Bearer x", "null", "eyJhbGciOiJub25lIn0.e30."]),
    st.text(max_size=60),
)
# Raw query-string pieces a browser would never send: bad escapes, stray separators, repeats.
raw = st.sampled_from(["%zz", "%", "&&", "=", "channels", "channels=&channels=a", "%00", "%FF%FE"])


def param(name: str, value: str) -> str:
    return f"{name}={quote(value, safe='')}"


@st.composite
def queries(draw: st.DrawFn) -> str:
    parts = []
    if draw(st.booleans()):
        parts.append(param("channels", draw(channels)))
    if draw(st.booleans()):
        parts.append(param("access_token", draw(tokens)))
    parts.extend(draw(st.lists(raw, max_size=3)))
    parts = draw(st.permutations(parts))
    return "&".join(parts)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@seed(SEED)
@given(query=queries(), method=st.sampled_from(["GET", "HEAD"]))
async def test_garbage_sse_queries_get_a_stream_or_a_4xx_problem(
    server: Server, query: str, method: str
) -> None:
    query = query.replace(quote(VALID, safe=""), server.token)
    url = f"/sse?{query}"
    async with server.http.stream(method, url) as r:
        what = f"{method} {url} -> {r.status_code} ({REPLAY})"
        assert r.status_code < 500, what
        if r.status_code == 200:
            assert r.headers["content-type"].startswith("text/event-stream"), what
            return  # leaving the block closes the stream
        assert 400 <= r.status_code < 500, what
        if method == "GET":
            body = await r.aread()
            wrong = check_problem(r.status_code, r.headers.get("content-type", ""), body)
            assert wrong is None, f"{wrong}: {body[:300]!r} {what}"
        else:
            assert r.headers["content-type"].startswith(PROBLEM), what
