"""What the relay and the projection consumer need from the outside, as small interfaces.

The composition root (`infra.commands.serve`) hands them the implementations: the envelope
codec (`infra.kafka_envelope.ENVELOPES`), the store's outbox (`infra.kafka_outbox.Outbox`) and
the read-model store (`infra.read_model_store.ReadModelStore`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from slatrail.domain.contract_version import ContractBook
from slatrail.domain.model import IncidentEvent
from slatrail.projections.read_models import TrackedEvent

Headers = tuple[tuple[str, bytes], ...]


class EnvelopeEncoder(Protocol):
    """Recorded event → the `incidents.events` message value and headers."""

    def encode(self, notification_id: int, event: IncidentEvent) -> bytes: ...

    def headers(self, notification_id: int) -> Headers: ...


class EnvelopeDecoder(Protocol):
    """`incidents.events` value → (notification_id, event); ValueError when it is not one."""

    def decode(self, value: bytes | None) -> tuple[int, IncidentEvent]: ...


class RelayLock(Protocol):
    """One relay at a time per store and topic."""

    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class OutboxPort(Protocol):
    """What the relay needs from the store."""

    @property
    def leadership(self) -> RelayLock: ...

    def position(self) -> int: ...

    def save(self, notification_id: int) -> None: ...

    def events_after(self, position: int, limit: int) -> list[tuple[int, IncidentEvent]]: ...

    def head(self) -> int: ...

    def wait(self, timeout_s: float) -> None: ...

    def close(self) -> None: ...


class ReadModelWriter(Protocol):
    """What the projection consumer needs from the read models."""

    def apply(
        self,
        batch: Sequence[TrackedEvent],
        *,
        read_models: Iterable[str] = ...,
        contracts: ContractBook | None = ...,
        notification: int | None = ...,
    ) -> int: ...

    def positions(self, read_model: str) -> dict[str, int]: ...

    def remeasure(self, contracts: ContractBook, *, limit: int = ...) -> int: ...

    def close_ledger_gaps(self, recorded: RecordedIds, *, limit: int = ...) -> int | None: ...


RecordedIds = Callable[[int, int, int], Sequence[int]]
"""(start, stop, limit) → the store's incident notification ids from `start` to `stop`
(inclusive), at most `limit`, in order (`SlatrailApplication.incident_notifications`)."""
