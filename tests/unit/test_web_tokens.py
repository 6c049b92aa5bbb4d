"""Bearer tokens: stored hashed, checked against every entry, rate-limited per token."""

from __future__ import annotations

from pathlib import Path

import pytest

from slatrail.infra.errors import UsageError
from slatrail.infra.web.auth import Authenticator, RateLimiter
from slatrail.infra.web.problems import Problem
from slatrail.infra.web.tokens import TokenFile, add_token, list_tokens, remove_token


def test_the_file_holds_hashes_never_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    secret = add_token(path, "acme-manager", "viewer", ["acme-rtc", "acme-rtc"])
    text = path.read_text()
    assert secret.startswith("slt_") and secret not in text and secret[4:] not in text
    assert path.stat().st_mode & 0o077 == 0
    assert list_tokens(path) == [
        {"name": "acme-manager", "role": "viewer", "customers": ["acme-rtc"]}
    ]
    found = TokenFile(path).check(secret)
    assert found is not None and found.name == "acme-manager" and found.sees("acme-rtc")
    assert not found.sees("brightcall")
    assert TokenFile(path).check(secret + "x") is None


@pytest.mark.parametrize(
    ("name", "role", "customers"),
    [("a b", "viewer", ["c"]), ("v", "viewer", []), ("a", "auditor", ["c"]), ("r", "root", [])],
)
def test_bad_token_requests_are_usage_errors(
    tmp_path: Path, name: str, role: str, customers: list[str]
) -> None:
    with pytest.raises(UsageError):
        add_token(tmp_path / "t.json", name, role, customers)


def test_a_damaged_file_is_a_usage_error_and_admits_no_one(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    secret = add_token(path, "ops", "admin", [])
    tokens = TokenFile(path)
    path.write_text('{"format": "slatrail.tokens/v1", "tokens": [{"role": "admin", "hash": 1}]}')
    assert tokens.check(secret) is None
    with pytest.raises(UsageError):
        list_tokens(path)


def test_removal_takes_effect_on_the_next_check(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    secret = add_token(path, "ops", "admin", [])
    keep = add_token(path, "keep", "auditor", [])
    tokens = TokenFile(path)
    assert tokens.check(secret) is not None
    assert remove_token(path, "ops") and not remove_token(path, "ops")
    assert tokens.check(secret) is None and tokens.check(keep) is not None


def test_an_expired_token_is_refused_from_its_instant_on(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    path = tmp_path / "t.json"
    expires = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    secret = add_token(path, "temp", "auditor", [], expires)
    assert list_tokens(path)[0]["expires_at"] == "2026-12-02T12:00:00Z"
    now = [expires.timestamp() - 1]
    tokens = TokenFile(path, clock=lambda: now[0])
    assert tokens.check(secret) is not None
    now[0] = expires.timestamp()
    assert tokens.check(secret) is None


def test_the_rate_limit_is_a_bucket_per_token() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=2, clock=lambda: now[0])
    assert [limiter.take("a"), limiter.take("a")] == [None, None]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") is None
    now[0] = 0.5
    assert limiter.take("a") is None


def test_a_malformed_header_is_401(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    add_token(path, "ops", "admin", [])
    auth = Authenticator(TokenFile(path), RateLimiter(1, 1))
    for header in (None, "", "Bearer", "Basic abc", "Bearer " + "x" * 300):
        with pytest.raises(Problem) as refused:
            auth.principal(header)
        assert refused.value.code == "unauthenticated"
