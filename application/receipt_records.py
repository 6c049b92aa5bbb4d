"""The stored records of message receipts, written directly: byte for byte what eventsourcing's
mapper writes for a `MessageReceipt.Received` event, without building the event first.

A receipt's record is a fixed shape (docs/scale.md, "Ingest"): its state is the JSON object
`{"timestamp": …, "originator_topic": …, "message_id": …, "incident_id": …, "fingerprint": …,
"position": …}` as the library's JSON transcoder writes it. Building the event and handing it
to the general mapper (a dictionary of its attributes, the encoder calling back into Python for
its instant) cost about as much as the rest of the receipt. Used only where the application's
mapper is the library's plain JSON one, and only once a sample built both ways came out equal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from json.encoder import encode_basestring  # the library's encoder uses it (ensure_ascii=False)
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent
from eventsourcing.utils import get_topic

from slatrail.domain.model import receipt_uuid
from slatrail.domain.receipt import MessageReceipt


class NewReceipt(NamedTuple):
    """A receipt of this batch, not stored yet: what `MessageReceipt.received` records."""

    message_id: str
    incident_id: str
    fingerprint: str
    position: int
    recorded_at: datetime


class ReceiptRecords:
    """Builds the stored record of each new receipt; `enabled` is False when the mapper could
    write other bytes (a cipher, a compressor, another transcoder): use the events then."""

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self._topic = get_topic(MessageReceipt.Received)
        self._head = '"},"originator_topic":' + encode_basestring(get_topic(MessageReceipt)) + ","
        self._stamp: tuple[datetime | None, str] = (None, "")  # (instant, its JSON prefix)
        self.enabled = (
            type(mapper) is Mapper
            and type(mapper.transcoder) is JSONTranscoder
            and mapper.compressor is None
            and mapper.cipher is None
            and all(self.record(s) == _library_record(mapper, s) for s in _SAMPLES)
        )

    def record(self, receipt: NewReceipt) -> StoredEvent:
        """The record `mapper.to_stored_event(self.event(receipt))` would be."""
        now = receipt.recorded_at
        stamp = self._stamp  # one read: another thread may be recording at another instant
        if stamp[0] is not now:
            stamp = (now, '{"timestamp":{"_type_":"datetime_iso","_data_":"' + now.isoformat())
            self._stamp = stamp
        state = (
            f"{stamp[1]}{self._head}"
            f'"message_id":{encode_basestring(receipt.message_id)},'
            f'"incident_id":{encode_basestring(receipt.incident_id)},'
            f'"fingerprint":{encode_basestring(receipt.fingerprint)},'
            f'"position":{int(receipt.position)}}}'
        )
        return StoredEvent(
            originator_id=receipt_uuid(receipt.message_id),
            originator_version=MessageReceipt.INITIAL_VERSION,
            topic=self._topic,
            state=state.encode("utf-8"),
        )

    @staticmethod
    def event(receipt: NewReceipt) -> MessageReceipt.Received:
        """The receipt as its event (where records are not built directly)."""
        return MessageReceipt.received(
            message_id=receipt.message_id, incident_id=receipt.incident_id,
            fingerprint=receipt.fingerprint, position=receipt.position, now=receipt.recorded_at,
        )  # fmt: skip


def _library_record(mapper: Mapper[UUID], receipt: NewReceipt) -> StoredEvent:
    event: Any = ReceiptRecords.event(receipt)
    return mapper.to_stored_event(event)


_SAMPLE_NOW = datetime(2026, 12, 2, 3, 4, 5, 678901, tzinfo=UTC)
_SAMPLES = (
    NewReceipt("m-1", "INC-1", "0" * 64, 1, _SAMPLE_NOW),
    NewReceipt(
        'quote " backslash \\ tab \t ü 漢 \u2028 😀',
        "ünï \x7f \x1b",
        "f" * 64,
        2**40,
        _SAMPLE_NOW,
    ),
)
