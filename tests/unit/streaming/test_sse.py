"""Server-Sent Events: same channels and payloads; Last-Event-ID resumes reliable channels."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from .support import eventually, running


async def events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Parse an SSE stream into {"event", "id", "data"} dicts (comments skipped)."""
    current: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in current:
                current["data"] = json.loads(current["data"])
                yield current
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            current[field] = value.removeprefix(" ")


async def collect(stream: AsyncIterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    out = []
    async with asyncio.timeout(5):
        async for event in stream:
            out.append(event)
            if len(out) == n:
                return out
    return out


async def test_sse_streams_the_same_payloads_and_resumes_with_last_event_id() -> None:
    async with (
        running() as (engine, address),
        httpx.AsyncClient(base_url=f"http://{address}") as http,
    ):
        await engine.publish("quotes:A", "quote", {"p": "1"})
        params = {"channels": "quotes:A,orders", "access_token": "alice-token"}
        async with http.stream("GET", "/sse", params=params) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = events(response)
            first = await collect(stream, 4)
            assert [e["event"] for e in first] == ["connected", "subscribed", "subscribed", "quote"]
            assert first[3]["data"] == {
                "type": "quote",
                "channel": "quotes:A",
                "seq": 1,
                "data": {"p": "1"},
            }
            assert json.loads(first[2]["id"]) == {"orders": 0}
            await engine.publish("orders:alice", "order", {"id": 1})
            [order] = await collect(stream, 1)
            assert order["event"] == "order"
            assert order["data"]["channel"] == "orders"
            last_id = order["id"]
            assert json.loads(last_id) == {"orders": 1}
        await engine.publish("orders:alice", "order", {"id": 2})
        await engine.publish("orders:alice", "order", {"id": 3})
        headers = {"Authorization": "Bearer alice-token", "Last-Event-ID": last_id}
        async with http.stream(
            "GET", "/sse", params={"channels": "orders"}, headers=headers
        ) as response:
            got = await collect(events(response), 4)
            assert got[1]["data"]["recovered"] is True
            assert [e["data"]["data"]["id"] for e in got[2:]] == [2, 3]
        await eventually(lambda: engine.stats()["connections"] == 0)


async def test_sse_rejects_bad_requests() -> None:
    async with running() as (_, address), httpx.AsyncClient(base_url=f"http://{address}") as http:
        response = await http.get("/sse", params={"channels": "orders"})
        assert response.status_code == 401
        response = await http.get("/sse", params={"channels": "orders", "access_token": "bad"})
        assert response.status_code == 401
        assert response.json()["code"] == "authentication_failed"
        response = await http.get("/sse", params={"access_token": "alice-token"})
        assert response.status_code == 400
