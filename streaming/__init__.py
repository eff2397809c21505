"""streaming: a real-time fan-out engine (WebSocket, SSE, in-process) over memory or Redis.

A generic library: it knows channels, connections and publications, nothing about the
application that uses it. See docs/protocol.md for the wire protocol.

The application mounts the transports itself, over a running Engine: the ASGI apps
`streaming.websocket.WebSocketEndpoint(engine)` and `streaming.sse.SseEndpoint(engine)`, and
`streaming.direct.DirectWebSocketProtocol` for uvicorn. They are not imported here, so that the
engine alone needs no web framework.
"""

from __future__ import annotations

from streaming.auth import Authorizer, Principal
from streaming.channels import ChannelKind
from streaming.engine import Engine
from streaming.errors import (
    AuthenticationFailed,
    BrokerUnavailable,
    ConfigurationError,
    EngineNotRunning,
    SlowConsumer,
    StreamingError,
    SubscriptionLost,
    TooManyConnections,
)
from streaming.limits import Limits
from streaming.local import Subscription
from streaming.protocol import CloseCode, ErrorCode
from streaming.publication import Publication

__all__ = [
    "AuthenticationFailed",
    "Authorizer",
    "BrokerUnavailable",
    "ChannelKind",
    "CloseCode",
    "ConfigurationError",
    "Engine",
    "EngineNotRunning",
    "ErrorCode",
    "Limits",
    "Principal",
    "Publication",
    "SlowConsumer",
    "StreamingError",
    "Subscription",
    "SubscriptionLost",
    "TooManyConnections",
]
