"""The minimal asyncio WebSocket client of the Python load clients (fanout.py, fanout_scale_*):
just enough RFC 6455 that the client costs as little as possible, and opening many at once."""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec


class WsClient(asyncio.Protocol):
    """Just enough RFC 6455: handshake, unfragmented server frames, masked client text frames."""

    def __init__(
        self,
        path: str,
        headers: dict[str, str],
        on_text: Callable[[WsClient, bytes], None],
        ready_on_open: bool,
    ) -> None:
        self.path = path
        self.ready_on_open = ready_on_open
        self.headers = headers
        self.on_text = on_text
        self.buffer = b""
        self.open = False
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.path} HTTP/1.1",
            "Host: 127.0.0.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            # What every browser offers. The servers here run their default policy, which is to
            # decline it (Hub's and Node ws's); a server that accepted would fail the run below.
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            *(f"{k}: {v}" for k, v in self.headers.items()),
        ]
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if not self.open:
            head, sep, rest = buffer.partition(b"\r\n\r\n")
            if not sep:
                self.buffer = buffer
                return
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                self._fail(RuntimeError(f"handshake failed: {head[:80]!r}"))
                return
            if b"permessage-deflate" in head.lower():
                self._fail(RuntimeError("server accepted permessage-deflate; this client can't"))
                return
            self.open = True
            if self.ready_on_open:
                self.ready.set_result(None)
            buffer = rest
        pos, end = 0, len(buffer)
        while end - pos >= 2:
            b0, b1 = buffer[pos], buffer[pos + 1] & 0x7F
            header = 2
            if b1 == 126:
                if end - pos < 4:
                    break
                (b1,) = struct.unpack_from("!H", buffer, pos + 2)
                header = 4
            elif b1 == 127:
                if end - pos < 10:
                    break
                (b1,) = struct.unpack_from("!Q", buffer, pos + 2)
                header = 10
            if end - pos < header + b1:
                break
            payload = buffer[pos + header : pos + header + b1]
            pos += header + b1
            opcode = b0 & 0x0F
            if opcode == 1:
                self.on_text(self, payload)
            elif opcode == 9:
                self.send(payload, opcode=10)
            elif opcode == 8:
                self._fail(ConnectionError(f"closed by server: {payload[:2].hex()}"))
                return
        self.buffer = buffer[pos:]

    def send(self, payload: bytes, opcode: int = 1) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert self.transport is not None
        self.transport.write(head + mask + masked)

    def _fail(self, exc: Exception) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
        if not self.closed.done():
            self.closed.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("connection lost"))


class Quote(msgspec.Struct):
    t: float  # the only field the client needs; msgspec skips the rest without building it


class HubMessage(msgspec.Struct):
    type: str
    data: Quote | None = None


hub_messages = msgspec.json.Decoder(list[HubMessage])


class Client(WsClient):
    """WsClient plus per-client state for `connect_many` and `hub_handler`."""

    got: int  # quotes received
    pending: int  # `subscribed` replies still expected
    index: int  # position in the connection order


class Tally:
    """Deliveries and latencies while recording."""

    def __init__(self) -> None:
        self.recording = False
        self.count = 0
        self.latencies: list[float] = []


def hub_handler(tally: Tally, subscribe: Any) -> Any:
    """subscribe(client) -> (frame, n_channels); the client is ready after n `subscribed`."""

    def on_text(client: Client, payload: bytes) -> None:
        now = time.time()
        for message in hub_messages.decode(payload):
            kind = message.type
            if kind == "quote" and message.data is not None:
                client.got += 1
                if tally.recording:
                    tally.count += 1
                    tally.latencies.append(now - message.data.t)
            elif kind == "connected":
                frame, client.pending = subscribe(client)
                client.send(frame)
            elif kind == "subscribed":
                client.pending -= 1
                if client.pending == 0 and not client.ready.done():
                    client.ready.set_result(None)

    return on_text


def one_channel(client: Client) -> tuple[bytes, int]:
    return b'{"action":"subscribe","channels":["quotes:AAPL"]}', 1


def plain_handler(client: Client, payload: bytes) -> None:
    client.got += 1


async def connect_many(
    port: int, n: int, on_text: Any, sources: int, *, hub: bool, concurrency: int = 200
) -> tuple[list[Client], list[str]]:
    """Open n connections, spread over `sources` loopback source addresses; at most
    `concurrency` opening (and waiting to be ready) at once."""
    loop = asyncio.get_running_loop()
    headers = {"Authorization": "Bearer bench"} if hub else {}
    gate = asyncio.Semaphore(concurrency)
    clients: list[Client] = []
    errors: list[str] = []

    async def one(i: int) -> None:
        async with gate:
            client = Client("/ws", headers, on_text, ready_on_open=not hub)
            client.got = 0
            client.index = i
            source = f"127.0.0.{1 + i % sources}"
            try:
                await loop.create_connection(
                    lambda: client, "127.0.0.1", port, local_addr=(source, 0)
                )
                async with asyncio.timeout(60):
                    await client.ready
            except (OSError, RuntimeError, TimeoutError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:120])
                if client.transport is not None:
                    client.transport.close()
                return
            clients.append(client)

    await asyncio.gather(*(one(i) for i in range(n)))
    return clients, errors


def close_all(clients: Sequence[WsClient]) -> None:
    for client in clients:
        if client.transport is not None:
            client.transport.close()
