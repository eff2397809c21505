"""The password policy of the original server, applied to new passwords only.

8 to 60 characters; at least one upper-case letter, one lower-case letter, one digit and one
special character; none of the well-known weak patterns. Every failed rule is reported, so the
user can fix them all at once.
"""

from __future__ import annotations

from hub.domain.errors import WeakPassword

MIN_LENGTH = 8
MAX_LENGTH = 60

# Matched case-insensitively as substrings: a strong-looking "Password1!" is still weak.
BANNED_PATTERNS = (
    "password",
    "passw0rd",
    "123456",
    "12345678",
    "qwerty",
    "abc123",
    "letmein",
    "welcome",
    "admin",
    "iloveyou",
    "monkey",
    "dragon",
    "111111",
    "000000",
    "football",
    "baseball",
    "trustno1",
    "sunshine",
    "master",
    "login",
)


def policy_violations(password: str) -> list[str]:
    """Return one sentence per rule the password breaks; empty when it passes."""
    problems: list[str] = []
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        problems.append(f"must be {MIN_LENGTH} to {MAX_LENGTH} characters long")
    if not any(c.isupper() for c in password):
        problems.append("must contain an upper-case letter")
    if not any(c.islower() for c in password):
        problems.append("must contain a lower-case letter")
    if not any(c.isdigit() for c in password):
        problems.append("must contain a digit")
    if all(c.isalnum() for c in password):
        problems.append("must contain a special character (not a letter or digit)")
    lowered = password.lower()
    banned = [p for p in BANNED_PATTERNS if p in lowered]
    if banned:
        problems.append(f"must not contain the common pattern {banned[0]!r}")
    return problems


def check_password(password: str) -> None:
    """Raise WeakPassword listing every failed rule."""
    problems = policy_violations(password)
    if problems:
        raise WeakPassword("password " + "; ".join(problems), violations=problems)
