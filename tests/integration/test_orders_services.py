"""The order path on PostgreSQL, Redis and RabbitMQ (worker and supervisor in this process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from hub.config import Settings
from hub.entrypoints.http.app import create_app
from tests.orders_suite import Desk, OrdersContract

pytestmark = pytest.mark.integration


@pytest.fixture
def desk(schema_url: str, redis_url: str, amqp_url: str, amqp_prefix: str) -> Iterator[Desk]:
    settings = Settings(
        database_url=schema_url,
        redis_url=redis_url,
        amqp_url=amqp_url,
        amqp_prefix=amqp_prefix,
        jwt_secret="integration-secret-0123456789abcdef",
        feed_in_process=False,
        worker_in_process=True,
        retry_delays=(0.2, 0.5),
        login_limit_per_client=1000,
        register_limit_per_client=1000,
    )
    with TestClient(create_app(settings)) as client:
        yield Desk(client)


class TestServicesOrders(OrdersContract):
    pass
