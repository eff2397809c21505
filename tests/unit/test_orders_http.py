"""The order path on the embedded wiring (memory stores, in-process queue and worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from hub.config import Settings
from hub.entrypoints.http.app import create_app
from tests.orders_suite import Desk, OrdersContract


@pytest.fixture
def desk() -> Iterator[Desk]:
    settings = Settings(
        feed_in_process=False, login_limit_per_client=1000, register_limit_per_client=1000
    )
    with TestClient(create_app(settings)) as client:
        yield Desk(client)


class TestEmbeddedOrders(OrdersContract):
    pass
