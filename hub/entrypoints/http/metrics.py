"""HTTP request counters and latency, as a pure ASGI middleware (no per-request task)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from hub.bootstrap import Container


class HttpMetrics:
    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "hub_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "hub_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        # Label children bound once per (method, route[, status]): `.labels()` on every request
        # builds and validates the label tuple each time. Routes are templates, so this stays
        # small; past the cap (odd methods from clients) children are looked up as before.
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("hub.route", "unmatched")
            method = scope["method"]
            counted = self._counted.get((method, route, status))
            if counted is None:
                counted = self.requests.labels(method, route, str(status))
                if len(self._counted) < _MAX_CHILDREN:
                    self._counted[(method, route, status)] = counted
            counted.inc()
            timed = self._timed.get((method, route))
            if timed is None:
                timed = self.latency.labels(method, route)
                if len(self._timed) < _MAX_CHILDREN:
                    self._timed[(method, route)] = timed
            timed.observe(time.perf_counter() - start)


class ContainerCollector(Collector):
    """Exports the plain counters that services and the streaming engine keep, at scrape time."""

    def __init__(self, container: Container) -> None:
        self._container = container

    def collect(self) -> Iterator[Metric]:
        for group, counters in self._container.stats().items():
            for name, value in counters.items():
                metric = CounterMetricFamily(f"hub_{group}_{name}", f"{group}: {name}")
                if name in _GAUGES:
                    yield GaugeMetricFamily(f"hub_{group}_{name}", f"{group}: {name}", value=value)
                    continue
                metric.add_metric([], value)
                yield metric


_MAX_CHILDREN = 1024

# Counters that go down as well as up are exported as gauges.
_GAUGES = frozenset(
    {
        "connections",
        "subscriptions",
        "in_flight",
        "backlog",
        "lag_ms",
        "tasks",
        "resting_orders",
        "live",
        "unwritten",
        "buffered",
    }
)
