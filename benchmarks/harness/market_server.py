"""Hub on the Redis broker for the market-watch benchmarks (fanout_scale_market; cluster, on
another broker URL): 200 latest-value channels quotes:S000..S199, quotes published round robin at
the rate set over stdin, at most PUBLISHERS publishes in flight; `stats` on stdin prints the
engine's counters and the publisher's. Run by harness.rate_servers' main as `hub-market` (serves
/ws and publishes) or `publisher` (publishes only, as a market-data feed would)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from typing import Any

from .config import REDIS_BASE
from .rate_servers import StdinRate, open_engine, quote, run_uvicorn, websocket_route

PREFIX = "bench-fanout:"
REDIS_DB = 14
REDIS_URL = f"{REDIS_BASE}/{REDIS_DB}?prefix={PREFIX}"
SYMBOLS = [f"quotes:S{i:03d}" for i in range(200)]
PUBLISHERS = 32  # concurrent publishes in flight


def zipf_subscriptions(n: int, seed: int, per_client: int = 20) -> list[list[str]]:
    """n clients' channels: `per_client` of SYMBOLS each, chosen with weight 1/rank (seeded);
    every symbol when `per_client` covers them all."""
    if per_client >= len(SYMBOLS):
        return [list(SYMBOLS) for _ in range(n)]
    rng = random.Random(seed)
    weights = [1.0 / (k + 1) for k in range(len(SYMBOLS))]
    cumulative = list(itertools.accumulate(weights))
    result = []
    for _ in range(n):
        picked: set[int] = set()
        while len(picked) < per_client:
            picked.add(rng.choices(range(len(SYMBOLS)), cum_weights=cumulative)[0])
        result.append([SYMBOLS[i] for i in sorted(picked)])
    return result


def serve_market(port: int, seed: int, http: bool = True, broker_url: str = REDIS_URL) -> None:
    """Hub on the Redis broker (`broker_url`); publishes at the rate set on stdin (`http=False`:
    publish only)."""
    from starlette.applications import Starlette

    from streaming import ChannelKind

    engine = open_engine(ChannelKind.LATEST, broker_url)
    published = failures = 0

    async def publish_loop() -> None:
        nonlocal published, failures
        rng = random.Random(seed)
        prices = [50.0 + rng.uniform(0, 400) for _ in SYMBOLS]
        nxt = 0

        def next_quote(i: int) -> dict[str, Any]:
            prices[i] = max(1.0, prices[i] + rng.uniform(-0.05, 0.05))
            return quote(SYMBOLS[i][7:], prices[i], rng)

        def command(word: bytes) -> None:
            if word == b"stats":
                stats: dict[str, float] = {
                    **engine.stats(),
                    "published": published,
                    "failures": failures,
                }
                stats["t"] = time.monotonic()
                print(json.dumps(stats), flush=True)

        control = StdinRate(command)
        task = await control.listen()
        while not task.done():
            if control.rate > 0:
                due = control.due()
                if due > 0:
                    batch = []
                    for _ in range(due):
                        batch.append((SYMBOLS[nxt], nxt))
                        nxt = (nxt + 1) % len(SYMBOLS)
                    # At most PUBLISHERS round trips to Redis in flight: the engine's redis-py
                    # pool is bounded and fails (not waits) beyond its size.
                    for i in range(0, len(batch), PUBLISHERS):
                        results = await asyncio.gather(
                            *(
                                engine.publish(ch, "quote", next_quote(k))
                                for ch, k in batch[i : i + PUBLISHERS]
                            ),
                            return_exceptions=True,
                        )
                        failed = [r for r in results if isinstance(r, BaseException)]
                        published += len(results) - len(failed)
                        failures += len(failed)
                    control.sent += due
            await asyncio.sleep(0.001)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        async with engine:
            task = asyncio.create_task(publish_loop())
            yield
            task.cancel()

    async def publish_only() -> None:
        async with engine:
            print("ready", flush=True)
            await publish_loop()

    if http:
        app = Starlette(routes=[websocket_route(engine)], lifespan=lifespan)
        run_uvicorn(app, port)
    else:
        asyncio.run(publish_only())
