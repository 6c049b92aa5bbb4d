"""What happened to each message handed to the application, and the counts of a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from slatrail.domain.errors import Rejection

if TYPE_CHECKING:  # the wire models are built only by the commands that decode messages
    from slatrail.domain.messages import IncidentMessage


class Status(StrEnum):
    """An outcome's status; the values are the ones on the wire and in JSON output."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    PARKED = "parked"  # the inbound consumer only: waiting for its incident (docs/streaming.md)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one message: accepted, duplicate or rejected (with code and reason)."""

    status: Status
    message_id: str | None = None
    incident_id: str | None = None
    code: str | None = None
    reason: str | None = None
    position: int | None = None

    @classmethod
    def rejected(cls, error: Rejection, message_id: str | None = None) -> Outcome:
        return cls(Status.REJECTED, message_id, error.incident_id, error.code, error.reason)


Decoded = tuple["IncidentMessage", dict[str, Any]]
"""A message as the wire codec decoded it, with its parsed JSON object (for fingerprinting)."""


@dataclass
class IngestCounts:
    """Outcomes of a run counted by status, rejections also by code."""

    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    by_code: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        if outcome.status == Status.ACCEPTED:
            self.accepted += 1
        elif outcome.status == Status.DUPLICATE:
            self.duplicate += 1
        else:
            self.rejected += 1
            code = outcome.code or "rejected"
            self.by_code[code] = self.by_code.get(code, 0) + 1

    @property
    def total(self) -> int:
        return self.accepted + self.duplicate + self.rejected

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "rejected_by_code": dict(sorted(self.by_code.items())),
        }
