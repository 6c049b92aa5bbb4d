"""Who may ask what (docs/web.md, "Access control"): bearer tokens, roles, a rate limit.

401 when no valid token is presented (none, malformed, unknown, removed); 403 when the token is
valid but its role may not use the endpoint; a viewer asking about another customer gets 404,
exactly as for an incident that does not exist. Tokens are never logged: a request is logged
with the token's name only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from slatrail.infra.web.problems import Problem
from slatrail.infra.web.tokens import Principal, TokenFile

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="slatrail"'}
_INVALID = {"WWW-Authenticate": 'Bearer realm="slatrail", error="invalid_token"'}
MAX_TOKEN_CHARS = 200


class RateLimiter:
    """A token bucket per token name: `rate` requests a second, bursts of `burst`."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """None if allowed, else the seconds to wait before the next request is allowed."""
        now = self.clock()
        with self._lock:
            level, then = self._buckets.get(key, (float(self.burst), now))
            level = min(float(self.burst), level + (now - then) * self.rate)
            if level < 1.0:
                self._buckets[key] = (level, now)
                return (1.0 - level) / self.rate
            self._buckets[key] = (level - 1.0, now)
            return None


class Authenticator:
    def __init__(self, tokens: TokenFile, limiter: RateLimiter) -> None:
        self.tokens = tokens
        self.limiter = limiter

    def principal(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Problem("unauthenticated", "this endpoint needs a bearer token",
                          headers=_CHALLENGE)  # fmt: skip
        scheme, _, secret = authorization.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret or len(secret) > MAX_TOKEN_CHARS:
            raise Problem("unauthenticated", "expected `Authorization: Bearer <token>`",
                          headers=_INVALID)  # fmt: skip
        principal = self.tokens.check(secret)
        if principal is None:
            raise Problem("unauthenticated", "unknown or removed token", headers=_INVALID)
        wait = self.limiter.take(principal.name)
        if wait is not None:
            raise Problem(
                "rate_limited",
                f"rate limit of token {principal.name!r} reached; retry in {wait:.1f} s",
                headers={"Retry-After": str(max(1, round(wait + 0.5)))},
            )
        return principal


def require_role(principal: Principal, *roles: str) -> None:
    if principal.role not in roles:
        raise Problem(
            "forbidden", f"a {principal.role} token may not use this endpoint "
            f"(needs: {' or '.join(roles)})"
        )  # fmt: skip
