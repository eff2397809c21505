"""The Redis Cluster broker's key layout, without a cluster: every key of a channel hashes to
one slot, whatever the channel is called, and the URL selects the broker."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from streaming import ConfigurationError
from streaming.brokers import open_broker
from streaming.brokers._redis_shard import hash_tag, untag
from streaming.brokers.redis import RedisBroker
from streaming.brokers.redis_cluster import RedisClusterBroker

NAMES = ["quotes:AAPL", "orders:7f3c", "_revoked", "a{b}c", "}{", "{x}", "%7B", "50%", "é:ü", "x"]


def cluster_broker(prefix: str = "streaming:") -> RedisClusterBroker:
    url = f"redis://127.0.0.1:7000/0?prefix={prefix}&cluster=true"
    broker = open_broker(url, history_size=10, history_ttl=60)
    assert isinstance(broker, RedisClusterBroker)
    return broker


@pytest.mark.parametrize("channel", NAMES)
def test_a_channels_keys_and_pubsub_channel_share_one_slot(channel: str) -> None:
    broker = cluster_broker()
    keys = [broker.key(what, channel) for what in ("seq", "latest", "history", "ch")]
    assert len({key_slot(k.encode()) for k in keys}) == 1
    assert key_slot(keys[0].encode()) == key_slot(hash_tag(channel)[1:-1].encode())
    assert untag(hash_tag(channel).encode()) == channel


def test_channels_get_distinct_keys() -> None:
    broker = cluster_broker()
    assert len({broker.key("seq", c) for c in NAMES}) == len(NAMES)


def test_the_url_selects_the_broker() -> None:
    plain = open_broker("redis://127.0.0.1:6379/0?prefix=p:", history_size=10, history_ttl=60)
    assert type(plain) is RedisBroker
    assert plain.key("seq", "quotes:A") == "p:seq:quotes:A"  # the single-Redis layout, unchanged
    assert cluster_broker("p:").key("seq", "quotes:A") == "p:seq:{quotes:A}"


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:7000/0?cluster=maybe",
        "redis://127.0.0.1:7000/0?prefix=a{b:&cluster=true",  # the tag must be the channel's
    ],
)
def test_bad_cluster_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_broker(url, history_size=10, history_ttl=60)
