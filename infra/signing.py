"""Signed checkpoints of the Merkle log: the C2SP `tlog-checkpoint` body in a C2SP `signed-note`,
signed with Ed25519 (docs/audit.md §9).

A checkpoint's text is `<origin>\\n<tree size>\\n<base64 root>\\nknown-at <instant>\\n`; the note
appends a blank line and one signature line `— <key name> <base64(key id ‖ signature)>`, where
the key id is the first 4 bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key). Keys use the
note formats: verifier `<name>+<key id hex>+<base64(0x01 ‖ public key)>`, signer
`PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 ‖ seed)>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from slatrail.domain.model import format_instant, parse_instant
from slatrail.infra.errors import UsageError

ED25519 = b"\x01"
DASH = "\u2014"
_NAME = re.compile(r"^[^\s+]+$")
MAX_NOTE_BYTES = 64 * 1024


class KeyError_(UsageError):
    """A signing or verifier key slatrail cannot use (exit 2; never shows the key)."""


class CheckpointError(ValueError):
    """A checkpoint that does not parse, or whose signature does not verify."""


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class Signer:
    name: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> bytes:
        return _raw_public(self.private.public_key())

    def verifier_key(self) -> str:
        pub = self.public
        return f"{self.name}+{key_id(self.name, pub).hex()}+{_b64(ED25519 + pub)}"

    def signer_key(self) -> str:
        seed = self.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        pub = self.public
        return f"PRIVATE+KEY+{self.name}+{key_id(self.name, pub).hex()}+{_b64(ED25519 + seed)}"

    def sign(self, text: str) -> str:
        """The signed note of `text` (which ends in a newline)."""
        signature = self.private.sign(text.encode())
        return f"{text}\n{DASH} {self.name} {_b64(key_id(self.name, self.public) + signature)}\n"


@dataclass(frozen=True)
class Verifier:
    name: str
    public: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.public)

    def verifier_key(self) -> str:
        return f"{self.name}+{self.id.hex()}+{_b64(ED25519 + self.public)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict base64: a text whose unused bits are not zero (another text for the same bytes)
    is refused, so a signed note has one spelling only."""
    data = base64.b64decode(text.encode("ascii"), validate=True)
    if _b64(data) != text:
        raise ValueError("not canonical base64")
    return data


def check_name(name: str) -> str:
    if not _NAME.match(name) or len(name) > 200:
        raise KeyError_(
            f"key name / checkpoint origin {name!r} must be non-empty, without spaces or '+'"
        )
    return name


def new_signer(name: str) -> Signer:
    return Signer(check_name(name), Ed25519PrivateKey.generate())


def parse_verifier_key(text: str) -> Verifier:
    parts = text.strip().split("+", 2)
    try:
        name, hexid, blob = parts
        raw = _unb64(blob)
        if raw[:1] != ED25519 or len(raw) != 33:
            raise ValueError
        verifier = Verifier(check_name(name), raw[1:])
        if verifier.id.hex() != hexid.lower():
            raise ValueError
    except (ValueError, binascii.Error):
        raise KeyError_(
            "not a verifier key: expected <name>+<8 hex digits>+<base64 Ed25519 key>, as "
            "printed by `slatrail keys init`"
        ) from None
    return verifier


def parse_signer_key(text: str, where: str) -> Signer:
    parts = text.strip().split("+", 4)
    try:
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise ValueError
        name, hexid, blob = parts[2:]
        raw = _unb64(blob)
        if raw[:1] != ED25519 or len(raw) != 33:
            raise ValueError
        signer = Signer(check_name(name), Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if key_id(name, signer.public).hex() != hexid.lower():
            raise ValueError
    except (ValueError, binascii.Error):
        raise KeyError_(
            f"{where} is not a slatrail signing key (see `slatrail keys init`)"
        ) from None
    return signer


def write_signer(signer: Signer, path: Path) -> Path:
    """Write the private key (mode 0600, never over an existing file) and `<path>.pub`."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyError_(f"{path} exists already: slatrail never overwrites a signing key") from None
    except OSError as error:
        raise KeyError_(f"cannot write {path}: {error.strerror or error}") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(signer.signer_key() + "\n")
    os.chmod(path, 0o600)
    public = path.with_name(path.name + ".pub")
    public.write_text(signer.verifier_key() + "\n", encoding="ascii")
    return public


def read_signer(path: Path) -> Signer:
    try:
        mode = path.stat().st_mode & 0o777
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyError_(
            f"no signing key at {path} (SLATRAIL_SIGNING_KEY): create one with `slatrail keys init`"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise KeyError_(f"cannot read the signing key {path}: {error}") from None
    if mode & 0o077:
        raise KeyError_(
            f"the signing key {path} is readable by others (mode {mode:o}): chmod 600 {path}"
        )
    return parse_signer_key(text, str(path))


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    known_at: datetime | None
    note: str  # the whole signed note

    def body(self) -> str:
        return checkpoint_body(self.origin, self.size, self.root, self.known_at)

    def as_json(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "tree_size": self.size,
            "root": _b64(self.root),
            "known_at": format_instant(self.known_at) if self.known_at else None,
            "note": self.note,
        }


def checkpoint_body(origin: str, size: int, root: bytes, known_at: datetime | None) -> str:
    text = f"{origin}\n{size}\n{_b64(root)}\n"
    if known_at is not None:
        text += f"known-at {format_instant(known_at)}\n"
    return text


def make_checkpoint(signer: Signer, size: int, root: bytes, known_at: datetime) -> Checkpoint:
    note = signer.sign(checkpoint_body(signer.name, size, root, known_at))
    return Checkpoint(signer.name, size, root, known_at, note)


def open_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """Parse a signed checkpoint and check its signature by `verifier`; CheckpointError if not."""
    if len(note.encode()) > MAX_NOTE_BYTES:
        raise CheckpointError("not a checkpoint: over 64 KiB")
    text, sep, signatures = note.partition("\n\n")
    if not sep or not text:
        raise CheckpointError("not a signed note: no blank line before the signatures")
    text += "\n"
    lines = text.splitlines()
    if len(lines) < 3:
        raise CheckpointError("not a checkpoint: it needs an origin, a size and a root hash")
    origin, size_text, root_text, *extensions = lines
    if not size_text.isdigit() or (size_text.startswith("0") and size_text != "0"):
        raise CheckpointError(f"not a checkpoint: tree size {size_text!r}")
    try:
        root = _unb64(root_text)
    except (ValueError, binascii.Error):
        raise CheckpointError("not a checkpoint: the root hash is not base64") from None
    if len(root) != 32:
        raise CheckpointError("not a checkpoint: the root hash is not 32 bytes")
    known_at = None
    for line in extensions:
        if line.startswith("known-at "):
            try:
                known_at = parse_instant(line[len("known-at ") :])
            except ValueError:
                raise CheckpointError(f"not a checkpoint: bad line {line!r}") from None
    if not _signed_by(text, signatures, verifier):
        raise CheckpointError(
            f"the checkpoint is not signed by the key {verifier.name}+{verifier.id.hex()}"
        )
    if origin != verifier.name:
        raise CheckpointError(f"the checkpoint's origin {origin!r} is not {verifier.name!r}")
    return Checkpoint(origin, int(size_text), root, known_at, note)


def _signed_by(text: str, signatures: str, verifier: Verifier) -> bool:
    key = Ed25519PublicKey.from_public_bytes(verifier.public)
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH or parts[1] != verifier.name:
            continue
        try:
            blob = _unb64(parts[2])
        except (ValueError, binascii.Error):
            continue
        if blob[:4] != verifier.id or len(blob) != 68:
            continue
        try:
            key.verify(blob[4:], text.encode())
        except InvalidSignature:
            continue
        return True
    return False


def read_note(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_NOTE_BYTES + 1)
    except OSError as error:
        raise UsageError(f"cannot read the checkpoint {path}: {error.strerror or error}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a checkpoint (not UTF-8 text)") from None
