"""What verifying recorded history finds: each difference, of a stable kind, where it is."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

Aggregate = UUID | int
"""An aggregate as the checks are told of it: its id, or the id's integer (`UUID.int`, what
`verify` reads straight from a store: no UUID object built per record)."""


def aggregate_key(aggregate_id: Aggregate) -> int:
    """The integer an aggregate is kept under."""
    return aggregate_id.int if isinstance(aggregate_id, UUID) else aggregate_id


class DifferenceKind(StrEnum):
    """What a difference is about; stable codes for scripts."""

    UNDECODABLE = "undecodable"
    HASH_MISMATCH = "hash_mismatch"
    BROKEN_LINK = "broken_link"
    MISSING_POSITION = "missing_position"
    OUT_OF_ORDER = "out_of_order"
    WRONG_AGGREGATE = "wrong_aggregate"
    FIRST_NOT_REPORTED = "first_event_not_reported"
    UNKNOWN_TOPIC = "unknown_topic"
    RECEIPT_MISSING = "receipt_missing"
    RECEIPT_ORPHAN = "receipt_orphan"
    RECEIPT_MISMATCH = "receipt_mismatch"
    ANCHOR_MISMATCH = "anchor_mismatch"
    ANCHOR_MISSING = "anchor_missing"
    READ_MODEL_DRIFT = "read_model_drift"
    # the Merkle log against a signed checkpoint (docs/audit.md §9)
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    LOG_TRUNCATED = "log_truncated"
    LEAF_MISMATCH = "leaf_mismatch"
    BACKDATED_APPEND = "backdated_append"
    INDEX_DRIFT = "index_drift"


@dataclass(frozen=True, slots=True)
class Difference:
    """One thing in the store that is not what the history says it must be."""

    kind: DifferenceKind
    detail: str
    incident_id: str | None = None
    position: int | None = None
    notification_id: int | None = None
    aggregate_id: UUID | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "incident_id": self.incident_id,
            "position": self.position,
            "notification_id": self.notification_id,
            "aggregate_id": str(self.aggregate_id) if self.aggregate_id else None,
            "detail": self.detail,
        }

    def line(self) -> str:
        where = self.incident_id or (str(self.aggregate_id) if self.aggregate_id else "store")
        if self.position is not None:
            where += f" #{self.position}"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Anchor:
    """A chain head published earlier (e.g. by `slatrail export`): position and its hash."""

    position: int
    hash: str
