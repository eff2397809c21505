"""The wire protocol: client actions and server messages as frozen msgspec Structs.

Client frames are decoded once, at the edge, by `decode_action` (a typed Decoder of a tagged union
built at import). Server messages are encoded with `encode_message`; publications are rendered by
`streaming.publication` around data that was encoded once by the publisher.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

ChannelName = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Seq = Annotated[int, msgspec.Meta(ge=0)]


class ErrorCode(enum.StrEnum):
    """Stable machine-readable codes carried by `error` messages."""

    MALFORMED_JSON = "malformed_json"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_ACTION = "unknown_action"
    FRAME_TOO_LARGE = "frame_too_large"
    RATE_LIMITED = "rate_limited"
    NOT_AUTHENTICATED = "not_authenticated"
    AUTHENTICATION_FAILED = "authentication_failed"
    AUTHENTICATION_TIMEOUT = "authentication_timeout"
    #: No longer sent: a second `auth` renews the connection's credentials (kept for clients
    #: that match on it).
    ALREADY_AUTHENTICATED = "already_authenticated"
    TOKEN_EXPIRED = "token_expired"
    SESSION_REVOKED = "session_revoked"
    FORBIDDEN = "forbidden"
    ALREADY_SUBSCRIBED = "already_subscribed"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    UNAVAILABLE = "unavailable"
    SLOW_CONSUMER = "slow_consumer"
    POLICY_VIOLATION = "policy_violation"
    SUBSCRIPTION_LOST = "subscription_lost"
    INTERNAL = "internal_error"


class CloseCode(enum.IntEnum):
    """WebSocket close codes used by the server."""

    NORMAL = 1000
    GOING_AWAY = 1001
    INTERNAL_ERROR = 1011
    MESSAGE_TOO_BIG = 1009
    SERVICE_RESTART = 1012
    AUTHENTICATION_FAILED = 4001
    AUTHENTICATION_TIMEOUT = 4002
    TOKEN_EXPIRED = 4003
    SESSION_REVOKED = 4005
    IDLE_TIMEOUT = 4004
    POLICY_VIOLATION = 4008
    SLOW_CONSUMER = 4009
    TOO_MANY_CONNECTIONS = 4029


# --- client -> server (commands) ---------------------------------------------------------------


class _Action(msgspec.Struct, frozen=True, tag_field="action", forbid_unknown_fields=False):
    pass


class Authenticate(_Action, frozen=True, tag="auth"):
    """Authenticate the connection with a bearer token (first frame), or later renew it with a
    fresh token of the same principal."""

    token: Annotated[str, msgspec.Meta(max_length=8192)]


class Subscribe(_Action, frozen=True, tag="subscribe"):
    """Subscribe to channels; `since` maps reliable channels to the last seq the client has."""

    channels: list[ChannelName]
    since: dict[ChannelName, Seq] = {}


class Unsubscribe(_Action, frozen=True, tag="unsubscribe"):
    """Stop receiving the given channels."""

    channels: list[ChannelName]


class Ping(_Action, frozen=True, tag="ping"):
    """Ask for a pong (client-side liveness check; also resets the idle timer)."""


class Pong(_Action, frozen=True, tag="pong"):
    """Answer to a server ping; resets the idle timer, gets no reply."""


ClientAction = Authenticate | Subscribe | Unsubscribe | Ping | Pong

_decoder = msgspec.json.Decoder(ClientAction)


def decode_action(frame: str | bytes) -> ClientAction:
    """Decode one client frame (raises msgspec.DecodeError / msgspec.ValidationError)."""
    action: ClientAction = _decoder.decode(frame)
    return action


# --- server -> client (events) -----------------------------------------------------------------


class _Message(msgspec.Struct, frozen=True, tag_field="type", omit_defaults=True):
    pass


class Connected(_Message, frozen=True, tag="connected"):
    """The connection is authenticated and ready for subscribe actions."""

    connection_id: str
    ping_interval: float
    idle_timeout: float
    #: Seconds until the credentials expire and the connection ends (None: they do not).
    expires_in: float | None = None


class Authenticated(_Message, frozen=True, tag="authenticated"):
    """A later `auth` renewed the connection's credentials; `expires_in` as in `connected`."""

    expires_in: float | None = None


class Subscribed(_Message, frozen=True, tag="subscribed"):
    """A subscription is active; `seq` is the channel position the client is now at."""

    channel: str
    kind: str
    seq: int
    recovered: bool | None = None


class Unsubscribed(_Message, frozen=True, tag="unsubscribed"):
    """A subscription ended."""

    channel: str


class Error(_Message, frozen=True, tag="error"):
    """Something the client sent (or a subscription) failed; `code` is an ErrorCode."""

    code: ErrorCode
    message: str
    channel: str | None = None


class PongMessage(_Message, frozen=True, tag="pong"):
    """Reply to a client ping."""


class PingMessage(_Message, frozen=True, tag="ping"):
    """Server heartbeat sent after `ping_interval` of outbound silence; answer with pong."""


ServerMessage = (
    Connected | Authenticated | Subscribed | Unsubscribed | Error | PongMessage | PingMessage
)

_encoder = msgspec.json.Encoder()


def encode_message(message: ServerMessage) -> str:
    """Encode one server message as JSON text (not yet wrapped in a frame array)."""
    return _encoder.encode(message).decode()
