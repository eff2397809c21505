"""A second OS process for the Redis integration tests.

python -m tests.integration.streaming.node publish <broker_url> <channel> <type> <count>
python -m tests.integration.streaming.node serve <broker_url>   (prints "ready <host:port>",
                                                                 serves until stdin closes)
"""

from __future__ import annotations

import asyncio
import sys

from tests.unit.streaming.support import eventually, make_engine, serve


async def publish(broker_url: str, channel: str, type_: str, count: int) -> None:
    async with make_engine(broker_url) as engine:
        for i in range(count):
            seq = await engine.publish(channel, type_, {"i": i})
            print(seq, flush=True)


async def serve_forever(broker_url: str) -> None:
    async with make_engine(broker_url) as engine, serve(engine) as address:
        await eventually(lambda: engine.ready)  # e.g. following revocations upstream
        print("ready", address, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin


def main() -> None:
    mode, broker_url, *args = sys.argv[1:]
    if mode == "publish":
        channel, type_, count = args
        asyncio.run(publish(broker_url, channel, type_, int(count)))
    elif mode == "serve":
        asyncio.run(serve_forever(broker_url))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
