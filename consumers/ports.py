"""What the consumers need from the rest of slatrail, as small interfaces they define.

The composition root (`infra/commands/serve.py`) hands them the implementations: the
application service as the `Recorder`, the wire codec as the `Decoder`, the dead-letter format
as `DeadLetters`, the event envelope codec as the `EventDecoder`, and a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from slatrail.application.outcomes import Decoded, Outcome
from slatrail.consumers.streams import Record
from slatrail.domain.model import IncidentEvent

Now = Callable[[], datetime]
"""The instant a batch is recorded at (UTC)."""

Decoder = Callable[[bytes], Decoded]
"""Raw message → decoded message; raises `domain.errors.InvalidMessageError` with its code."""

EventDecoder = Callable[[bytes | None], tuple[int, IncidentEvent]]
"""An `incidents.events` value → (store position, event); raises `ValueError` if it is not one."""


class Recorder(Protocol):
    """Records a batch of decoded messages in one transaction: one outcome per message."""

    def record(
        self,
        batch: Sequence[Decoded],
        *,
        now: datetime,
        redrive: Sequence[str | None] | None = None,
        traceparent: Sequence[str | None] | None = None,
    ) -> list[Outcome]: ...


class DeadLetters(Protocol):
    """The `incidents.rejected` entry of a refused record, and its bytes."""

    def entry(self, record: Record, outcome: Outcome, rejected_at: datetime) -> dict[str, Any]:
        """The full entry: the original message, why, when, and where it was read."""

    def truncated(self, record: Record, outcome: Outcome, rejected_at: datetime) -> dict[str, Any]:
        """The entry when the full one is too large for the broker: a prefix and a digest."""

    def encode(self, entry: Mapping[str, Any]) -> bytes: ...
