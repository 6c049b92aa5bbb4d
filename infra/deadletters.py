"""Dead-letter files (`*.rejected.jsonl`): appending without repeats, and reading entries back.

An entry's *identity* is what makes it the same dead letter: the input line it came from and
its original (as the entry holds it: `raw_base64` bytes, `raw` text or the `message` object;
for a truncated entry the digest of the original). Appending an entry whose identity the
file already holds does nothing, so re-running `slatrail ingest` on a file (after an
interruption, or just again) leaves each dead letter once. The file is only ever appended to:
an interrupted run can lose at most entries still in its buffer, and the re-run — which sees
the same lines again — writes them then (docs/redrive.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from slatrail.domain.model import canonical_json
from slatrail.infra.pathargs import cannot_write

DEAD_LETTER_FORMAT = "slatrail.dead-letter/v1"


def encode_dead_letter(record: Mapping[str, Any]) -> str:
    """One dead letter as strict JSON text on one line: no NaN, no lone surrogate, and the
    characters some line readers split on (U+0085, U+2028, U+2029) escaped; no newline."""
    try:
        text = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        text.encode("utf-8")
    except (ValueError, UnicodeEncodeError):  # defence in depth: never lose the dead letter
        text = json.dumps(record, ensure_ascii=True, allow_nan=False, separators=(",", ":"),
                          default=str)  # fmt: skip
    return text.translate(_LINE_BREAKS)


# Not JSON whitespace, so they only occur inside strings, where their escapes mean the same.
_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def entry_identity(entry: Mapping[str, Any]) -> bytes:
    """16 bytes naming a dead letter: its input line and original — not its code, reason or
    time: a line refused again on a re-run is the same dead letter, even when the re-run
    refuses it for another reason (a second `acknowledged` is `transition_not_allowed` in
    order, `out_of_order` once the rest of the file is recorded); the first entry stays."""
    digest = hashlib.sha256()
    place = [entry.get("line"), entry.get("redrive_of")]
    digest.update(json.dumps(place, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    kind, body = _original_form(entry)
    digest.update(kind.encode("ascii") + b"\0" + body)
    return digest.digest()[:16]


def _original_form(entry: Mapping[str, Any]) -> tuple[str, bytes]:
    if entry.get("truncated"):
        return "sha256", str(entry.get("raw_sha256")).encode("utf-8", "surrogatepass")
    encoded = entry.get("raw_base64")
    if isinstance(encoded, str):
        return "bytes", encoded.encode("ascii", "replace")
    raw = entry.get("raw")
    if isinstance(raw, str):
        return "text", raw.encode("utf-8", "surrogatepass")
    message = entry.get("message")
    if isinstance(message, dict):
        try:
            return "object", canonical_json(message)
        except ValueError:  # NaN and the like: still a stable text
            return "object", json.dumps(message, sort_keys=True).encode("utf-8", "surrogatepass")
    return "none", b""


class DeadLetterFile:
    """Appends dead-letter entries to a JSON Lines file, skipping those it already holds.

    Nothing is read or created until the first entry comes: a run without rejections leaves
    no file. A torn last line (a run killed mid-write) is kept and ended with a newline."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0
        self.already = 0
        self._known: set[bytes] | None = None
        self._handle: IO[str] | None = None

    @property
    def opened(self) -> bool:
        return self._handle is not None

    def add(self, entry: Mapping[str, Any]) -> bool:
        """Append `entry` unless the file holds it already; True when written."""
        if self._handle is None:
            self._open()
        assert self._known is not None and self._handle is not None
        identity = entry_identity(entry)
        if identity in self._known:
            self.already += 1
            return False
        self._known.add(identity)
        self._handle.write(encode_dead_letter(entry) + "\n")
        self.written += 1
        return True

    def _open(self) -> None:
        known: set[bytes] = set()
        torn = False
        try:
            with self.path.open("rb") as existing:
                for raw in existing:
                    torn = not raw.endswith(b"\n")
                    entry = _parse(raw)
                    if entry is not None:
                        known.add(entry_identity(entry))
        except FileNotFoundError:
            pass
        try:
            handle = self.path.open("a", encoding="utf-8")
        except OSError as error:
            raise cannot_write(self.path, error) from None
        if torn:
            handle.write("\n")
        self._known, self._handle = known, handle

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return entry if isinstance(entry, dict) else None


# -- reading dead letters back (slatrail redrive) ---------------------------------------------


class NotRedrivable(Exception):
    """A dead letter whose original cannot be rebuilt from it (truncated, unreadable)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead letter read back: where it is (`ref`) and its parsed entry (None: unreadable)."""

    ref: str
    entry: dict[str, Any] | None
    problem: str | None = None


def original_bytes(entry: Mapping[str, Any]) -> bytes:
    """The original message of a dead letter, as it was received (or raises NotRedrivable).

    `raw_base64` is the original bytes; `raw` the original text; `message` the original JSON
    object, written back as JSON (same content, so the same fingerprint). A letter without
    `dead_letter` is from before v1 (same fields; its `raw` of a non-UTF-8 line was a lossy
    U+FFFD copy); another format version is refused."""
    version = entry.get("dead_letter", DEAD_LETTER_FORMAT)
    if version != DEAD_LETTER_FORMAT:
        raise NotRedrivable(
            f"unknown dead-letter format {version!r} (expected {DEAD_LETTER_FORMAT})"
        )
    if entry.get("truncated"):
        raise NotRedrivable(
            f"truncated dead letter: the original is only in the inbound topic at {_origin(entry)}"
        )
    encoded = entry.get("raw_base64")
    if isinstance(encoded, str):
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise NotRedrivable(f"raw_base64 is not base64: {error}") from error
    raw = entry.get("raw")
    if isinstance(raw, str):
        try:
            return raw.encode("utf-8")
        except UnicodeEncodeError as error:
            raise NotRedrivable(f"raw is not encodable text: {error}") from error
    message = entry.get("message")
    if isinstance(message, dict):
        if entry.get("code") == "duplicate_field" and "raw_base64" not in entry:
            # Parsed back into an object, a repeated field kept only its last value.
            raise NotRedrivable("duplicate_field dead letter without its original bytes")
        # ASCII with \u escapes: exact even for a lone surrogate the original escaped.
        return json.dumps(message, separators=(",", ":")).encode("ascii")
    raise NotRedrivable("the dead letter holds no original (message, raw or raw_base64)")


def _origin(entry: Mapping[str, Any]) -> str:
    return f"{entry.get('topic')}/{entry.get('partition')}/{entry.get('offset')}"


def read_file(path: Path) -> Iterator[DeadLetter]:
    """Every line of a dead-letter file (blank lines skipped), referenced `file:<name>:<line>`."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            ref = f"file:{path.name}:{number}"
            entry = _parse(raw)
            if entry is None:
                yield DeadLetter(ref, None, "not a dead-letter entry (not a JSON object)")
            else:
                yield DeadLetter(ref, entry)


def from_record(topic: str, partition: int, offset: int, value: bytes | None) -> DeadLetter:
    """A dead letter read from the rejected topic, referenced `<topic>/<partition>/<offset>`."""
    ref = f"{topic}/{partition}/{offset}"
    entry = _parse(value or b"")
    if entry is None:
        return DeadLetter(ref, None, "not a dead-letter entry (not a JSON object)")
    return DeadLetter(ref, entry)
