"""Selecting which recorded events a question may see (event time and knowledge time)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slatrail.domain.model import IncidentEvent


def known_by(events: Sequence[IncidentEvent], as_known_at: datetime | None) -> list[IncidentEvent]:
    """Only what slatrail had recorded by `as_known_at` (bitemporal); all if None."""
    if as_known_at is None:
        return list(events)
    return [event for event in events if event.recorded_at <= as_known_at]
