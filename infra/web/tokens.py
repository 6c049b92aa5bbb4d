"""Bearer tokens of the web API (docs/web.md, "Tokens"): a JSON file of named, hashed tokens.

The file holds, per token, its name, role, customers (for a viewer) and the SHA-256 of the
secret — never the secret itself: `slatrail tokens add` prints the secret once. A token is
32 random bytes, so a plain SHA-256 cannot be searched back to it (no slow password hash is
needed). Checking a presented token hashes it and compares it with every stored hash in
constant time (`hmac.compare_digest`, all of them, no early exit). The file is re-read when
it changes, so a removed token stops working without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slatrail.infra.errors import UsageError

ROLES = ("viewer", "auditor", "admin")
PREFIX = "slt_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
VERSION = "slatrail.tokens/v1"
_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Principal:
    """Who a request is: a token's name, role and (for a viewer) its customers."""

    name: str
    role: str
    customers: frozenset[str]

    @property
    def all_customers(self) -> bool:
        return self.role != "viewer"

    def sees(self, customer: str | None) -> bool:
        return self.all_customers or customer in self.customers


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as error:
        raise UsageError(f"{path}: cannot read the tokens file: {error.strerror}") from None
    try:
        document = json.loads(text)
        entries = document["tokens"]
        if document.get("format") != VERSION or not isinstance(entries, list):
            raise ValueError
        for entry in entries:
            if entry["role"] not in ROLES or not _HASH.fullmatch(str(entry["hash"])):
                raise ValueError
            if entry.get("expires_at") is not None:
                datetime.fromisoformat(str(entry["expires_at"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        raise UsageError(
            f"{path}: not a slatrail tokens file ({VERSION}); create it with `slatrail tokens add`"
        ) from None
    return list(entries)


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    text = json.dumps({"format": VERSION, "tokens": entries}, indent=2) + "\n"
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as error:
        raise UsageError(f"{path}: cannot write the tokens file: {error.strerror}") from None


def add_token(
    path: Path, name: str, role: str, customers: list[str], expires_at: datetime | None = None
) -> str:
    """Store a new token's hash under `name`; returns the secret (shown once, never stored).
    A token with `expires_at` is refused from that instant on."""
    if not _NAME.match(name):
        raise UsageError(f"token name {name!r}: letters, digits, . _ - (at most 64)")
    if role not in ROLES:
        raise UsageError(f"role {role!r}: one of {', '.join(ROLES)}")
    if role == "viewer" and not customers:
        raise UsageError("a viewer token needs at least one --customer")
    if role != "viewer" and customers:
        raise UsageError(f"--customer applies to viewer tokens only (an {role} sees every one)")
    entries = _read(path)
    if any(entry["name"] == name for entry in entries):
        raise UsageError(f"a token named {name!r} exists: remove it first")
    secret = PREFIX + secrets.token_urlsafe(32)
    entry: dict[str, Any] = {"name": name, "role": role, "customers": sorted(set(customers))}
    if expires_at is not None:
        entry["expires_at"] = expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry["hash"] = token_hash(secret)
    entries.append(entry)
    _write(path, entries)
    return secret


def remove_token(path: Path, name: str) -> bool:
    entries = _read(path)
    kept = [entry for entry in entries if entry["name"] != name]
    if len(kept) == len(entries):
        return False
    _write(path, kept)
    return True


def list_tokens(path: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in entry.items() if k != "hash"} for entry in _read(path)]


class TokenFile:
    """The tokens file as the web server checks it: re-read when its mtime or size changes."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._entries: list[tuple[bytes, Principal, float | None]] = []
        self.load()

    def load(self) -> None:
        try:
            stat = self.path.stat()
            seen: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            seen = None
        with self._lock:
            if seen == self._seen and self._seen is not None:
                return
            self._entries = [
                (
                    bytes.fromhex(entry["hash"]),
                    Principal(entry["name"], entry["role"], frozenset(entry.get("customers", ()))),
                    _expiry(entry.get("expires_at")),
                )
                for entry in _read(self.path)
            ]
            self._seen = seen

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, secret: str) -> Principal | None:
        """The principal of `secret`, comparing with every stored hash in constant time."""
        try:
            self.load()
        except UsageError:
            return None  # a broken file admits no one (and the next request tries again)
        digest = bytes.fromhex(token_hash(secret))
        found: Principal | None = None
        expiry: float | None = None
        for stored, principal, expires in self._entries:
            if hmac.compare_digest(stored, digest):
                found, expiry = principal, expires
        if expiry is not None and self.clock() >= expiry:
            return None  # expired: 401 like an unknown token
        return found


def _expiry(text: object) -> float | None:
    if text is None:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
