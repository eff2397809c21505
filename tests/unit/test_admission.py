"""Admission control: bounded in-flight submits, a fair share per account, a bounded backlog."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from hub.domain.errors import Overloaded, RateLimited
from hub.services.admission import Admission


def admission(backlog: int = 0, **kw: int) -> Admission:
    async def probe() -> int:
        return backlog

    return Admission(
        max_in_flight=kw.get("max_in_flight", 4),
        max_backlog=kw.get("max_backlog", 10),
        max_per_account=kw.get("max_per_account", 2),
        backlog=probe,
    )


def test_in_flight_bound_sheds_with_retry_after() -> None:
    a = admission()
    with contextlib.ExitStack() as held:
        for account in range(4):
            held.enter_context(a.admit(account))
        with pytest.raises(Overloaded) as refused:
            held.enter_context(a.admit(99))
        assert refused.value.retry_after == 1
    assert a.in_flight == 0  # released, whatever happened
    with a.admit(99):
        assert a.in_flight == 1
    assert a.shed == 1


def test_one_account_gets_its_share_only_when_the_process_is_busy() -> None:
    a = admission(max_in_flight=4, max_per_account=1)
    with a.admit("hot"), a.admit("hot"):  # not busy: the account may use more than its share
        with pytest.raises(RateLimited), a.admit("hot"):  # now half busy: beyond its share...
            pass
        with a.admit("someone else"):  # ...while others still get in
            pass


async def test_backlog_bound_follows_the_probe() -> None:
    a = admission(backlog=10)
    runner = asyncio.create_task(a.run())
    try:
        async with asyncio.timeout(1):
            while a.backlog != 10:  # noqa: ASYNC110 - waiting for the first poll
                await asyncio.sleep(0.01)
        with pytest.raises(Overloaded, match="waiting to be processed"), a.admit("x"):
            pass
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def test_a_lagging_loop_sheds() -> None:
    a = admission()
    runner = asyncio.create_task(a.run())
    try:
        await asyncio.sleep(0.05)
        assert a.lag_s < a.max_lag_s  # an idle loop is not behind
        for _ in range(10):  # a loop with more work than CPU: each turn blocks it for 150 ms
            time.sleep(0.15)  # noqa: ASYNC251 - blocking on purpose
            await asyncio.sleep(0)
        assert a.lag_s >= a.max_lag_s
        with pytest.raises(Overloaded, match="behind"), a.admit("x"):
            pass
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
