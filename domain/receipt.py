"""Message receipts: one aggregate per `message_id`, so the store itself refuses a second one."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from slatrail.domain.model import receipt_uuid


class MessageReceipt(Aggregate):
    """Proof that a message was recorded; `fingerprint` tells a duplicate from a conflict."""

    TOPIC = "domain.receipt:MessageReceipt"  # a stored name (see domain/incident.py)

    class Created(Aggregate.Created):  # eventsourcing's default; receipts begin Received
        TOPIC = "domain.receipt:MessageReceipt.Created"

    class Received(Aggregate.Created):
        TOPIC = "domain.receipt:MessageReceipt.Received"

        message_id: str
        incident_id: str
        fingerprint: str
        position: int

    def __init__(self, message_id: str, incident_id: str, fingerprint: str, position: int) -> None:
        self.message_id = message_id
        self.incident_id = incident_id
        self.fingerprint = fingerprint
        self.position = position

    @staticmethod
    def create_id(message_id: str) -> UUID:
        return receipt_uuid(message_id)

    @classmethod
    def issue(
        cls, *, message_id: str, incident_id: str, fingerprint: str, position: int, now: datetime
    ) -> MessageReceipt:
        return cls._create(
            cls.Received,
            timestamp=now,
            message_id=message_id,
            incident_id=incident_id,
            fingerprint=fingerprint,
            position=position,
        )

    @classmethod
    def received(
        cls, *, message_id: str, incident_id: str, fingerprint: str, position: int, now: datetime
    ) -> MessageReceipt.Received:
        """The event `issue` would record, without building the aggregate (the record path
        never reads a receipt it has just written; stored exactly as `issue` stores it)."""
        fields: dict[str, Any] = {
            "originator_id": receipt_uuid(message_id),
            "originator_version": cls.INITIAL_VERSION,
            "timestamp": now,
            "originator_topic": get_topic(cls),
            "message_id": message_id,
            "incident_id": incident_id,
            "fingerprint": fingerprint,
            "position": position,
        }
        return cls.Received(**fields)
