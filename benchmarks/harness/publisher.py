"""An open-loop publisher (cluster.py): its own Engine on a broker URL publishes seeded ~100-byte
quotes round robin over 200 channels at the rate set on stdin (`rate R`), `batch` publications
per broker call (Engine.publish for 1, as `hub feed` publishes a quote; publish_many above, as
the outbox relay publishes order events).

Publication i is due at start + i/rate, whatever happened before. Its latency runs from that
due time to the end of its call, so time spent waiting for a free call slot counts (no
coordinated omission), and its quote's `t` is that due time, so the subscribers' latency
includes it too. At most MAX_CALLS calls are in flight: publications due beyond that are
skipped and counted, and the achieved rate shows it.

stdin: `rate R`; `mark` (a measurement window starts); `stats` (one JSON line: the counters so
far and the latencies of the calls completed since the mark). Child: `main()`; parent:
`start_publisher()`."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

from .config import ROOT
from .procs import bench_python
from .rate_servers import RateServer, StdinRate, open_engine, quote
from .stats import latency_ms

MAX_CALLS = 1024
CHANNELS = {  # kind -> its 200 channels
    "latest": [f"quotes:S{i:03d}" for i in range(200)],
    "reliable": [f"events:S{i:03d}" for i in range(200)],
}


async def publish(broker_url: str, kind: str, batch: int, seed: int) -> None:
    from streaming import ChannelKind

    channels = CHANNELS[kind]
    engine = open_engine(ChannelKind(kind), broker_url)
    rng = random.Random(seed)
    prices = [50.0 + rng.uniform(0, 400) for _ in channels]
    counters = {"published": 0, "failures": 0, "skipped": 0}
    window: list[float] = []
    calls: set[asyncio.Task[None]] = set()
    wall = time.time() - time.monotonic()  # monotonic -> wall clock

    def command(word: bytes) -> None:
        if word == b"mark":
            window.clear()
        elif word == b"stats":
            stats = {**counters, "t": time.monotonic(), "calls_in_flight": len(calls)}
            print(json.dumps(stats | latency_ms(window)), flush=True)

    async def call(items: list[tuple[str, str, Any]], dues: list[float]) -> None:
        try:
            if len(items) == 1:
                await engine.publish(*items[0])
            else:
                await engine.publish_many(items)
        except Exception:
            counters["failures"] += len(items)
            return
        done = time.monotonic()
        counters["published"] += len(items)
        window.extend(done - due for due in dues)

    async with engine:
        control = StdinRate(command)
        listening = await control.listen()
        print("ready", flush=True)
        nxt = 0
        while not listening.done():
            due = control.due() if control.rate > 0 else 0
            if due > 0:
                first, rate = control.sent, control.rate
                dues = [control.start + (first + k + 1) / rate for k in range(due)]
                control.sent += due
                for i in range(0, due, batch):
                    chunk = dues[i : i + batch]
                    if len(calls) >= MAX_CALLS:
                        counters["skipped"] += len(chunk)
                        continue
                    items = []
                    for when in chunk:
                        prices[nxt] = max(1.0, prices[nxt] + rng.uniform(-0.05, 0.05))
                        data = quote(channels[nxt][-4:], prices[nxt], rng) | {"t": when + wall}
                        items.append((channels[nxt], "quote", data))
                        nxt = (nxt + 1) % len(channels)
                    task = asyncio.create_task(call(items, chunk))
                    calls.add(task)
                    task.add_done_callback(calls.discard)
            await asyncio.sleep(0.001)


def main() -> None:
    parser = argparse.ArgumentParser(description="open-loop publisher (cluster.py's child)")
    parser.add_argument("broker")
    parser.add_argument("kind", choices=sorted(CHANNELS))
    parser.add_argument("batch", type=int)
    parser.add_argument("seed", type=int)
    args = parser.parse_args()
    asyncio.run(publish(args.broker, args.kind, args.batch, args.seed))


async def start_publisher(
    broker_url: str, kind: str, *, batch: int, seed: int, cpus: str | None
) -> RateServer:
    """A publisher process (pinned to `cpus` with taskset), once it is connected."""
    argv = bench_python("harness.publisher", broker_url, kind, str(batch), str(seed))
    argv = ["taskset", "-c", cpus, *argv] if cpus else argv
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    if not line.startswith(b"ready"):
        await RateServer("publisher", process, 0).stop()
        raise RuntimeError(f"the {kind} publisher did not start")
    return RateServer(f"publisher-{kind}", process, 0)
