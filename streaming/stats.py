"""Engine counters, exported by the application (e.g. as Prometheus metrics)."""

from __future__ import annotations


class Counters:
    """Plain integer counters, bumped inline on the hot path (no locks: one event loop)."""

    __slots__ = (
        "conflated",
        "connections",
        "deliveries",
        "errors",
        "messages_in",
        "slow_consumer_closes",
        "subscriptions",
    )

    def __init__(self) -> None:
        #: Open WebSocket/SSE connections and leases (gauge).
        self.connections = 0
        #: Active subscriptions, all connections and local subscribers together (gauge).
        self.subscriptions = 0
        #: Publications handed to a subscriber's outbox.
        self.deliveries = 0
        #: Pending latest values replaced by a newer one before being sent.
        self.conflated = 0
        #: Connections closed because their reliable backlog overflowed.
        self.slow_consumer_closes = 0
        #: Publications that reached this node from the broker.
        self.messages_in = 0
        #: Protocol errors sent to clients and internal errors logged.
        self.errors = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}
