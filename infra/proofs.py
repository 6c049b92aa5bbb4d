"""Checkpoints, proofs and the check of the whole log against a checkpoint (docs/audit.md §9)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import structlog

from slatrail.domain.merkle import EMPTY_ROOT, leaf_hash, node_hash
from slatrail.domain.model import event_to_dict, format_instant, incident_uuid
from slatrail.infra.bootstrap import Container
from slatrail.infra.errors import UsageError
from slatrail.infra.merkle_log import MerkleLog, StoredLeaf, decoded_event, stored_record_leaf
from slatrail.infra.signing import (
    Checkpoint,
    CheckpointError,
    KeyError_,
    Verifier,
    make_checkpoint,
    open_checkpoint,
    parse_verifier_key,
    read_note,
    read_signer,
)
from slatrail.infra.verify import stored_notifications
from slatrail.projections.verification import Difference, DifferenceKind

log = structlog.get_logger("slatrail.proofs")
LISTED = 20  # differences listed per kind; the rest are counted


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def new_checkpoint(container: Container) -> Checkpoint:
    """Bring the tree up to the store, sign its root, store and return the checkpoint."""
    signer = read_signer(container.settings.signing_key)
    if signer.name != container.settings.checkpoint_origin:
        raise KeyError_(
            f"the signing key is for {signer.name!r}, the settings name the origin "
            f"{container.settings.checkpoint_origin!r} (SLATRAIL_CHECKPOINT_ORIGIN)"
        )
    known_at = container.clock() - timedelta(seconds=container.settings.checkpoint_settle_s)
    tree = MerkleLog(container.app)
    size = tree.sync()
    checkpoint = make_checkpoint(signer, size, tree.root(size), known_at)
    tree.store_checkpoint(size, checkpoint.note)
    log.info("checkpoint_made", origin=checkpoint.origin, tree_size=size)
    return checkpoint


def verifier_of(container: Container, key: str | None = None) -> Verifier:
    """The verifier key: given (text or a file holding it), else the settings', else the one
    beside the signing key (`<key>.pub`)."""
    text = key or container.settings.verifier_key
    if text is not None:
        path = Path(text)
        if "+" not in text or path.is_file():
            try:
                text = path.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as error:
                raise KeyError_(f"cannot read the verifier key {text}: {error}") from None
        return parse_verifier_key(text)
    public = container.settings.signing_key.with_name(container.settings.signing_key.name + ".pub")
    if public.is_file():
        return parse_verifier_key(public.read_text(encoding="ascii"))
    raise KeyError_(
        "no verifier key: give --key, set SLATRAIL_VERIFIER_KEY, or run `slatrail keys init`"
    )


def checkpoint_from(container: Container, path: Path | None, key: str | None = None) -> Checkpoint:
    """The checkpoint in `path` (else the latest stored one), its signature checked."""
    if path is not None:
        note = read_note(path)
        where = str(path)
    else:
        stored = MerkleLog(container.app).latest_checkpoint()
        if stored is None:
            raise UsageError("no checkpoint stored yet: run `slatrail checkpoint` first")
        note, where = stored, "the latest stored checkpoint"
    try:
        return open_checkpoint(note, verifier_of(container, key))
    except CheckpointError as error:
        raise CheckpointRefused(f"{where}: {error}") from None


class CheckpointRefused(UsageError):
    exit_code = 1


def inclusion(tree: MerkleLog, leaf: StoredLeaf, size: int) -> dict[str, Any]:
    return {
        "leaf_index": leaf.leaf_index,
        "leaf_hash": b64(leaf.leaf_hash),
        "path": [b64(h) for h in tree.inclusion_proof(leaf.leaf_index, size)],
    }


def incident_proofs(
    container: Container, incident_id: str, checkpoint: Checkpoint, position: int | None = None
) -> list[dict[str, Any]]:
    """Inclusion proofs of an incident's events (those inside the checkpoint)."""
    tree = MerkleLog(container.app)
    leaves = [
        leaf
        for leaf in tree.leaves_of(incident_uuid(incident_id))
        if leaf.leaf_index < checkpoint.size and (position is None or leaf.version == position)
    ]
    if not leaves:
        at = f" position {position}" if position is not None else ""
        raise UsageError(
            f"incident {incident_id!r}{at} has no event in the checkpoint of size "
            f"{checkpoint.size} (unknown, or recorded after it: make a new checkpoint)"
        )
    events = {event.position: event for event in container.app.incident_events(incident_id)}
    out = []
    for leaf in leaves:
        proof = inclusion(tree, leaf, checkpoint.size)
        event = events.get(leaf.version)
        out.append(
            {
                "incident_id": incident_id,
                "position": leaf.version,
                "event": event_to_dict(event) if event is not None else None,
                **proof,
            }
        )
    return out


def export_checkpoint(container: Container) -> Checkpoint | None:
    """The checkpoint an export carries: a new one when this host holds the signing key, else
    the latest stored one (events after it carry no proof), else none."""
    if container.settings.signing_key.is_file():
        return new_checkpoint(container)
    note = MerkleLog(container.app).latest_checkpoint()
    if note is None:
        return None
    try:
        return open_checkpoint(note, verifier_of(container))
    except (CheckpointError, KeyError_):
        return None


def with_inclusion(
    container: Container, records: Iterable[dict[str, Any]], checkpoint: Checkpoint | None
) -> Iterator[dict[str, Any]]:
    """Export records, each event with its inclusion proof against `checkpoint` (when in it)."""
    tree = MerkleLog(container.app)
    for record in records:
        if checkpoint is not None and record.get("record") == "event":
            leaf = tree.leaf_of(incident_uuid(record["incident_id"]), record["position"])
            if leaf is not None and leaf.leaf_index < checkpoint.size:
                proof = inclusion(tree, leaf, checkpoint.size)
                record = {**record, "inclusion": {k: proof[k] for k in ("leaf_index", "path")}}
        yield record


def proof_document(checkpoint: Checkpoint, proofs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"format": "slatrail.proof/v1", "checkpoint": checkpoint.as_json(), "proofs": proofs}


def consistency_document(container: Container, old: Checkpoint, new: Checkpoint) -> dict[str, Any]:
    if old.size > new.size:
        raise UsageError(f"the old checkpoint ({old.size}) is larger than the new ({new.size})")
    tree = MerkleLog(container.app)
    return {
        "format": "slatrail.consistency/v1",
        "old": old.as_json(),
        "new": new.as_json(),
        "proof": [b64(h) for h in tree.consistency_proof(old.size, new.size)],
    }


@dataclass
class LogCheck:
    """What `check_log` found: the store's records against the tree and a checkpoint."""

    records: int = 0
    differences: list[Difference] = field(default_factory=list)
    counted: dict[DifferenceKind, int] = field(default_factory=dict)

    def add(self, difference: Difference) -> None:
        n = self.counted.get(difference.kind, 0)
        self.counted[difference.kind] = n + 1
        if n < LISTED:
            self.differences.append(difference)

    def notes(self) -> list[str]:
        return [
            f"{n - LISTED} more {kind} difference(s) not listed"
            for kind, n in self.counted.items()
            if n > LISTED
        ]


def check_log(container: Container, checkpoint: Checkpoint) -> LogCheck:
    """Recompute every leaf from the store, in notification-log order, and check: the root at
    the checkpoint's size is its root; the stored tree holds the same leaves; no event after the
    checkpoint was recorded (by its own `recorded_at`) before the checkpoint's known-at."""
    app = container.app
    tree = MerkleLog(app)
    result = LogCheck()
    stack: list[tuple[int, bytes]] = []
    root_at_size = EMPTY_ROOT if checkpoint.size == 0 else None
    stored = _peekable(tree.iter_leaves())
    index = 0
    for notification in stored_notifications(app):
        event = decoded_event(app, notification)
        digest = leaf_hash(stored_record_leaf(app, notification, event))

        def where(n: Any = notification, e: Any = event) -> dict[str, Any]:
            return _where(n.originator_id, n.originator_version, e)

        _compare_stored(result, stored, notification.id, digest, where)
        stack.append((0, digest))
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            level, right = stack.pop()
            _, left = stack.pop()
            stack.append((level + 1, node_hash(left, right)))
        index += 1
        if index == checkpoint.size:
            root_at_size = _fold(stack)
        if (
            index > checkpoint.size
            and event is not None
            and checkpoint.known_at is not None
            and event.recorded_at <= checkpoint.known_at
        ):
            result.add(
                Difference(
                    DifferenceKind.BACKDATED_APPEND,
                    f"stored after the checkpoint of size {checkpoint.size}, yet recorded_at "
                    f"{format_instant(event.recorded_at)} is before its known-at: back-dated",
                    **where(),
                )
            )
    for leaf in stored.rest():
        result.add(
            Difference(
                DifferenceKind.LEAF_MISMATCH,
                f"the log's leaf {leaf.leaf_index} (notification {leaf.notification_id}) has "
                "no record in the store: deleted",
                notification_id=leaf.notification_id,
                aggregate_id=UUID(leaf.aggregate_id),
                position=leaf.version,
            )
        )
    result.records = index
    if index < checkpoint.size:
        result.add(
            Difference(
                DifferenceKind.LOG_TRUNCATED,
                f"the store holds {index} records, the checkpoint of {checkpoint.origin} "
                f"commits to {checkpoint.size}: records were removed",
            )
        )
    elif root_at_size != checkpoint.root:
        result.add(
            Difference(
                DifferenceKind.CHECKPOINT_MISMATCH,
                f"the first {checkpoint.size} records no longer hash to the checkpoint's root "
                f"{b64(checkpoint.root)}: history before the checkpoint was changed",
            )
        )
    return result


def _where(aggregate_id: Any, version: int, event: Any) -> dict[str, Any]:
    if event is not None:
        return {"incident_id": event.incident_id, "position": event.position}
    return {"aggregate_id": UUID(str(aggregate_id)), "position": version}


def _compare_stored(
    result: LogCheck,
    stored: _Peekable,
    notification_id: int,
    digest: bytes,
    where: Callable[[], dict[str, Any]],
) -> None:
    """Merge-walk by notification id: the stored tree's leaf for this record, if any."""
    while (leaf := stored.peek()) is not None and leaf.notification_id < notification_id:
        stored.next()
        result.add(
            Difference(
                DifferenceKind.LEAF_MISMATCH,
                f"the log's leaf {leaf.leaf_index} (notification {leaf.notification_id}) has no "
                "record in the store: deleted",
                notification_id=leaf.notification_id,
                aggregate_id=UUID(leaf.aggregate_id),
                position=leaf.version,
            )
        )
    leaf = stored.peek()
    if leaf is None:
        return  # not in the tree yet (the next checkpoint adds it)
    if leaf.notification_id > notification_id:
        result.add(
            Difference(
                DifferenceKind.LEAF_MISMATCH,
                f"record {notification_id} is not in the log, though later ones are: inserted",
                notification_id=notification_id,
                **where(),
            )
        )
        return
    stored.next()
    if leaf.leaf_hash != digest:
        result.add(
            Difference(
                DifferenceKind.LEAF_MISMATCH,
                f"record {notification_id} no longer hashes to the log's leaf "
                f"{leaf.leaf_index}: altered after it was logged",
                notification_id=notification_id,
                **where(),
            )
        )


def _fold(stack: list[tuple[int, bytes]]) -> bytes:
    result = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        result = node_hash(left, result)
    return result


class _Peekable:
    def __init__(self, items: Iterator[StoredLeaf]) -> None:
        self._items = items
        self._head: StoredLeaf | None = next(items, None)

    def peek(self) -> StoredLeaf | None:
        return self._head

    def next(self) -> None:
        self._head = next(self._items, None)

    def rest(self) -> Iterator[StoredLeaf]:
        while self._head is not None:
            yield self._head
            self.next()


def _peekable(items: Iterator[StoredLeaf]) -> _Peekable:
    return _Peekable(items)
