"""Per-connection limits: every buffer and rate a client can influence is bounded here."""

from __future__ import annotations

from dataclasses import dataclass, fields

from streaming.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied to every WebSocket and SSE connection."""

    #: Channels one connection may be subscribed to at once.
    max_subscriptions: int = 200
    #: Concurrent connections (WebSocket, SSE and leases, e.g. gRPC streams) one principal may
    #: hold on this node.
    max_connections_per_principal: int = 16
    #: Sustained inbound frames per second (token bucket refill rate) ...
    inbound_rate: float = 20.0
    #: ... and the bucket size, i.e. how many frames may arrive in a burst.
    inbound_burst: int = 50
    #: Protocol violations (malformed, unknown, rate-limited frames) tolerated before closing.
    max_violations: int = 10
    #: Largest inbound frame accepted, in bytes (larger: error then close 1009).
    max_frame_bytes: int = 16 * 1024
    #: Bound on pending outbound bytes per connection; reliable overflow closes with 4009.
    max_outbox_bytes: int = 1024 * 1024
    #: Largest outbound frame the writer builds by batching (a bigger single message goes alone).
    max_batch_bytes: int = 64 * 1024
    #: Seconds a connection has to send its auth frame (unless authenticated by header).
    auth_timeout: float = 10.0
    #: Seconds of outbound silence after which the server sends a protocol ping.
    ping_interval: float = 25.0
    #: Seconds without any inbound frame after which the connection is closed (4004).
    idle_timeout: float = 75.0
    #: Seconds a subscribe may wait for the broker before answering `unavailable`.
    subscribe_timeout: float = 5.0
    #: Seconds the writer waits after a wake-up to batch more messages into one frame (0: none).
    flush_interval: float = 0.0
    #: Seconds allowed for a close handshake before the connection is abandoned.
    close_timeout: float = 2.0

    @property
    def transport_max_frame_bytes(self) -> int:
        """The message size limit to give the WebSocket server itself (uvicorn's `ws_max_size`).

        The server then refuses a bigger frame from its header, before buffering the payload
        (otherwise it would hold up to 16 MiB per socket, authenticated or not). It is a little
        above `max_frame_bytes`, so that a frame just over the limit still gets the engine's
        `frame_too_large` error before the 1009 close; a bigger one gets a bare 1009.
        """
        return self.max_frame_bytes + max(self.max_frame_bytes // 4, 1024)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0 or (value == 0 and f.name not in {"flush_interval", "max_violations"}):
                raise ConfigurationError(f"Limits.{f.name} must be positive, got {value!r}")
