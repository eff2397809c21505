"""The Redis broker with real Redis: across engines, across OS processes, across reconnects
(the shared contract, tests/broker_suite.py, on one Redis)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from tests.broker_suite import KillPubSub, RedisBrokerContract

pytestmark = pytest.mark.integration


class TestRedisBroker(RedisBrokerContract):
    @pytest.fixture
    def kill_pubsub(self, prefix: str, redis_client: aioredis.Redis) -> KillPubSub:
        async def kill() -> int:
            name = f"streaming-pubsub-{prefix}"
            victims = [c["id"] for c in await redis_client.client_list() if c.get("name") == name]
            for victim in victims:
                await redis_client.client_kill_filter(_id=victim)
            return len(victims)

        return kill
