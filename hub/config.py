"""Settings, read once from HUB_* environment variables into a frozen object.

A bad value stops start-up with a message that names the variable. Defaults match the embedded
mode; docker-compose.yml sets the service URLs.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar
from urllib.parse import urlsplit

from hub.domain.money import parse_money

T = TypeVar("T")

MIN_JWT_SECRET_LENGTH = 32


class ConfigError(Exception):
    """A HUB_* variable has a value Hub cannot use."""


class Mode(enum.StrEnum):
    EMBEDDED = "embedded"  # everything in one process, in memory
    SERVICES = "services"  # at least one real service configured


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    grpc_port: int = 50051
    database_url: str | None = None
    redis_url: str | None = None
    # HUB_REDIS_URL names one node of a Redis Cluster: every Redis use goes through redis-py's
    # cluster client, and fan-out through sharded pub/sub.
    redis_cluster: bool = False
    amqp_url: str | None = None
    jwt_secret: str | None = None
    jwt_issuer: str = "hub"
    jwt_audience: str = "hub-api"
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    paper_cash: Decimal = Decimal("100000.00")
    currency: str = "USD"
    admin_emails: frozenset[str] = field(default_factory=frozenset)
    login_limit_per_email: int = 5
    login_limit_per_email_window_s: int = 900
    login_limit_per_client: int = 60
    login_limit_per_client_window_s: int = 60
    register_limit_per_client: int = 20
    register_limit_window_s: int = 600
    max_body_bytes: int = 64 * 1024
    demo: bool = True
    feed_quotes_per_second: int = 50
    feed_seed: int = 42
    # None: the feed runs inside `hub serve` in embedded mode, and as `hub feed` in services mode.
    feed_in_process: bool | None = None
    # The feed's history at first start (docs/market-history.md): complete sessions of 1-minute
    # bars, and of daily bars; 0 and 0 backfill nothing.
    backfill_minute_days: int = 5
    backfill_daily_days: int = 252
    market_hours: str = "always"
    # None: the order worker runs inside `hub serve` in embedded mode, as `hub worker` otherwise.
    worker_in_process: bool | None = None
    retry_delays: tuple[float, ...] = (300.0, 900.0, 3600.0, 21600.0)
    # Unacked messages a worker holds; what it holds is group-committed, so this is also the
    # largest batch one transaction writes.
    worker_prefetch: int = 256
    # Admission control (hub/services/admission.py): past either bound a submit gets 503.
    submit_concurrency: int = 16  # submits in flight in one `hub serve`
    account_submit_concurrency: int = 4  # of which one account's
    order_backlog_limit: int = 1000  # orders relayed or queued but not yet taken by a worker
    amqp_prefix: str = ""  # prepended to exchange and queue names (several Hubs on one broker)
    cache_ttl_s: int = 300
    # permessage-deflate on WebSockets: off, as Node `ws` and Centrifugo default to (every
    # browser offers it; each frame is then compressed once per connection instead of encoded
    # once, and each connection keeps a zlib context: 66 KiB instead of 29 KiB measured).
    ws_deflate: bool = False
    log_level: str = "info"
    log_json: bool = False

    @property
    def mode(self) -> Mode:
        if self.database_url or self.redis_url or self.amqp_url:
            return Mode.SERVICES
        return Mode.EMBEDDED

    @property
    def runs_feed(self) -> bool:
        if self.feed_in_process is not None:
            return self.feed_in_process
        return self.mode is Mode.EMBEDDED

    @property
    def runs_worker(self) -> bool:
        if self.worker_in_process is not None:
            return self.worker_in_process
        return self.mode is Mode.EMBEDDED

    @property
    def broker_url(self) -> str:
        """Where the streaming engine's publications cross processes."""
        if self.redis_url and self.redis_cluster:
            sep = "&" if urlsplit(self.redis_url).query else "?"
            return f"{self.redis_url}{sep}cluster=true"
        return self.redis_url or "memory://"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every HUB_* variable; raise ConfigError naming the first bad one."""
        env = os.environ if env is None else env
        r = _Reader(env)
        settings = cls(
            host=r.get("HUB_HOST", str, cls.host),
            port=r.get("HUB_PORT", _port, cls.port),
            grpc_port=r.get("HUB_GRPC_PORT", _port, cls.grpc_port),
            database_url=r.get("HUB_DATABASE_URL", _url("postgres", "postgresql"), None),
            redis_url=r.get("HUB_REDIS_URL", _url("redis", "rediss"), None),
            redis_cluster=r.get("HUB_REDIS_CLUSTER", _bool, cls.redis_cluster),
            amqp_url=r.get("HUB_AMQP_URL", _url("amqp", "amqps"), None),
            jwt_secret=r.get("HUB_JWT_SECRET", str, None),
            access_token_ttl_s=r.get("HUB_ACCESS_TOKEN_TTL", _positive, cls.access_token_ttl_s),
            refresh_token_ttl_s=r.get("HUB_REFRESH_TOKEN_TTL", _positive, cls.refresh_token_ttl_s),
            paper_cash=r.get("HUB_PAPER_CASH", _cash, cls.paper_cash),
            currency=r.get("HUB_CURRENCY", _currency, cls.currency),
            admin_emails=r.get("HUB_ADMIN_EMAILS", _emails, frozenset()),
            login_limit_per_email=r.get("HUB_LOGIN_LIMIT_PER_EMAIL", _positive, 5),
            login_limit_per_client=r.get("HUB_LOGIN_LIMIT_PER_CLIENT", _positive, 60),
            register_limit_per_client=r.get(
                "HUB_REGISTER_LIMIT_PER_CLIENT", _positive, cls.register_limit_per_client
            ),
            register_limit_window_s=r.get(
                "HUB_REGISTER_LIMIT_WINDOW_S", _positive, cls.register_limit_window_s
            ),
            max_body_bytes=r.get("HUB_MAX_BODY_BYTES", _positive, cls.max_body_bytes),
            demo=r.get("HUB_DEMO", _bool, cls.demo),
            feed_quotes_per_second=r.get("HUB_FEED_QPS", _positive, cls.feed_quotes_per_second),
            feed_seed=r.get("HUB_FEED_SEED", int, cls.feed_seed),
            feed_in_process=r.get("HUB_FEED_IN_PROCESS", _bool, None),
            backfill_minute_days=r.get("HUB_BACKFILL_MINUTE_DAYS", _days, cls.backfill_minute_days),
            backfill_daily_days=r.get("HUB_BACKFILL_DAILY_DAYS", _days, cls.backfill_daily_days),
            market_hours=r.get("HUB_MARKET_HOURS", _hours, cls.market_hours),
            worker_in_process=r.get("HUB_WORKER_IN_PROCESS", _bool, None),
            retry_delays=r.get("HUB_RETRY_DELAYS", _delays, cls.retry_delays),
            worker_prefetch=r.get("HUB_WORKER_PREFETCH", _positive, cls.worker_prefetch),
            submit_concurrency=r.get("HUB_SUBMIT_CONCURRENCY", _positive, cls.submit_concurrency),
            order_backlog_limit=r.get(
                "HUB_ORDER_BACKLOG_LIMIT", _positive, cls.order_backlog_limit
            ),
            amqp_prefix=r.get("HUB_AMQP_PREFIX", str, cls.amqp_prefix),
            cache_ttl_s=r.get("HUB_CACHE_TTL", _positive, cls.cache_ttl_s),
            ws_deflate=r.get("HUB_WS_DEFLATE", _bool, cls.ws_deflate),
            log_level=r.get("HUB_LOG_LEVEL", _level, cls.log_level),
            log_json=r.get("HUB_LOG_JSON", _bool, cls.log_json),
        )
        if settings.redis_cluster:
            _check_cluster_url(settings.redis_url)
        if settings.mode is Mode.SERVICES:
            secret = settings.jwt_secret
            if secret is None or len(secret) < MIN_JWT_SECRET_LENGTH or len(set(secret)) < 8:
                raise ConfigError(
                    "HUB_JWT_SECRET is required when a service URL is set: give at least "
                    f"{MIN_JWT_SECRET_LENGTH} random characters (e.g. `openssl rand -hex 32`)"
                )
        return settings


def _check_cluster_url(url: str | None) -> None:
    if url is None:
        raise ConfigError(
            "HUB_REDIS_CLUSTER=true needs HUB_REDIS_URL (any one node of the cluster)"
        )
    db = urlsplit(url).path.strip("/")
    if db not in {"", "0"}:
        raise ConfigError(
            f"HUB_REDIS_URL={url!r} is invalid with HUB_REDIS_CLUSTER=true: a cluster has only "
            "database 0"
        )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except (ValueError, ArithmeticError) as exc:
            raise ConfigError(f"{name}={raw!r} is invalid: {exc}") from exc


def _port(raw: str) -> int:
    port = int(raw)
    if not 0 <= port <= 65535:
        raise ValueError("a port is a whole number from 0 to 65535")
    return port


def _positive(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _days(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 3650:
        raise ValueError("must be a whole number of days from 0 to 3650")
    return value


def _cash(raw: str) -> Decimal:
    value = parse_money(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value.quantize(Decimal("0.01"))


def _currency(raw: str) -> str:
    if len(raw) != 3 or not raw.isalpha():
        raise ValueError("must be a three-letter ISO 4217 code")
    return raw.upper()


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _level(raw: str) -> str:
    if raw.lower() not in {"debug", "info", "warning", "error"}:
        raise ValueError("must be debug, info, warning or error")
    return raw.lower()


def _delays(raw: str) -> tuple[float, ...]:
    delays = tuple(float(part) for part in raw.split(","))
    if not delays or any(d <= 0 for d in delays):
        raise ValueError("must be comma-separated positive seconds, e.g. 300,900,3600,21600")
    return delays


def _hours(raw: str) -> str:
    if raw.lower() not in {"always", "exchange"}:
        raise ValueError(
            "must be always (open around the clock) or exchange (09:30-16:00 New York)"
        )
    return raw.lower()


def _emails(raw: str) -> frozenset[str]:
    return frozenset(e.strip().lower() for e in raw.split(",") if e.strip())


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        scheme = raw.split("://", 1)[0].split("+", 1)[0].lower()
        if "://" not in raw or scheme not in schemes:
            raise ValueError(
                f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
            )
        return raw

    return parse
