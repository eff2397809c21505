"""Benchmark users: registered and logged in through the API, tokens minted with the benchmark's
secret, and state (orders, positions, a watchlist) given through the API."""

from __future__ import annotations

import asyncio
import collections
import random
import time
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx

from .config import JWT_SECRET, PASSWORD


async def register_and_login(
    url: str, emails: list[str], concurrency: int = 4
) -> dict[str, dict[str, str]]:
    """Register each email (skipping ones that exist) and log in; return email -> tokens."""
    tokens: dict[str, dict[str, str]] = {}
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def one(email: str) -> None:
            async with limit:
                body = {"email": email, "password": PASSWORD}
                r = await http.post("/api/v1/auth/register", json=body)
                if r.status_code not in (201, 409):
                    raise RuntimeError(f"register {email}: {r.status_code} {r.text}")
                r = await http.post("/api/v1/auth/login", json=body)
                if r.status_code != 200:
                    raise RuntimeError(f"login {email}: {r.status_code} {r.text}")
                tokens[email] = r.json()

        await asyncio.gather(*(one(e) for e in emails))
    return tokens


def issue_token() -> str:
    """An HS256 access token for a random user id, valid for an hour (for the peers, which
    have no users table)."""
    import jwt

    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "role": "user",
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "iss": "hub",
        "aud": "hub-api",
    }
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


async def user_id(url: str, token: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        me = (
            await http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        ).json()
    return str(me["id"])


@dataclass
class User:
    """A benchmark user and what was given to it through the API."""

    email: str
    token: str
    user_id: str = ""
    watchlist_id: str = ""
    watchlist: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)


async def api(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    token: str,
    body: Any = None,
    ok: tuple[int, ...] = (200, 201, 202),
    headers: dict[str, str] | None = None,
) -> Any:
    """One call; 429/503 (admission control) are retried after Retry-After (capped)."""
    auth = {"Authorization": f"Bearer {token}", **(headers or {})}
    for _ in range(60):
        r = await http.request(method, path, json=body, headers=auth)
        if r.status_code in (429, 503):
            await asyncio.sleep(min(float(r.headers.get("retry-after", "0.5")), 2.0))
            continue
        if r.status_code not in ok:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None
    raise RuntimeError(f"{method} {path}: still refused after 60 tries")


def to_tick(price: Decimal) -> str:
    return str(price.quantize(Decimal("0.01"), rounding=ROUND_DOWN))


async def give_state(
    url: str, users: list[User], instruments: list[dict[str, Any]], seed: int
) -> dict[str, Any]:
    """Per user: watchlist of 10, 4 market buys (2 stocks, 1 ETF, 1 crypto), 1 resting limit
    buy; then wait until the market buys are filled. Returns what was obtained."""
    t0 = time.perf_counter()
    by_category: dict[str, list[str]] = collections.defaultdict(list)
    for i in instruments:
        by_category[i["category"]].append(i["symbol"])
    symbols = sorted(i["symbol"] for i in instruments)
    crypto_qty = {"BTC-USD": "0.01", "ETH-USD": "0.1", "SOL-USD": "1"}
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        quotes = await api(
            http, "GET", "/api/v1/market-data?symbols=" + ",".join(symbols), users[0].token
        )
        bid = {d["symbol"]: Decimal(d["quote"]["bid"]) for d in quotes["data"] if d.get("quote")}

        async def one(k: int, user: User) -> None:
            rng = random.Random(f"{seed}:{k}")
            async with limit:
                me = await api(http, "GET", "/api/v1/auth/me", user.token)
                user.user_id = me["id"]
                lists = await api(http, "GET", "/api/v1/watchlists", user.token)
                user.watchlist_id = lists[0]["id"]
                user.watchlist = rng.sample(symbols, 10)
                await api(
                    http,
                    "PATCH",
                    f"/api/v1/watchlists/{user.watchlist_id}",
                    user.token,
                    {"symbols": user.watchlist},
                )
                stocks = rng.sample(by_category["stock"], 3)
                buys = [
                    (stocks[0], str(rng.randint(1, 10))),
                    (stocks[1], str(rng.randint(1, 10))),
                    (rng.choice(by_category["etf"]), str(rng.randint(1, 5))),
                ]
                coin = rng.choice(sorted(crypto_qty))
                buys.append((coin, crypto_qty[coin]))
                for symbol, qty in buys:
                    order = {"symbol": symbol, "side": "buy", "type": "market", "qty": qty}
                    key = {"Idempotency-Key": uuid.uuid4().hex}
                    placed = await api(
                        http, "POST", "/api/v1/orders", user.token, order, (202,), key
                    )
                    user.orders.append(placed["id"])
                resting = {
                    "symbol": stocks[2],
                    "side": "buy",
                    "type": "limit",
                    "qty": "1",
                    "limit_price": to_tick(bid[stocks[2]] * Decimal("0.95")),
                    "time_in_force": "gtc",
                }
                key = {"Idempotency-Key": uuid.uuid4().hex}
                placed = await api(http, "POST", "/api/v1/orders", user.token, resting, (202,), key)
                user.orders.append(placed["id"])

        await asyncio.gather(*(one(k, u) for k, u in enumerate(users)))
        submitted_s = time.perf_counter() - t0
        # Wait until every market buy is filled (each user: 4 filled, 1 resting `new`).
        statuses: collections.Counter[str] = collections.Counter()
        deadline = time.perf_counter() + 90
        check = asyncio.Semaphore(16)

        async def count(user: User) -> None:
            async with check:
                page = await api(http, "GET", "/api/v1/orders?status=all", user.token)
                statuses.update(o["status"] for o in page["orders"])

        while True:
            statuses.clear()
            await asyncio.gather(*(count(u) for u in users))
            if statuses["filled"] >= 4 * len(users) or time.perf_counter() > deadline:
                break
            await asyncio.sleep(1)
        sample = users[0]
        positions = await api(http, "GET", "/api/v1/positions", sample.token)
        account = await api(http, "GET", "/api/v1/account", sample.token)
    return {
        "users": len(users),
        "orders_per_user": 5,
        "order_statuses": dict(statuses),
        "watchlist_symbols_per_user": 10,
        "submitted_in_s": round(submitted_s, 1),
        "ready_in_s": round(time.perf_counter() - t0, 1),
        "sample_user": {
            "positions": len(positions),
            "categories": sorted({p["category"] for p in positions}),
            "account": account,
        },
    }


async def users_given_state(
    url: str, n: int, seed: int
) -> tuple[list[User], list[str], dict[str, Any]]:
    """n users registered, logged in and given state (give_state): the users, the instruments'
    symbols, and what was obtained."""
    t0 = time.perf_counter()
    emails = [f"reads-{uuid.uuid4().hex[:8]}-{k}@example.com" for k in range(n)]
    logins = await register_and_login(url, emails, concurrency=4)
    users = [User(e, logins[e]["access_token"]) for e in emails]
    registered_s = time.perf_counter() - t0
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        instruments = await api(http, "GET", "/api/v1/instruments?limit=500", users[0].token)
    setup = await give_state(url, users, instruments, seed)
    setup["registered_and_logged_in_s"] = round(registered_s, 1)
    return users, sorted(i["symbol"] for i in instruments), setup
