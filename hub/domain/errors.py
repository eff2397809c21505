"""Every error of the domain, in one hierarchy: the base, the categories the edges map to a
status (InvalidInput, NotFound, Forbidden, ...), and each rule's own error, grouped by concept.
Each carries a stable machine-readable code. Service-level errors (concurrency, idempotency) are
in hub/services/errors.py; the entrypoints map both to HTTP or gRPC status, nothing here knows
about transports."""

from __future__ import annotations


class HubError(Exception):
    """Base of every expected, client-facing failure."""

    code = "hub_error"
    title = "Request failed"

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


# --- categories ---------------------------------------------------------------------------------


class InvalidInput(HubError):
    """The request is well-formed but its values break a rule."""

    code = "validation_error"
    title = "Invalid input"


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


# --- numbers ------------------------------------------------------------------------------------


class MalformedNumber(InvalidInput):
    """The text is not a plain decimal number (exponent, NaN, underscore, non-ASCII digit...)."""

    code = "validation_error"
    title = "Invalid number"


class NumberOutOfRange(InvalidInput):
    """The number is well-formed but has more digits than Hub accepts."""

    code = "number_out_of_range"
    title = "Number out of range"


# --- users and tokens ---------------------------------------------------------------------------


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


class TooManyApiKeys(InvalidInput):
    """The user already holds the most live API keys allowed; revoke one first."""

    code = "too_many_api_keys"
    title = "Too many API keys"


# --- orders -------------------------------------------------------------------------------------


class InvalidOrder(InvalidInput):
    """The order's fields do not make a valid order."""

    code = "invalid_order"
    title = "Invalid order"


class InvalidQuantity(InvalidOrder):
    """The quantity is not positive or not a whole number of lots."""

    code = "invalid_quantity"
    title = "Invalid quantity"


class PriceNotOnTick(InvalidOrder):
    """A limit or stop price is not positive or not a multiple of the instrument's tick size."""

    code = "price_not_on_tick"
    title = "Price not on the tick"


class InstrumentNotTradable(InvalidOrder):
    """The instrument exists but is not open for trading."""

    code = "instrument_not_tradable"
    title = "Instrument not tradable"


# The pre-trade checks (hub.domain.risk).


class MarketClosed(InvalidOrder):
    """The instrument's market is closed now."""

    code = "market_closed"
    title = "Market closed"


class QuoteUnavailable(InvalidOrder):
    """There is no usable quote to price or check the order against."""

    code = "quote_unavailable"
    title = "Quote unavailable"


class StaleQuote(QuoteUnavailable):
    """The latest quote is older than the allowed age."""


class PriceOutsideCollar(InvalidOrder):
    """A limit or stop price is too far from the last trade price."""

    code = "price_outside_collar"
    title = "Price outside the collar"


class MaxNotionalExceeded(InvalidOrder):
    """The order's value exceeds the per-order maximum."""

    code = "max_notional_exceeded"
    title = "Maximum order value exceeded"


class DuplicateClientOrderId(InvalidInput):
    """The account already has an order with this client_order_id."""

    code = "duplicate_client_order_id"
    title = "Duplicate client_order_id"


class IllegalTransition(InvalidInput):
    """The order's status does not allow this change."""

    code = "illegal_transition"
    title = "Illegal order transition"


class NotCancelable(IllegalTransition):
    """The order is already final, or a cancel is already pending."""

    code = "not_cancelable"
    title = "Order not cancelable"


class InvalidFill(IllegalTransition):
    """An execution that the order cannot take: overfill, bad price, untriggered stop."""

    code = "invalid_fill"
    title = "Invalid fill"


# --- the ledger ---------------------------------------------------------------------------------


class InsufficientBuyingPower(Forbidden):
    """The account's buying power does not cover the cash the order needs."""

    code = "insufficient_buying_power"
    title = "Insufficient buying power"


class InsufficientShares(Forbidden):
    """The position does not hold enough unreserved shares for this sell."""

    code = "insufficient_shares"
    title = "Insufficient shares"


class InconsistentLedger(HubError):
    """A ledger change that would break an invariant: a bug or a mismatched account/position."""

    code = "inconsistent_ledger"
    title = "Inconsistent ledger"


# --- watchlists ---------------------------------------------------------------------------------


class WatchlistFull(InvalidInput):
    """A watchlist holds at most 20 symbols."""

    code = "watchlist_full"
    title = "Watchlist full"


class WatchlistNameTaken(HubError):
    """The user already has a watchlist with this name."""

    code = "watchlist_name_taken"
    title = "Watchlist name taken"
