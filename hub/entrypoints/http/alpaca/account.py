"""GET /v2/account and /v2/account/configurations: the caller's paper account, Alpaca-shaped.

A cash account: no margin (multiplier 1, buying power = cash not reserved by open buys), no
shorting, no options, no pattern-day-trader rules. `last_equity` is today's equity less the
positions' change since the last close (deposits and trades of the day are not unwound).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import msgspec

from hub.domain.accounts import Account
from hub.domain.portfolio import PortfolioValuation
from hub.entrypoints.http.alpaca.routing import route
from hub.entrypoints.http.routing import Call

ZERO = Decimal("0.00")


def account_number(account: Account) -> str:
    """Stable and unique per account (Alpaca's paper accounts read PA...)."""
    return "PA" + account.id.hex[:10].upper()


class AccountOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    account_number: str
    status: str = "ACTIVE"
    crypto_status: str = "ACTIVE"
    currency: str
    buying_power: Decimal
    regt_buying_power: Decimal
    non_marginable_buying_power: Decimal
    options_buying_power: Decimal = ZERO
    cash: Decimal
    accrued_fees: Decimal = ZERO
    pending_transfer_in: Decimal = ZERO
    pending_transfer_out: Decimal = ZERO
    portfolio_value: Decimal
    equity: Decimal
    last_equity: Decimal
    long_market_value: Decimal
    short_market_value: Decimal = ZERO
    initial_margin: Decimal = ZERO
    maintenance_margin: Decimal = ZERO
    last_maintenance_margin: Decimal = ZERO
    sma: Decimal = ZERO
    multiplier: str = "1"
    pattern_day_trader: bool = False
    trading_blocked: bool = False
    transfers_blocked: bool = False
    account_blocked: bool = False
    trade_suspended_by_user: bool = False
    shorting_enabled: bool = False
    daytrade_count: int = 0
    options_approved_level: int = 0
    options_trading_level: int = 0
    created_at: datetime
    reserved_cash: Decimal  # Hub's addition: cash held for open buy orders

    @classmethod
    def of(cls, account: Account, v: PortfolioValuation) -> AccountOut:
        intraday = sum(
            (p.unrealized_intraday_pl for p in v.positions if p.unrealized_intraday_pl), ZERO
        )
        return cls(
            id=account.id,
            account_number=account_number(account),
            currency=account.currency,
            buying_power=v.buying_power,
            regt_buying_power=v.buying_power,
            non_marginable_buying_power=v.buying_power,
            cash=v.cash,
            portfolio_value=v.equity,
            equity=v.equity,
            last_equity=v.equity - intraday,
            long_market_value=v.market_value,
            created_at=account.created_at,
            reserved_cash=v.reserved_cash,
        )


class ConfigurationsOut(msgspec.Struct):
    """What Hub's accounts are; they cannot be changed (PATCH is not served)."""

    dtbp_check: str = "entry"
    fractional_trading: bool = True  # crypto trades in fractions of a unit
    max_margin_multiplier: str = "1"
    no_shorting: bool = True
    pdt_check: str = "entry"
    suspend_trade: bool = False
    trade_confirm_email: str = "none"
    ptp_no_exception_entry: bool = False
    max_options_trading_level: int = 0


async def get_account(call: Call) -> AccountOut:
    account, valuation = await call.hub.portfolio.account_valuation(call.user_id)
    return AccountOut.of(account, valuation)


async def configurations(call: Call) -> ConfigurationsOut:
    return ConfigurationsOut()


ROUTES = [
    route("GET", "/v2/account", get_account),
    route("GET", "/v2/account/configurations", configurations),
]
