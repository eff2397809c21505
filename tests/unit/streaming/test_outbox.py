from __future__ import annotations

import pytest

from streaming import ConfigurationError, Limits
from streaming.outbox import Outbox
from streaming.ratelimit import TokenBucket


def test_queued_items_keep_order_and_drain_before_latest() -> None:
    box: Outbox[str] = Outbox(1000)
    box.put_latest("q", "q1", 2)
    assert box.push("a", 1)
    assert box.push("b", 1)
    assert box.drain() == ["a", "b", "q1"]


def test_drain_respects_max_bytes_and_replay_is_not_charged() -> None:
    box: Outbox[str] = Outbox(10)
    assert box.push("r1", 8, bounded=False)
    assert box.push("r2", 8, bounded=False)
    assert box.push("live", 8)
    assert box.pending_bytes == 8
    assert box.drain(10) == ["r1"]
    assert box.drain(100) == ["r2", "live"]
    assert box.pending_bytes == 0
    assert box.pending_bytes == 0
    assert len(box) == 0


def test_latest_values_are_conflated_per_key() -> None:
    box: Outbox[str] = Outbox(1000)
    assert not box.put_latest("x", "x1", 10)
    assert box.put_latest("x", "x2", 12)
    assert not box.put_latest("y", "y1", 5)
    assert box.pending_bytes == 17
    assert box.drain() == ["x2", "y1"]


def test_push_refuses_what_would_overflow() -> None:
    box: Outbox[str] = Outbox(10)
    assert box.push("a", 6)
    assert not box.push("b", 6)
    assert box.drain() == ["a"]
    # An empty outbox always takes one item, so a large message can still get through.
    assert box.push("big", 50)


def test_discard_latest() -> None:
    box: Outbox[str] = Outbox(100)
    box.put_latest("x", "x1", 10)
    box.discard_latest("x")
    box.discard_latest("missing")
    assert box.pending_bytes == 0
    assert box.drain() == []


def test_token_bucket_allows_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=0.001, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_limits_validate() -> None:
    with pytest.raises(ConfigurationError):
        Limits(max_subscriptions=0)
    with pytest.raises(ConfigurationError):
        Limits(auth_timeout=-1)
    assert Limits(flush_interval=0).flush_interval == 0
