"""A client that stops reading (real TCP backpressure) must not hurt anyone else."""

from __future__ import annotations

import asyncio
import socket

from websockets.asyncio.client import connect

from streaming import CloseCode, Limits

from .support import Client, client, close_code, read_until_closed, running

OUTBOX = 64 * 1024
COUNT = 3000
PAD = "x" * 1500


def tiny_socket(address: str) -> socket.socket:
    host, port = address.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    return sock


async def drain_fast(c: Client, seqs: list[int]) -> None:
    while len(seqs) < COUNT:
        message = await c.expect("event", within=10)
        seqs.append(message["seq"])


async def test_slow_reader_is_bounded_closed_and_recovers_everything() -> None:
    limits = Limits(max_outbox_bytes=OUTBOX)
    async with running(limits=limits, history_size=COUNT * 2, sndbuf=16384) as (engine, address):
        sock = tiny_socket(address)
        async with (
            connect(f"ws://{address}/ws", sock=sock, max_queue=1) as slow_ws,
            client(address) as fast,
        ):
            slow = Client(slow_ws)
            await slow.send({"action": "auth", "token": "bob-token"})
            await slow.expect("connected")
            await slow.subscribe("events:feed", "quotes:A")
            await fast.subscribe("events:feed", "quotes:A")

            fast_seqs: list[int] = []
            reader = asyncio.create_task(drain_fast(fast, fast_seqs))
            peak = 0
            for i in range(COUNT):
                await engine.publish("events:feed", "event", {"i": i, "pad": PAD})
                await engine.publish("quotes:A", "quote", {"i": i})
                peak = max([peak, *(s.outbox.pending_bytes for s in engine._connections)])
                await asyncio.sleep(0)
            await reader

            # The slow connection's memory stayed bounded and it was closed as a slow consumer.
            assert peak <= OUTBOX + 2000
            assert engine.stats()["slow_consumer_closes"] == 1
            # The fast client got every reliable event, in order, while the slow one lagged
            # (how fast it got them is a benchmark's question: benchmarks/fanout.py).
            assert fast_seqs == list(range(1, COUNT + 1))

            # The slow client now reads what was buffered, then sees close code 4009.
            closed = await read_until_closed(slow)
            assert close_code(closed) == CloseCode.SLOW_CONSUMER
            received = [m["seq"] for m in slow.seen if m["type"] == "event"]
            assert received == list(range(1, len(received) + 1))
            assert len(received) < COUNT

        # Reconnecting with `since` yields exactly the rest.
        async with client(address, "bob-token") as again:
            last = received[-1] if received else 0
            [subscribed] = await again.subscribe("events:feed", since={"events:feed": last})
            assert subscribed["recovered"] is True
            rest = [(await again.expect("event"))["seq"] for _ in range(COUNT - last)]
            assert received + rest == list(range(1, COUNT + 1))
