"""Errors of the use cases rather than of the business rules: what happens when two requests
meet in the trading stores, and the Idempotency-Key protocol. Domain errors (and the base,
HubError) are in hub/domain/errors.py; the entrypoints map both to HTTP or gRPC status."""

from __future__ import annotations

from hub.domain.errors import HubError, InvalidInput


class ConcurrentUpdate(HubError):
    """Someone changed the order since it was read (its version moved on): retry from a read."""

    code = "concurrent_update"
    title = "Concurrent update"


class IdempotencyConflict(HubError):
    """Two requests with one Idempotency-Key raced; the loser replays the winner's answer."""

    code = "idempotency_conflict"


class IdempotencyKeyReused(InvalidInput):
    """The Idempotency-Key was first used with a different request body."""

    code = "idempotency_key_reused"
    title = "Idempotency-Key reused with a different request"
