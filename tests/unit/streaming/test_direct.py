"""Direct frame writes (streaming.direct): the frames are valid, shared by every subscriber of
a publication, and the ordinary ASGI path takes over whenever a direct write would be wrong."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.streams import StreamReader

from streaming.direct import DirectWebSocketProtocol, _Flag, _Inbox, text_frame

from .support import client, eventually, make_engine, serve


def parse(data: bytes) -> Frame:
    """Decode a server frame with websockets' own parser (an independent implementation)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 200_000])
def test_text_frame_round_trips_through_websockets_parser(size: int) -> None:
    payload = ("x" * size).encode()
    frame = parse(text_frame(payload))
    assert frame.opcode is Opcode.TEXT
    assert frame.fin
    assert frame.data == payload


@pytest.fixture
def direct_writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every frame a direct write accepted."""
    written: list[bytes] = []
    original = DirectWebSocketProtocol.write

    def spy(self: DirectWebSocketProtocol, frame: bytes) -> bool:
        accepted = original(self, frame)
        if accepted:
            written.append(frame)
        return accepted

    monkeypatch.setattr(DirectWebSocketProtocol, "write", spy)
    return written


async def test_a_publication_is_one_frame_object_shared_by_all_subscribers(
    direct_writes: list[bytes],
) -> None:
    async with (
        make_engine() as engine,
        serve(engine) as address,
        client(address) as a,
        client(address, "bob-token") as b,
    ):
        await a.subscribe("quotes:AAPL")
        await b.subscribe("quotes:AAPL")
        direct_writes.clear()
        await engine.publish("quotes:AAPL", "quote", {"bid": "189.10"})
        got = [await c.expect("quote") for c in (a, b)]
    assert got[0] == got[1]
    assert got[0]["data"] == {"bid": "189.10"}
    quote_frames = [f for f in direct_writes if b'"quote"' in f]
    assert len(quote_frames) == 2
    assert quote_frames[0] is quote_frames[1]  # encoded once, written twice


async def test_with_permessage_deflate_frames_go_through_asgi_compressed(
    direct_writes: list[bytes],
) -> None:
    async with (
        make_engine() as engine,
        serve(engine, deflate=True) as address,
        client(address, compression="deflate") as c,
    ):
        assert c.ws.protocol.extensions, "the server should accept permessage-deflate"
        await c.subscribe("quotes:AAPL")
        await engine.publish("quotes:AAPL", "quote", {"bid": "1.00"})
        assert (await c.expect("quote"))["data"] == {"bid": "1.00"}
    assert direct_writes == []  # every frame was compressed per connection by uvicorn


async def test_after_the_client_closes_nothing_is_written_directly(
    direct_writes: list[bytes],
) -> None:
    async with make_engine() as engine, serve(engine) as address:
        async with client(address) as c:
            await c.subscribe("quotes:AAPL")
        await eventually(lambda: engine.stats()["connections"] == 0)
        direct_writes.clear()
        await engine.publish("quotes:AAPL", "quote", {"bid": "2.00"})
        # Asserting that nothing is written: a bounded wait of 50 ms. A publish reaches a
        # connected socket within a few loop turns, so a stray write would have happened by then.
        await asyncio.sleep(0.05)
    assert direct_writes == []


def test_write_declines_when_the_transport_is_paused() -> None:
    protocol: Any = DirectWebSocketProtocol.__new__(DirectWebSocketProtocol)
    written: list[bytes] = []

    class Transport:
        def write(self, data: bytes) -> None:
            written.append(data)

    class Conn:
        state = State.OPEN
        extensions = ()

    protocol.transport, protocol.conn = Transport(), Conn()
    protocol.close_sent = protocol.disconnected = False
    protocol.writable = asyncio.Event()
    assert protocol.write(b"paused") is False  # backpressure: the ASGI path waits instead
    protocol.writable.set()
    assert protocol.write(b"open") is True
    protocol.close_sent = True
    assert protocol.write(b"closing") is False
    assert written == [b"open"]


async def test_inbox_keeps_order_and_survives_a_cancelled_get() -> None:
    inbox = _Inbox()
    waiting = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    assert inbox.empty()
    inbox.put_nowait("connect")
    inbox.put_nowait("receive")
    assert not inbox.empty()
    assert [await inbox.get(), await inbox.get()] == ["connect", "receive"]
    later = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait("disconnect")
    assert await later == "disconnect"


async def test_flag_blocks_while_cleared_and_wakes_every_waiter() -> None:
    flag = _Flag()
    assert flag.is_set()
    assert await flag.wait() is True  # set: returns at once
    flag.clear()
    first, second = asyncio.create_task(flag.wait()), asyncio.create_task(flag.wait())
    cancelled = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    assert not first.done() and not second.done()
    flag.set()  # a cancelled waiter must not break the wake-up of the others
    assert await first is True
    assert await second is True


async def test_fragmented_client_messages_are_reassembled_after_the_handshake() -> None:
    """The direct protocol restarts websockets' frame parser after the handshake: continuation
    frames, control frames between fragments, and closing must still work."""
    async with make_engine() as engine, serve(engine) as address, client(address) as c:
        subscribe = '{"action":"subscribe","channels":["quotes:AAPL","quotes:MSFT"]}'
        await c.ws.send(iter([subscribe[:10], subscribe[10:30], subscribe[30:]]))
        await c.ws.ping()
        got = {(await c.expect("subscribed"))["channel"] for _ in range(2)}
        assert got == {"quotes:AAPL", "quotes:MSFT"}
        await c.ws.close(code=1000)
    assert c.ws.close_code == 1000
