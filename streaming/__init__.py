"""streaming: a real-time fan-out engine (WebSocket, SSE, in-process) over memory or Redis.

A generic library: it knows channels, connections and publications, nothing about the
application that uses it. See docs/protocol.md for the wire protocol.
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
