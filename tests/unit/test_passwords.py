from __future__ import annotations

import pytest

from hub.domain.errors import WeakPassword
from hub.domain.passwords import check_password, policy_violations


def test_strong_password_passes() -> None:
    assert policy_violations("Correct-Horse-9") == []


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Sh0rt!", "8 to 60 characters"),
        ("A1!" + "a" * 58, "8 to 60 characters"),
        ("lower-case-only-9", "upper-case"),
        ("UPPER-CASE-ONLY-9", "lower-case"),
        ("No-Digits-Here", "digit"),
        ("NoSpecial123", "special character"),
        ("MyPassword-99", "common pattern 'password'"),
        ("Qwerty-Strong-7", "common pattern 'qwerty'"),
        ("Xy-123456-z", "common pattern '123456'"),
    ],
)
def test_each_rule_is_named(password: str, rule: str) -> None:
    with pytest.raises(WeakPassword) as info:
        check_password(password)
    assert rule in info.value.detail
    assert any(rule in v for v in info.value.extra["violations"])  # type: ignore[attr-defined]


def test_all_failures_reported_at_once() -> None:
    assert len(policy_violations("abc")) == 4  # length, upper, digit, special
