"""Message receipts against the events they name (docs/audit.md): each recorded message has one
receipt, stored as aggregate `receipt_uuid(message_id)` version 1, naming its incident and
position."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from uuid import UUID

from slatrail.domain.model import incident_key, receipt_key, receipt_uuid
from slatrail.projections.verification.differences import (
    Aggregate,
    Difference,
    DifferenceKind,
    aggregate_key,
)


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    """What a stored message receipt says: this message_id is that incident's position."""

    message_id: str
    incident_id: str
    position: int


class ReceiptCheck:
    """Message receipts against the events they name, streaming: a receipt and its event are
    saved in one transaction, so each waits only briefly for the other. Also reports records
    of unknown topics. Aggregates are named by their UUID or its integer (`UUID.int`).
    Picklable: it may run in a process of its own."""

    def __init__(self) -> None:
        self.differences: list[Difference] = []
        self.receipts = 0
        self.other_records = 0
        self._events_waiting: dict[str, tuple[str, int, int, int]] = {}
        self._receipts_waiting: dict[str, tuple[ReceiptRecord, int, int]] = {}

    def event(
        self,
        message_id: str,
        incident_id: str,
        position: int,
        aggregate_id: Aggregate,
        notification_id: int,
    ) -> None:
        """A recorded event's message: its receipt must name this incident and position."""
        receipt = self._receipts_waiting.pop(message_id, None)
        if receipt is None:
            self._events_waiting[message_id] = (
                incident_id,
                position,
                aggregate_key(aggregate_id),
                notification_id,
            )
        else:
            self._compare(receipt[0], incident_id, position, notification_id)

    def receipt(
        self,
        aggregate_id: Aggregate,
        version: int,
        receipt: ReceiptRecord | None,
        *,
        notification_id: int,
        error: str | None = None,
    ) -> None:
        """One stored message receipt (`receipt` None with `error` when it does not decode)."""
        self.receipts += 1
        key = aggregate_key(aggregate_id)
        if receipt is None:
            self.differences.append(
                Difference(
                    DifferenceKind.UNDECODABLE,
                    f"stored message receipt does not decode: {error}",
                    notification_id=notification_id,
                    aggregate_id=UUID(int=key),
                )
            )
            return
        if receipt_key(receipt.message_id) != key or version != 1:
            self.differences.append(
                Difference(
                    DifferenceKind.WRONG_AGGREGATE,
                    f"receipt of message {receipt.message_id!r} is stored as aggregate "
                    f"{UUID(int=key)} version {version}, not {receipt_uuid(receipt.message_id)} "
                    f"version 1",
                    incident_id=receipt.incident_id,
                    position=receipt.position,
                    notification_id=notification_id,
                    aggregate_id=UUID(int=key),
                )
            )
        waiting = self._events_waiting.pop(receipt.message_id, None)
        if waiting is None:
            self._receipts_waiting[receipt.message_id] = (receipt, key, notification_id)
        else:
            incident_id, position, _, event_notification = waiting
            self._compare(receipt, incident_id, position, event_notification)

    def other(
        self, aggregate_id: Aggregate, version: int, topic: str, *, notification_id: int
    ) -> None:
        """A stored record that is neither an incident event nor a receipt."""
        self.other_records += 1
        aggregate = UUID(int=aggregate_key(aggregate_id))
        self.differences.append(
            Difference(
                DifferenceKind.UNKNOWN_TOPIC,
                f"stored record with unknown topic {topic!r} (aggregate {aggregate} "
                f"version {version})",
                notification_id=notification_id,
                aggregate_id=aggregate,
            )
        )

    def finish(self, undecodable: Collection[tuple[int, int]] = ()) -> list[Difference]:
        """Receipts without their event (unless that event is `undecodable`: reported as
        such; named by aggregate integer and position), events without their receipt; then
        every difference found."""
        for message_id, (receipt, key, notification_id) in sorted(self._receipts_waiting.items()):
            if (incident_key(receipt.incident_id), receipt.position) in undecodable:
                continue
            self.differences.append(
                Difference(
                    DifferenceKind.RECEIPT_ORPHAN,
                    f"receipt of message {message_id!r} says it was recorded as position "
                    f"{receipt.position} of {receipt.incident_id!r}, but no event of that "
                    f"message is in the store",
                    incident_id=receipt.incident_id,
                    position=receipt.position,
                    notification_id=notification_id,
                    aggregate_id=UUID(int=key),
                )
            )
        for message_id, (incident_id, position, key, notification_id) in sorted(
            self._events_waiting.items()
        ):
            self.differences.append(
                Difference(
                    DifferenceKind.RECEIPT_MISSING,
                    f"no message receipt for message {message_id!r} of this event",
                    incident_id=incident_id,
                    position=position,
                    notification_id=notification_id,
                    aggregate_id=UUID(int=key),
                )
            )
        self._events_waiting.clear()
        self._receipts_waiting.clear()
        return self.differences

    def _compare(
        self, receipt: ReceiptRecord, incident_id: str, position: int, notification_id: int
    ) -> None:
        if (receipt.incident_id, receipt.position) != (incident_id, position):
            self.differences.append(
                Difference(
                    DifferenceKind.RECEIPT_MISMATCH,
                    f"message {receipt.message_id!r} is stored at position {position} of "
                    f"{incident_id!r}, but its receipt says position {receipt.position} of "
                    f"{receipt.incident_id!r}",
                    incident_id=incident_id,
                    position=position,
                    notification_id=notification_id,
                )
            )
