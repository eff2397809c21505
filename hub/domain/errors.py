"""The one error hierarchy of the application. Each error carries a stable machine-readable code;
entrypoints map the classes to HTTP or gRPC status, nothing else here knows about transports."""

from __future__ import annotations


class HubError(Exception):
    """Base of every expected, client-facing failure."""

    code = "hub_error"
    title = "Request failed"

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(HubError):
    """The request is well-formed but its values break a rule."""

    code = "validation_error"
    title = "Invalid input"


class WeakPassword(InvalidInput):
    """The password fails the password policy."""

    code = "weak_password"
    title = "Password does not meet the policy"


class EmailTaken(HubError):
    """An account already exists for this email."""

    code = "email_taken"
    title = "Email already registered"


class InvalidCredentials(HubError):
    """Email and password do not match a user."""

    code = "invalid_credentials"
    title = "Invalid credentials"


class InvalidToken(HubError):
    """An access or refresh token is missing, expired, forged or revoked."""

    code = "invalid_token"
    title = "Invalid token"


class RefreshTokenReused(InvalidToken):
    """A refresh token was presented twice: its whole family is now revoked."""

    code = "refresh_token_reused"
    title = "Refresh token reused"


class Forbidden(HubError):
    """The caller is authenticated but lacks the role for this action."""

    code = "forbidden"
    title = "Forbidden"


class NotFound(HubError):
    """The resource does not exist, or belongs to someone else."""

    code = "not_found"
    title = "Not found"


class RateLimited(HubError):
    """Too many attempts; retry after the given number of seconds."""

    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


class DependencyUnavailable(HubError):
    """A backing service (database, cache, broker) cannot be reached right now."""

    code = "dependency_unavailable"
    title = "Service temporarily unavailable"
    retry_after: int | None = None  # seconds, answered as Retry-After when set


class Overloaded(DependencyUnavailable):
    """Hub is shedding load to keep its latency bound for what it accepted; retry later."""

    code = "overloaded"
    title = "Overloaded, retry later"

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after
