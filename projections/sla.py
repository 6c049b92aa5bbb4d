"""The SLA view of incidents (docs/reference/clocks.md; JSON: docs/reference/commands.md#sla)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slatrail.domain.clocks import IncidentClocks, evaluate
from slatrail.domain.contract_version import ContractSource
from slatrail.domain.model import IncidentEvent, format_instant
from slatrail.domain.timeline import build_timeline
from slatrail.projections.escalation import PlannedAlert, Reason, next_alert, state_of, sweep
from slatrail.projections.history import known_by


@dataclass(frozen=True)
class IncidentSla:
    clocks: IncidentClocks
    escalation: Reason

    @property
    def incident_id(self) -> str:
        return self.clocks.timeline.incident_id

    def as_json(self) -> dict[str, Any]:
        t = self.clocks.timeline
        return {
            "incident_id": t.incident_id,
            "customer": t.customer,
            "tier": self.clocks.tier,
            "priority": str(t.priority),
            "claimed_priority": str(t.claimed_priority),
            "state": str(t.state),
            "excluded": t.excluded,
            "escalation_level": self.escalation.level,
            "metrics": {str(m): c.as_json() for m, c in self.clocks.clocks.items()},
        }

    def explain(self) -> dict[str, Any]:
        out = self.as_json()
        t = self.clocks.timeline
        out["escalation_reason"] = self.escalation.why
        out["priority_changes"] = [
            {"at": format_instant(at), "priority": str(p)} for at, p in t.priority_changes
        ]
        out["metrics"] = {str(m): c.explain() for m, c in self.clocks.clocks.items()}
        return out


def incident_sla(
    events: Sequence[IncidentEvent],
    contracts: ContractSource,
    as_of: datetime,
    *,
    as_known_at: datetime | None = None,
) -> IncidentSla | None:
    """One incident's clocks as of `as_of`, from what was recorded by `as_known_at`."""
    visible = known_by(events, as_known_at)
    timeline = build_timeline(visible, as_of)
    if timeline is None:
        return None
    return IncidentSla(evaluate(timeline, contracts), state_of(timeline, contracts).reason)


def incident_sla_and_next(
    events: Sequence[IncidentEvent], contracts: ContractSource, as_of: datetime
) -> tuple[IncidentSla, PlannedAlert | None] | None:
    """`incident_sla` with the incident's next alert (`next_alert`), from one sweep of its
    clocks' crossings."""
    timeline = build_timeline(events, as_of)
    if timeline is None:
        return None
    swept = sweep(timeline, contracts)
    reason = state_of(timeline, contracts, swept=swept).reason
    return IncidentSla(evaluate(timeline, contracts), reason), next_alert(
        timeline, contracts, swept=swept
    )


def sla_view(
    histories: Iterable[Sequence[IncidentEvent]],
    contracts: ContractSource,
    as_of: datetime,
    *,
    as_known_at: datetime | None = None,
    customer: str | None = None,
) -> list[IncidentSla]:
    """Every incident reported by `as_of` (optionally one customer's), ordered by report time."""
    out = []
    for events in histories:
        if customer is not None and events and events[0].data.get("customer") != customer:
            continue
        sla = incident_sla(events, contracts, as_of, as_known_at=as_known_at)
        if sla is not None:
            out.append(sla)
    out.sort(key=lambda s: (s.clocks.timeline.reported_at, s.incident_id))
    return out
