from __future__ import annotations

from decimal import Decimal

import pytest

from hub.config import ConfigError, Mode, Settings

SECRET = "0123456789abcdef0123456789abcdef"


def test_defaults_are_embedded() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.grpc_port, s.mode) == ("127.0.0.1", 8000, 50051, Mode.EMBEDDED)
    assert s.paper_cash == Decimal("100000.00")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HUB_PORT", "eighty"),
        ("HUB_PORT", "70000"),
        ("HUB_PAPER_CASH", "-1"),
        ("HUB_PAPER_CASH", "lots"),
        ("HUB_DATABASE_URL", "mysql://x"),
        ("HUB_REDIS_URL", "localhost:6379"),
        ("HUB_DEMO", "maybe"),
        ("HUB_CURRENCY", "US"),
    ],
)
def test_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value, "HUB_JWT_SECRET": SECRET})


@pytest.mark.parametrize("secret", [None, "short", "a" * 40])
def test_services_mode_needs_a_strong_secret(secret: str | None) -> None:
    env = {"HUB_DATABASE_URL": "postgresql://localhost/hub"}
    if secret:
        env["HUB_JWT_SECRET"] = secret
    with pytest.raises(ConfigError, match="HUB_JWT_SECRET"):
        Settings.from_env(env)


def test_services_mode() -> None:
    s = Settings.from_env({"HUB_REDIS_URL": "redis://localhost:6379/0", "HUB_JWT_SECRET": SECRET})
    assert s.mode is Mode.SERVICES
    assert s.broker_url == "redis://localhost:6379/0"
    assert Settings.from_env({"HUB_PAPER_CASH": "2500.5"}).paper_cash == Decimal("2500.50")


def test_redis_cluster_tells_the_broker_through_its_url() -> None:
    env = {"HUB_REDIS_URL": "redis://node-1:6379/0", "HUB_JWT_SECRET": SECRET}
    s = Settings.from_env({**env, "HUB_REDIS_CLUSTER": "true"})
    assert s.redis_cluster and s.broker_url == "redis://node-1:6379/0?cluster=true"
    prefixed = {**env, "HUB_REDIS_URL": "redis://node-1:6379?prefix=a:", "HUB_REDIS_CLUSTER": "1"}
    assert Settings.from_env(prefixed).broker_url == "redis://node-1:6379?prefix=a:&cluster=true"
    assert not Settings.from_env(env).redis_cluster


@pytest.mark.parametrize(
    "env",
    [
        {"HUB_REDIS_CLUSTER": "true"},  # which cluster?
        {"HUB_REDIS_CLUSTER": "true", "HUB_REDIS_URL": "redis://node-1:6379/3"},  # db 0 only
        {"HUB_REDIS_CLUSTER": "sometimes", "HUB_REDIS_URL": "redis://node-1:6379/0"},
    ],
)
def test_redis_cluster_refuses_what_a_cluster_cannot_do(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="HUB_REDIS_CLUSTER"):
        Settings.from_env({**env, "HUB_JWT_SECRET": SECRET})
