"""What routes depend on: the request's principal (bearer token or the board's cookie)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from slatrail.infra.web.auth import Authenticator
from slatrail.infra.web.tokens import Principal

COOKIE = "slatrail_token"
MAX_LOGIN_BYTES = 1024

_bearer = HTTPBearer(auto_error=False, description="a token made by `slatrail tokens add`")


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> Principal:
    """The request's token (401 without a valid one; 429 past its rate limit)."""
    auth: Authenticator = request.app.state.auth
    header = request.headers.get("authorization")
    if header is None and COOKIE in request.cookies:  # the board in a browser (`/login`)
        header = f"Bearer {request.cookies[COOKIE]}"
    found = auth.principal(header)
    request.state.token = found.name
    return found


Who = Annotated[Principal, Depends(principal)]
AsOf = Annotated[str | None, Query(description="RFC 3339 event time (default: now)")]
KnownAt = Annotated[
    str | None, Query(description="RFC 3339: answer with what was recorded by then")
]
