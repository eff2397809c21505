"""The streaming error hierarchy: one base class, one subclass per condition."""

from __future__ import annotations


class StreamingError(Exception):
    """Base class of every error raised by the streaming package."""


class ConfigurationError(StreamingError, ValueError):
    """An Engine option, limit or broker URL is invalid."""


class AuthenticationFailed(StreamingError):
    """The Authorizer rejected the credentials a client presented."""


class TooManyConnections(StreamingError):
    """The principal already holds `Limits.max_connections_per_principal` streams here."""


class BrokerUnavailable(StreamingError):
    """The broker did not answer in time, so a subscription could not be set up."""


class SlowConsumer(StreamingError):
    """A subscriber fell further behind than its bounded buffer allows."""


class SubscriptionLost(StreamingError):
    """A reliable subscription lost continuity (history no longer covers a gap)."""


class EngineNotRunning(StreamingError):
    """The Engine was used outside its `async with` block."""
