"""The supervisor's leader election on the real PostgreSQL: one leader per schema at a time,
and another takes over when the leader goes."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from hub.adapters.postgres import leadership
from hub.adapters.postgres.leadership import postgres_leadership
from tests.aio import until

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leadership, "POLL_S", 0.05)
    monkeypatch.setattr(leadership, "CHECK_S", 0.05)


class Candidate:
    def __init__(self, name: str, leaders: list[str]) -> None:
        self.name = name
        self.leaders = leaders

    async def lead(self) -> None:
        self.leaders.append(self.name)
        try:
            await asyncio.Event().wait()  # leads until cancelled
        finally:
            self.leaders.remove(self.name)


async def test_one_leader_at_a_time_and_a_successor_takes_over(schema_url: str) -> None:
    leaders: list[str] = []
    a, b = Candidate("a", leaders), Candidate("b", leaders)
    first = asyncio.create_task(postgres_leadership(schema_url, a.lead))
    await until(lambda: leaders == ["a"])
    second = asyncio.create_task(postgres_leadership(schema_url, b.lead))
    await asyncio.sleep(0.5)  # ten polls: b keeps waiting while a holds the lock
    assert leaders == ["a"]

    first.cancel()  # a's process goes away: its connection, and so its lock, go with it
    with contextlib.suppress(asyncio.CancelledError):
        await first
    await until(lambda: leaders == ["b"])
    second.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await second
    assert leaders == []


async def test_a_leader_whose_work_fails_competes_again(schema_url: str) -> None:
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("the supervisor crashed")
        await asyncio.Event().wait()

    task = asyncio.create_task(postgres_leadership(schema_url, flaky))
    await until(lambda: runs == 2)  # the lock was released with the failed run's connection
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
