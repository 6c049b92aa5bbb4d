"""An incident's audit trail: every recorded event, in order, with its chain hash (docs/audit.md),
and the facts derived from it (clock stops, breaches, disputes, escalation changes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slatrail.domain.clocks import (
    Clock,
    IncidentClocks,
    Metric,
    Status,
    due_instant_us,
    evaluate,
    ratio_threshold_us,
)
from slatrail.domain.contract_version import ContractSource
from slatrail.domain.durations import format_duration
from slatrail.domain.model import (
    EXCLUDED_CAUSES,
    EventType,
    IncidentEvent,
    event_to_dict,
    format_instant,
)
from slatrail.domain.timeline import build_timeline, in_occurred_order
from slatrail.projections.escalation import escalation_level
from slatrail.projections.history import known_by

_JUST_AFTER = timedelta(microseconds=1)
_RISKY = (Status.AT_RISK, Status.BREACHED)


def audit_trail(
    events: Sequence[IncidentEvent],
    *,
    as_of: datetime | None = None,
    as_known_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """The trail as JSON-ready entries in occurred order (ties: position), limited to event
    time `as_of` / knowledge time."""
    visible = in_occurred_order(known_by(events, as_known_at))
    return [event_to_dict(e) for e in visible if as_of is None or e.occurred_at <= as_of]


@dataclass(frozen=True, slots=True)
class Annotation:
    """A fact derived from the events (not recorded itself): when, what, in words."""

    at: datetime
    kind: str
    text: str
    metric: Metric | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": format_instant(self.at),
            "kind": self.kind,
            "metric": str(self.metric) if self.metric else None,
            "text": self.text,
        }


def annotated_trail(
    events: Sequence[IncidentEvent],
    contracts: ContractSource,
    as_of: datetime,
    *,
    as_known_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """`audit_trail` entries, each with `annotations`: what the event caused, up to the next
    event (or `as_of`) — clock stops, at-risk and breach instants, disputes, escalations."""
    trail = audit_trail(events, as_of=as_of, as_known_at=as_known_at)
    visible = [
        e for e in in_occurred_order(known_by(events, as_known_at)) if e.occurred_at <= as_of
    ]
    derived = derive_annotations(visible, contracts, as_of)
    for entry, notes in zip(trail, derived, strict=True):
        entry["annotations"] = [note.as_json() for note in notes]
    return trail


def derive_annotations(
    events: Sequence[IncidentEvent], contracts: ContractSource, as_of: datetime
) -> list[list[Annotation]]:
    """Per event (given in position order, all occurred by `as_of`): the derived facts from
    its occurrence up to the next event's (the last one's: up to `as_of`)."""
    out: list[list[Annotation]] = []
    level = 1
    if not events:
        return out
    overrun_ratio = contracts.measuring(events[0].occurred_at).escalation.overrun_ratio
    for index, event in enumerate(events):
        upto = events[: index + 1]
        at = event.occurred_at
        end = events[index + 1].occurred_at if index + 1 < len(events) else as_of
        after = _clocks(upto, at, contracts)
        before = _clocks(events[:index], at, contracts) if index else None
        notes = _event_notes(event, upto, before, after)
        crossings: list[tuple[datetime, Annotation]] = []
        if end > at:
            at_end = _clocks(upto, end, contracts)
            crossings = _crossings(after, at_end, overrun_ratio)
        notes.extend(note for _, note in crossings if note.kind != "overrun")
        level, changes = _escalations(upto, contracts, level, at, end, crossings)
        notes.extend(changes)
        notes.sort(key=lambda note: note.at)
        out.append(notes)
    return out


def _clocks(
    events: Sequence[IncidentEvent], as_of: datetime, contracts: ContractSource
) -> IncidentClocks:
    timeline = build_timeline(events, as_of)
    assert timeline is not None, "an incident's history starts with reported"
    return evaluate(timeline, contracts)


def _figures(clock: Clock) -> str:
    if clock.target_s is None:
        return format_duration(clock.elapsed_s or 0)
    return f"{format_duration(clock.elapsed_s or 0)}/{format_duration(clock.target_s)}"


def _event_notes(
    event: IncidentEvent,
    upto: Sequence[IncidentEvent],
    before: IncidentClocks | None,
    after: IncidentClocks,
) -> list[Annotation]:
    at, kind, t = event.occurred_at, event.type, after.timeline
    notes: list[Annotation] = []
    if kind is EventType.REPORTED:
        notes.append(
            Annotation(
                at,
                "clocks_started",
                f"clocks started: priority {t.priority} (claimed), tier {after.tier}",
            )
        )
    first_triage = sum(e.type is EventType.TRIAGED for e in upto) == 1
    if kind is EventType.TRIAGED and first_triage and t.disputed:
        notes.append(
            Annotation(
                at,
                "priority_dispute",
                f"priority dispute: claimed {t.claimed_priority}, triaged {t.first_triage}",
            )
        )
    if kind in (EventType.TRIAGED, EventType.PRIORITY_CHANGED) and before is not None:
        old = before.timeline.priority
        if old != t.priority:
            notes.append(
                Annotation(
                    at,
                    "priority_changed",
                    f"priority {old} → {t.priority}: running clocks now use {t.priority} targets",
                )
            )
    if kind is EventType.AWAITING_CUSTOMER:
        notes.append(Annotation(at, "paused", "workaround and resolution clocks paused"))
    if kind is EventType.CUSTOMER_RESPONDED and t.pauses and t.pauses[-1].end == at:
        paused = (at - t.pauses[-1].start).total_seconds()
        notes.append(
            Annotation(at, "resumed", f"clocks resumed after {format_duration(paused)} paused")
        )
    if kind is EventType.RESOLVED and t.latest_resolution is not None:
        cause = t.latest_resolution.cause
        if cause in EXCLUDED_CAUSES:
            notes.append(Annotation(at, "excluded", f"excluded from attainment: cause {cause}"))
    if kind is EventType.REOPENED:
        notes.append(Annotation(at, "reopened", "resolution clock resumed"))
    if before is None:
        return notes
    for metric, clock in after.clocks.items():
        prior = before.clocks[metric]
        if clock.stopped_at == at and prior.stopped_at is None:
            text = f"{metric} clock stopped: {clock.status} {_figures(clock)}"
            if (
                clock.status is Status.MET
                and prior.due_at is not None
                and event.recorded_at > prior.due_at
            ):
                late = format_duration((event.recorded_at - at).total_seconds())
                text += (
                    f" (recorded {late} after it occurred, after the due time "
                    f"{format_instant(prior.due_at)}: as known then, it was breached)"
                )
            notes.append(Annotation(at, "clock_stopped", text, metric))
        elif metric is Metric.POSTMORTEM and clock.started_at == at and prior.started_at != at:
            due = f", due {format_instant(clock.due_at)}" if clock.due_at else ""
            notes.append(Annotation(at, "clock_started", f"postmortem clock started{due}", metric))
    return notes


def _crossings(
    start: IncidentClocks, end: IncidentClocks, overrun_ratio: float
) -> list[tuple[datetime, Annotation]]:
    """At-risk, breach and overrun instants of running clocks between two moments."""
    found: list[tuple[datetime, Annotation]] = []
    for metric, clock in end.clocks.items():
        first = start.clocks[metric]
        target = clock.target_s
        if target is None or clock.calendar is None or clock.stopped_at is not None:
            continue
        elapsed = clock.elapsed_us or 0
        risk = ratio_threshold_us(target, clock.at_risk_threshold)  # as the status compares
        over = ratio_threshold_us(target, overrun_ratio)
        marks = [
            ("at_risk", risk, first.status in _RISKY),
            ("breached", target * 1_000_000, first.status is Status.BREACHED),
            ("overrun", over, (first.elapsed_us or 0) >= over),
        ]
        for kind, needed, already in marks:
            if already or elapsed < needed:
                continue
            moment = due_instant_us(clock.calendar, clock.segments, None, needed)
            if moment is None:
                continue
            text = {
                "at_risk": f"{metric} clock at risk at {format_instant(moment)} "
                f"({clock.at_risk_threshold:.0%} of {format_duration(target)})",
                "breached": f"{metric} breached at {format_instant(moment)} "
                f"(target {format_duration(target)})",
                "overrun": f"{metric} at {overrun_ratio:g}x its target",
            }[kind]
            found.append((moment, Annotation(moment, kind, text, metric)))
    found.sort(key=lambda item: item[0])
    return found


def _escalations(
    upto: Sequence[IncidentEvent],
    contracts: ContractSource,
    level: int,
    at: datetime,
    end: datetime,
    crossings: Sequence[tuple[datetime, Annotation]],
) -> tuple[int, list[Annotation]]:
    """Escalation level changes at the event and at each crossing after it, before `end`."""
    moments = [(at, at)] + [(min(moment + _JUST_AFTER, end), moment) for moment, _ in crossings]
    changes: list[Annotation] = []
    for evaluated_at, shown_at in moments:
        reason = escalation_level(upto, contracts, evaluated_at)
        if reason.level != level:
            changes.append(
                Annotation(
                    shown_at,
                    "escalation",
                    f"escalation level {level} → {reason.level}: {reason.why}",
                )
            )
            level = reason.level
    return level, changes
