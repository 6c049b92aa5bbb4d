"""Errors as `application/problem+json` (RFC 9457), carrying the CLI's error codes.

Every error answer has `type`, `title`, `status`, `detail` and slatrail's `code`; where the
same problem has a CLI exit code, `exit_code` says it (docs/web.md, "Errors").
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from slatrail.infra.errors import EXIT_FINDING, EXIT_INTERNAL, EXIT_USAGE

MEDIA_TYPE = "application/problem+json"

# code → (HTTP status, title, CLI exit code or None)
CODES: dict[str, tuple[int, str, int | None]] = {
    "usage": (400, "Bad request", EXIT_USAGE),
    "unauthenticated": (401, "Authentication required", None),
    "forbidden": (403, "Not allowed for this token's role", None),
    "not_found": (404, "Not found", EXIT_FINDING),
    "method_not_allowed": (405, "Method not allowed", None),
    "too_large": (413, "Request too large", None),
    "uri_too_long": (414, "Request target too long", None),
    "rate_limited": (429, "Too many requests", None),
    "internal": (500, "Internal error", EXIT_INTERNAL),
    "store_damaged": (500, "The store is damaged", EXIT_FINDING),
    "store_unavailable": (503, "The store cannot be reached", EXIT_USAGE),
    "timeout": (503, "The request took too long", None),
}


class Problem(Exception):
    """An error answer; `detail` is for the client and never holds a secret."""

    def __init__(self, code: str, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def problem_document(code: str, detail: str, instance: str | None = None) -> dict[str, Any]:
    status, title, exit_code = CODES[code]
    document: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if exit_code is not None:
        document["exit_code"] = exit_code
    if instance is not None:
        document["instance"] = instance
    return document


def problem_response(
    code: str, detail: str, *, instance: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    document = problem_document(code, detail, instance)
    return Response(
        json.dumps(document, ensure_ascii=False),
        status_code=document["status"],
        media_type=MEDIA_TYPE,
        headers=headers,
    )
