"""An incident's audit trail: every recorded event, in order, with its chain hash (SPEC §8)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.model import IncidentEvent, format_instant
from projections.history import known_by


def audit_trail(
    events: Sequence[IncidentEvent],
    *,
    as_of: datetime | None = None,
    as_known_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """The trail as JSON-ready entries, limited to event time `as_of` / knowledge time."""
    visible = known_by(events, as_known_at)
    return [
        {
            "incident_id": e.incident_id,
            "position": e.position,
            "occurred_at": format_instant(e.occurred_at),
            "recorded_at": format_instant(e.recorded_at),
            "type": str(e.type),
            "actor": e.actor,
            "source": e.source,
            "message_id": e.message_id,
            "data": dict(e.data),
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        }
        for e in visible
        if as_of is None or e.occurred_at <= as_of
    ]
