"""Keeping passwords out of everything slatrail prints or logs.

`redact_url` is the one function that turns a store / read-model URL into printable text. It does
not trust `urllib.parse`: a password holding `/`, `#`, `?` or `@` (not percent-encoded) makes the
parser see a different host, port or path — and print pieces of the password in its errors. The
rule here needs no parsing: everything between the `:` after the user and the LAST `@` of the
authority is the password, and `password=` / `sslpassword=` query parameters are passwords too.

`Scrubber` removes known secrets (and the pieces a URL parser may cut them into) from any text:
the CLI's last-resort handler passes every message and traceback through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

MASK = "***"

_QUERY_SECRET = re.compile(
    r"(?i)(?<![A-Za-z0-9_])((?:ssl)?password|passwd|pwd|secret|token)=([^&#\s]*)"
)
_DELIMITERS = re.compile(r"[/#?@:&=%\s]+")
_MIN_PIECE = 3


def _split(url: str) -> tuple[str, str, str, str] | None:
    """(head, user, password, tail) when `url` has `user:password@`; head ends before the user."""
    marker = url.find("://")
    head_end = marker + 3 if marker >= 0 else 0
    rest = url[head_end:]
    if rest.startswith("/"):  # sqlite:///path: no authority, nothing to hide
        return None
    at = rest.rfind("@")
    if at < 0:
        return None
    userinfo = rest[:at]
    colon = userinfo.find(":")
    if colon < 0:
        return None
    return url[:head_end], userinfo[:colon], userinfo[colon + 1 :], rest[at:]


def redact_url(url: str) -> str:
    """`url` with its password (if any) replaced by `***`, whatever the URL's shape."""
    parts = _split(url)
    if parts is None:
        return _hide_query(url)
    head, user, _, tail = parts
    return f"{head}{user}:{MASK}{_hide_query(tail)}"


def _hide_query(text: str) -> str:
    return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={MASK}", text)


def url_secrets(url: str) -> set[str]:
    """The password(s) in `url`, raw and decoded, and the pieces a parser could cut them into."""
    found: set[str] = set()
    parts = _split(url)
    if parts is not None and parts[2]:
        found.add(parts[2])
    tail = url if parts is None else parts[3]
    found.update(m.group(2) for m in _QUERY_SECRET.finditer(tail) if m.group(2))
    return expand(found)


def expand(secrets: Iterable[str]) -> set[str]:
    """Each secret, decoded, and its pieces between URL delimiters (at least 3 characters)."""
    out: set[str] = set()
    for secret in secrets:
        for form in {secret, unquote(secret)}:
            if not form:
                continue
            out.add(form)
            out.update(p for p in _DELIMITERS.split(form) if len(p) >= _MIN_PIECE)
    return out


class Scrubber:
    """Replaces every known secret in a text by `***` (longest first)."""

    def __init__(self, urls: Iterable[str] = (), secrets: Iterable[str] = ()) -> None:
        self.urls = [u for u in urls if u]
        found = expand(s for s in secrets if s)
        for url in self.urls:
            found |= url_secrets(url)
        self.secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for url in self.urls:
            text = text.replace(url, redact_url(url))
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text
