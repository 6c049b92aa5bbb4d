"""Escalation level of an incident (SPEC §7): a pure function of (events, contracts, as_of)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.clocks import IncidentClocks, Status, evaluate
from domain.contracts import Contracts
from domain.model import IncidentEvent, Priority
from domain.timeline import Timeline, build_timeline

_JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Reason:
    level: int
    why: str


def instantaneous_level(clocks: IncidentClocks, contracts: Contracts) -> Reason:
    """The level the clocks call for at this instant, without history."""
    policy = contracts.escalation
    best = Reason(1, "support engineer (default)")
    priority = clocks.timeline.priority
    for metric, clock in clocks.clocks.items():
        if clock.target_s is None or clock.elapsed_s is None:
            continue
        if clock.status is Status.BREACHED:
            if clock.elapsed_s >= policy.overrun_ratio * clock.target_s:
                best = _max(
                    best,
                    Reason(policy.overrun_level, f"{metric} over {policy.overrun_ratio:g}x target"),
                )
            if (clock.priority or priority) is Priority.P1:
                best = _max(best, Reason(policy.p1_breached_level, f"P1 {metric} breached"))
            best = _max(best, Reason(policy.breached_level, f"{metric} breached"))
        elif clock.status is Status.AT_RISK:
            best = _max(best, Reason(policy.at_risk_level, f"{metric} at risk"))
    for manual in clocks.timeline.escalations:
        best = _max(best, Reason(manual.level, f"manual escalation: {manual.reason}"))
    return best


def _max(a: Reason, b: Reason) -> Reason:
    return b if b.level > a.level else a


def escalation_level(
    events: Sequence[IncidentEvent], contracts: Contracts, as_of: datetime
) -> Reason:
    """Highest level reached since the incident was last (re)opened, as of `as_of`.

    Counted time only grows between two events and targets only change at events, so the
    highest level between events is reached just before the next event: checking those
    instants and `as_of` finds every crossing.
    """
    timeline = build_timeline(events, as_of)
    if timeline is None:
        return Reason(1, "not reported")
    opened = timeline.reopenings[-1] if timeline.reopenings else timeline.reported_at
    best = Reason(1, "support engineer (default)")
    for moment in _checkpoints(events, timeline, opened):
        snapshot = build_timeline(events, moment)
        if snapshot is not None:
            best = _max(best, instantaneous_level(evaluate(snapshot, contracts), contracts))
    return best


def _checkpoints(events: Sequence[IncidentEvent], t: Timeline, opened: datetime) -> list[datetime]:
    moments = [e.occurred_at - _JUST_BEFORE for e in events if opened < e.occurred_at <= t.as_of]
    moments.append(t.as_of)
    return moments
