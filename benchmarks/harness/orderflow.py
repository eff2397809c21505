"""Market orders offered open loop, and their `filled` events on the users' sockets: one step of
the orders benchmark (submit latency, shedding, submit-to-filled latency, fills/s, memory)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
from typing import Any

import msgspec
import psutil

from .httpload import http_request, metered_open_loop
from .stats import latency_ms

SYMBOLS = ("AAPL", "MSFT", "AMZN", "GOOGL", "META", "NVDA", "JPM", "KO")


class OrderData(msgspec.Struct):
    id: str
    status: str


class Message(msgspec.Struct):
    type: str
    data: OrderData | None = None


class Sockets:
    """One WebSocket per user, subscribed to `orders`; records when each order's `filled` event
    arrives."""

    def __init__(self) -> None:
        self.filled_at: dict[str, float] = {}
        self.filled_times: list[float] = []
        self.other_terminal: dict[str, int] = {}
        self._decoder = msgspec.json.Decoder(list[Message])
        self._tasks: list[asyncio.Task[None]] = []
        self._sockets: list[Any] = []

    async def open(self, ws_url: str, tokens: list[str]) -> None:
        from websockets.asyncio.client import connect

        async def one(token: str) -> None:
            ws = await connect(
                ws_url,
                additional_headers={"Authorization": f"Bearer {token}"},
                max_queue=None,
                ping_interval=None,
            )
            await ws.send('{"action":"subscribe","channels":["orders"]}')
            async with asyncio.timeout(10):
                while not any(
                    m.type == "subscribed" for m in self._decoder.decode(await ws.recv())
                ):
                    pass
            self._sockets.append(ws)
            self._tasks.append(asyncio.create_task(self._read(ws)))

        for chunk in range(0, len(tokens), 10):
            await asyncio.gather(*(one(t) for t in tokens[chunk : chunk + 10]))

    async def _read(self, ws: Any) -> None:
        with contextlib.suppress(Exception):
            async for frame in ws:
                now = time.perf_counter()
                for m in self._decoder.decode(frame):
                    if m.type != "order" or m.data is None:
                        continue
                    if m.data.status == "filled":
                        self.filled_at[m.data.id] = now
                        self.filled_times.append(now)
                    elif m.data.status in ("rejected", "canceled", "expired"):
                        self.other_terminal[m.data.status] = (
                            self.other_terminal.get(m.data.status, 0) + 1
                        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for ws in self._sockets:
            with contextlib.suppress(Exception):
                await ws.close()


def order_requests(tokens: list[str], seed: int) -> list[bytes]:
    """A seeded cycle of (user, symbol) submits: every user in turn, symbols shuffled."""
    rng = random.Random(seed)
    requests = []
    for k in range(len(tokens) * len(SYMBOLS)):
        symbol = rng.choice(SYMBOLS)
        body = msgspec.json.encode({"symbol": symbol, "side": "buy", "type": "market", "qty": "1"})
        auth = {"Authorization": f"Bearer {tokens[k % len(tokens)]}"}
        requests.append(http_request("POST", "/api/v1/orders", auth, body))
    return requests


class Step:
    """What one open-loop step of submits saw: per response status, latency of the accepted
    ones (202), 503s with Retry-After, and which accepted orders to wait for on the sockets."""

    def __init__(self, first_measured: int, hot_token: bytes | None = None) -> None:
        self.first = first_measured
        self.hot_token = hot_token
        self.accepted: dict[str, tuple[float, bool]] = {}  # order id -> (scheduled, hot)
        self.submit: list[float] = []
        self.submit_hot: list[float] = []
        self.shed = 0
        self.shed_with_retry_after = 0
        self.errors: list[str] = []

    def on_response(self, i: int, status: int, body: bytes, scheduled: float, done: float) -> None:
        if i < self.first:
            return
        if status == 202:
            hot = self.hot_token is not None and i % 2 == 1  # see step(): odd = hot account
            self.accepted[msgspec.json.decode(body, type=OrderData).id] = (scheduled, hot)
            (self.submit_hot if hot else self.submit).append(done - scheduled)
        elif status in (429, 503):  # shed: overloaded, or this account over its share
            self.shed += 1
            if b"retry_after" in body:
                self.shed_with_retry_after += 1
        elif len(self.errors) < 3:
            self.errors.append(f"{status}: {body[:200].decode(errors='replace')}")


async def step(
    port: int,
    requests: list[bytes],
    sockets: Sockets | None,
    rate: float,
    args: argparse.Namespace,
    pids: dict[str, int],
    *,
    hot: list[bytes] | None = None,
    hot_rate: float = 0.0,
) -> dict[str, Any]:
    """Offer `rate` submits/s (plus `hot_rate`/s from one account, interleaved) for
    args.duration s after args.warmup s; then wait for the accepted ones' `filled` events."""
    total = rate + hot_rate
    if hot:
        # Interleave: even = the crowd, odd = the hot account, each at its own rate. Open loop
        # needs one sequence: take the hot account as every other request and scale the crowd.
        assert abs(hot_rate - rate) < 1e-9, "the interleaving assumes equal rates"

        def make(i: int) -> bytes:
            return hot[(i // 2) % len(hot)] if i % 2 else requests[(i // 2) % len(requests)]
    else:

        def make(i: int) -> bytes:
            return requests[i % len(requests)]

    seen = Step(int(total * args.warmup), b"hot" if hot else None)
    rss: list[float] = []
    serve = psutil.Process(pids[next(iter(pids))])

    async def sample_memory() -> None:
        while True:
            rss.append(serve.memory_info().rss / 2**20)
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_memory())
    filled_before = len(sockets.filled_times) if sockets else 0
    t0 = time.perf_counter()
    result, server_cpu, host_cpu = await metered_open_loop(
        pids,
        "127.0.0.1",
        port,
        make,
        rate=total,
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        on_response=seen.on_response,
        drain_timeout=10.0,
    )
    sampler.cancel()
    row: dict[str, Any] = {
        "offered_per_s": total,
        "submit_202": latency_ms(seen.submit),
        "accepted_per_s": round(len(seen.accepted) / args.duration, 1),
        "shed_503_per_s": round(seen.shed / args.duration, 1),
        "shed_with_retry_after": seen.shed_with_retry_after,
        "statuses": result.statuses,
        "unfinished_submits": result.unfinished,
        "client_cpu_pct": result.client_cpu_pct,
        "server_cpu_pct": server_cpu,
        "host_cpu_pct": host_cpu,
        "serve_rss_mib": {"first": round(rss[0], 1), "max": round(max(rss), 1)} if rss else {},
    }
    if hot:
        row["submit_202_hot_account"] = latency_ms(seen.submit_hot)
    if seen.errors:
        row["sample_errors"] = seen.errors
    if sockets is not None:
        deadline = time.perf_counter() + 15
        while time.perf_counter() < deadline and any(  # noqa: ASYNC110
            oid not in sockets.filled_at for oid in seen.accepted
        ):
            await asyncio.sleep(0.05)
        crowd = [
            sockets.filled_at[o] - t
            for o, (t, h) in seen.accepted.items()
            if o in sockets.filled_at and not h
        ]
        row["submit_to_filled"] = latency_ms(crowd)
        if hot:
            row["submit_to_filled_hot_account"] = latency_ms(
                [
                    sockets.filled_at[o] - t
                    for o, (t, h) in seen.accepted.items()
                    if o in sockets.filled_at and h
                ]
            )
        row["never_filled_within_15s"] = sum(1 for o in seen.accepted if o not in sockets.filled_at)
        # Fills that arrived on the sockets while submits were being offered (after warm-up).
        span = time.perf_counter() - t0
        row["filled_per_s"] = round((len(sockets.filled_times) - filled_before) / span, 1)
        measured_from = t0 + args.warmup
        in_window = [
            t
            for t in sockets.filled_times[filled_before:]
            if measured_from <= t <= measured_from + args.duration
        ]
        row["filled_per_s_during_offer"] = round(len(in_window) / args.duration, 1)
    return row


def progress(name: str, row: dict[str, Any]) -> None:
    print(
        f"  {name} at {row['offered_per_s']:.0f}/s: accepted {row['accepted_per_s']}/s shed "
        f"{row['shed_503_per_s']}/s, submit p99 {row['submit_202']['p99_ms']} ms, to filled p99 "
        f"{row.get('submit_to_filled', {}).get('p99_ms')} ms, filled "
        f"{row.get('filled_per_s_during_offer')}/s, cpu {row['server_cpu_pct']}",
        file=sys.stderr,
        flush=True,
    )
