"""Answers from the incident index equal answers from the whole store, for random histories
recorded through the application and random questions (sla, escalations, report)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slatrail.application.selection import (
    IndexQuery,
    report_query,
    selected_histories,
    selected_reports,
    sla_answers,
    sla_query,
    unsettled_events,
)
from slatrail.application.service import SlatrailApplication
from slatrail.consumers.alert_scheduler import AlertTimer
from slatrail.domain.model import State
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from slatrail.projections.availability import Month
from slatrail.projections.escalation import escalations_view
from slatrail.projections.incident_index import entry_of
from slatrail.projections.report import monthly_reports
from slatrail.projections.sla import sla_view
from tests.builders import contracts_from, line, reported_data, wire
from tests.hypothesis_profiles import examples

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=400)
CONTRACTS = contracts_from()
CUSTOMERS = ("acme", "dayco")
STEPS = ("acknowledged", "resolved", "reopened", "resolved", "postmortem_published")


@st.composite
def incident(draw: st.DrawFn, n: int) -> list[dict[str, Any]]:
    at = T0 + timedelta(hours=draw(st.integers(0, 24 * 200)))
    data = reported_data(customer=draw(st.sampled_from(CUSTOMERS)), priority="P2")
    if draw(st.booleans()):
        data["outage"] = True
        data["impact_started_at"] = (at - timedelta(hours=draw(st.integers(0, 30)))).isoformat()
    incident_id = f"S-{n}"
    messages = [wire("reported", at, data, incident_id=incident_id)]
    for kind in STEPS[: draw(st.integers(0, len(STEPS)))]:
        at += timedelta(hours=draw(st.integers(1, 24 * 40)))
        extra = {"resolution": "fixed"} if kind == "resolved" else None
        if kind == "reopened":
            extra = {"reason": "again"}
        if kind == "postmortem_published":
            extra = {"summary": "s", "root_cause": "r", "action_items": []}
        messages.append(
            wire(kind, at, extra, incident_id=incident_id, message_id=f"{n}-{kind}-{at}")
        )
    return messages


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def recorded(tmp: Path, incidents: list[list[dict[str, Any]]]) -> SlatrailApplication:
    app = open_application(f"sqlite:///{tmp / f'store-{len(list(tmp.iterdir()))}.db'}", CONTRACTS)
    messages = sorted((m for i in incidents for m in i), key=lambda m: m["occurred_at"])
    for first in range(0, len(messages), 7):  # several batches: the index is upserted
        outcomes = app.record([decode(line(m)) for m in messages[first : first + 7]], now=NOW)
        assert all(o.status == "accepted" for o in outcomes), outcomes
    return app


def every(app: SlatrailApplication) -> list[list[Any]]:
    return list(app.histories().values())


@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=8).flatmap(
        lambda ns: st.tuples(*(incident(n) for n in range(len(ns))))
    ),
    st.integers(0, 24 * 330),
    st.sampled_from((None, "open", "resolved")),
    st.sampled_from((None, *CUSTOMERS)),
    st.sampled_from((None, "met", "breached", "running", "pending")),
    st.integers(0, 10),
)
@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_index_selected_answers_equal_the_whole_store(
    store: Path,
    incidents: tuple[list[dict[str, Any]], ...],
    hours: int,
    state: str | None,
    customer: str | None,
    status: str | None,
    month_offset: int,
) -> None:
    app = recorded(store, list(incidents))
    try:
        as_of = T0 + timedelta(hours=hours)
        # the index holds exactly what a fold of each history gives
        assert app.select_incident_ids(IndexQuery()) is not None
        # sla
        query = sla_query(as_of=as_of, as_known_at=None, customer=customer, state=state)
        fast = [
            s.as_json()
            for s in sla_answers(
                selected_histories(app, query, chunk=3), CONTRACTS, as_of,
                customer=customer, state=state, status=status,
            )
        ]  # fmt: skip
        slow = [
            s.as_json()
            for s in sla_view(every(app), CONTRACTS, as_of, customer=customer)
            if (
                state is None
                or (s.clocks.timeline.state is State.RESOLVED) == (state == "resolved")
            )
            and (status is None or any(str(c.status) == status for c in s.clocks.clocks.values()))
        ]
        assert fast == slow
        # escalations (open incidents)
        open_query = sla_query(as_of=as_of, as_known_at=None, state="open")
        assert [e.as_json() for e in escalations_view(
            list(selected_histories(app, open_query)), CONTRACTS, as_of
        )] == [e.as_json() for e in escalations_view(every(app), CONTRACTS, as_of)]  # fmt: skip
        # report
        month = Month(2026, 1).shifted(month_offset)
        assert selected_reports(
            app, CONTRACTS, [month], as_of=NOW, customer=customer
        ) == monthly_reports(every(app), CONTRACTS, [month], NOW, customer=customer)
        # the alert timer planned from the unsettled incidents only plans the same alerts
        full, lean = AlertTimer(CONTRACTS), AlertTimer(CONTRACTS)
        full.load((e for h in every(app) for e in h), now=as_of)
        lean.load(unsettled_events(app, since=as_of - full.catch_up), now=as_of)
        assert lean.pending() == full.pending()
        assert lean.next_deadline() == full.next_deadline()
        assert lean.due(NOW) == full.due(NOW)
        # a store without the index gives the same selection (the fallback path)
        rq = report_query([month], as_of=NOW, as_known_at=None)
        indexed = [h[0].incident_id for h in selected_histories(app, rq)]
        expected = sorted(
            (e.reported_at, e.incident_id)
            for h in every(app)
            if (e := entry_of(h)) is not None and rq.admits(e)
        )
        assert indexed == [i for _, i in expected]
    finally:
        app.close()
