"""Restatements: the figures of a month that differ between two knowledge instants, and why
(docs/reports.md, *Restatements*). Both answers are for the same event time `as_of`; only
what was recorded differs — late events and contract versions recorded in between."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from slatrail.domain.clocks import Metric
from slatrail.domain.contract_version import ContractBook
from slatrail.domain.model import IncidentEvent, format_instant, parse_instant
from slatrail.projections.availability import Month
from slatrail.projections.report import (
    contracted_customers,
    evaluated,
    reports_from,
    visible_timelines,
)

FIGURES = (
    *(f"{m}.attainment" for m in Metric),
    *(f"{m}.met" for m in Metric),
    *(f"{m}.breached" for m in Metric),
    "availability.percent",
    "availability.credit_percent",
)


def _figure(report: dict[str, Any], name: str) -> Any:
    section, key = name.split(".")
    if section == "availability":
        return report["availability"][key]
    return report["metrics"][section][key]


def restatements(
    histories: Iterable[Sequence[IncidentEvent]],
    book: ContractBook,
    months: Sequence[Month],
    as_of: datetime,
    known_at: datetime,
    vs: datetime | None,
    *,
    customer: str | None = None,
) -> dict[str, Any]:
    """Every figure and clock of `months` that differs between what was known at `known_at`
    and at `vs` (None: everything recorded), with its causes."""
    histories = list(histories)
    then_book, now_book = book.known_at(known_at), book.known_at(vs)
    then_seen = visible_timelines(histories, as_of, as_known_at=known_at, customer=customer)
    now_seen = visible_timelines(histories, as_of, as_known_at=vs, customer=customer)
    then_incidents, now_incidents = evaluated(then_seen, then_book), evaluated(now_seen, now_book)
    then_reports = (
        reports_from(
            then_incidents, then_book, months, as_of, as_known_at=known_at, customer=customer
        )
        if customer is None or customer in contracted_customers(then_book, months)
        else []  # contracted only by a later version: no report then, its clocks are compared
    )
    now_reports = reports_from(
        now_incidents, now_book, months, as_of, as_known_at=vs, customer=customer
    )
    by_id = {events[0].incident_id: events for events in histories if events}
    old_by_key = {(r["customer"], r["month"]): r for r in then_reports}
    figures, clocks = [], []
    for new in now_reports:
        old = old_by_key.get((new["customer"], new["month"]))
        start, end = (parse_instant(new["period"][k]) for k in ("start", "end"))
        changed_clocks = _clock_changes(
            then_incidents.get(new["customer"], []), now_incidents.get(new["customer"], []),
            start, end, then_book, now_book, by_id, as_of, known_at, vs,
        )  # fmt: skip
        clocks.extend(changed_clocks)
        if old is None:
            continue
        causes = sorted({c for item in changed_clocks for c in item["causes"]})
        versions_then, versions_now = old.get("contract_versions"), new.get("contract_versions")
        if versions_then != versions_now and not causes:
            causes.append(f"contract versions {versions_then} → {versions_now}")
        for name in FIGURES:
            a, b = _figure(old, name), _figure(new, name)
            if a != b:
                figures.append(
                    {
                        "customer": new["customer"], "month": new["month"], "figure": name,
                        "old": a, "new": b, "causes": causes,
                    }
                )  # fmt: skip
    return restatement_answer(as_of, known_at, vs, figures, clocks)


def restatement_answer(
    as_of: datetime,
    known_at: datetime,
    vs: datetime | None,
    figures: list[dict[str, Any]],
    clocks: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "as_of": format_instant(as_of),
        "known_at": format_instant(known_at),
        "vs": format_instant(vs) if vs is not None else None,
        "figures": figures,
        "clocks": clocks,
    }


def _clock_changes(
    then: Sequence[Any], now: Sequence[Any], start: datetime, end: datetime,
    then_book: ContractBook, now_book: ContractBook,
    by_id: dict[str, Sequence[IncidentEvent]], as_of: datetime,
    known_at: datetime, vs: datetime | None,
) -> list[dict[str, Any]]:  # fmt: skip
    earlier = {i.timeline.incident_id: i for i in then}
    out = []
    for incident in now:
        t = incident.timeline
        if not start <= t.reported_at < end:
            continue
        before = earlier.get(t.incident_id)
        causes = _causes(t.incident_id, t.reported_at, by_id, then_book, now_book, as_of,
                         known_at, vs)  # fmt: skip
        for metric in Metric:
            new_clock = incident.clock(metric)
            old_clock = before.clock(metric) if before is not None else None
            old_status = str(old_clock.status) if old_clock is not None else None
            if old_status == str(new_clock.status):
                continue
            out.append(
                {
                    "incident_id": t.incident_id, "customer": t.customer, "metric": str(metric),
                    "old_status": old_status, "new_status": str(new_clock.status),
                    "old_target_s": old_clock.target_s if old_clock is not None else None,
                    "new_target_s": new_clock.target_s, "causes": causes,
                }
            )  # fmt: skip
    return out


def _causes(
    incident_id: str, reported_at: datetime, by_id: dict[str, Sequence[IncidentEvent]],
    then_book: ContractBook, now_book: ContractBook, as_of: datetime,
    known_at: datetime, vs: datetime | None,
) -> list[str]:  # fmt: skip
    causes = [
        f"late event {e.type} (occurred {format_instant(e.occurred_at)}, recorded "
        f"{format_instant(e.recorded_at)}, position {e.position})"
        for e in by_id.get(incident_id, ())
        if known_at < e.recorded_at
        and (vs is None or e.recorded_at <= vs)
        and e.occurred_at <= as_of
    ]
    old_v = then_book.measuring_version(reported_at).version
    new_v = now_book.measuring_version(reported_at).version
    if old_v != new_v:
        causes.append(f"contract version {old_v} → {new_v}")
    return causes
