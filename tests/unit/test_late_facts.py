"""Late facts: accepted when they fit the lifecycle in occurred order; every projection folds
the events in occurred order, whatever order they were recorded in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from slatrail.domain.errors import Rejection
from slatrail.domain.model import State
from slatrail.projections.audit import annotated_trail
from slatrail.projections.sla import sla_view
from tests.builders import IncidentFactory, contracts_from, minimal_data
from tests.hypothesis_profiles import examples

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
CONTRACTS = contracts_from()

_NEXT = {
    State.OPEN: ("triaged", "priority_changed", "acknowledged", "awaiting_customer",
                 "workaround_provided", "escalated", "resolved"),
    State.AWAITING_CUSTOMER: ("customer_responded", "triaged", "acknowledged", "resolved"),
    State.RESOLVED: ("reopened", "postmortem_published"),
}  # fmt: skip
_LEADS_TO = {
    "awaiting_customer": State.AWAITING_CUSTOMER,
    "customer_responded": State.OPEN,
    "resolved": State.RESOLVED,
    "reopened": State.OPEN,
}


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, datetime]]:
    """A valid history in occurred order (strictly increasing instants)."""
    priority = draw(st.sampled_from(["P1", "P2", "P3"]))
    out: list[tuple[str, datetime]] = [(f"reported:{priority}", T0)]
    state, acknowledged, at = State.OPEN, False, T0
    for _ in range(draw(st.integers(1, 8))):
        choices = [k for k in _NEXT[state] if not (k == "acknowledged" and acknowledged)]
        kind = draw(st.sampled_from(choices))
        at += timedelta(minutes=draw(st.integers(1, 600)))
        out.append((kind, at))
        state = _LEADS_TO.get(kind, state)
        acknowledged = acknowledged or kind == "acknowledged"
    return out


def _record(events: list[tuple[str, datetime]], order: list[int]) -> IncidentFactory | None:
    """Record the events in `order`, each refused one retried after the others; None when no
    order from this permutation keeps every prefix valid."""
    incidents = IncidentFactory(CONTRACTS)
    recorded_at = events[-1][1] + timedelta(hours=1)
    pending = [i for i in order if i != 0]
    kind, at = events[0]
    incidents.report("I-1", at, customer="acme", priority=kind.split(":")[1],
                     recorded_at=recorded_at)  # fmt: skip
    while pending:
        left = []
        for index in pending:
            kind, at = events[index]
            recorded_at += timedelta(seconds=1)
            try:
                incidents.record("I-1", kind, at, minimal_data(kind), recorded_at=recorded_at)
            except Rejection:
                left.append(index)
        if len(left) == len(pending):
            return None
        pending = left
    return incidents


def _answers(incidents: IncidentFactory, events: list[tuple[str, datetime]]) -> list[Any]:
    out = []
    moments = [at for _, at in events] + [events[-1][1] + timedelta(days=30)]
    for as_of in moments:
        for sla in sla_view(incidents.histories(), CONTRACTS, as_of):
            out.append(sla.as_json())
        trail = annotated_trail(incidents.events("I-1"), CONTRACTS, as_of)
        # annotations by what and when (their text may name the recording lag, which differs)
        for entry in trail:
            notes = [(n["at"], n["kind"], n["metric"]) for n in entry["annotations"]]
            out.append((entry["type"], entry["occurred_at"], notes))
    return out


@settings(
    max_examples=examples(60), deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)  # fmt: skip
@given(events=histories(), data=st.data())
def test_any_valid_recording_order_gives_the_answers_of_occurred_order(
    events: list[tuple[str, datetime]], data: st.DataObject
) -> None:
    in_order = _record(events, list(range(len(events))))
    assert in_order is not None
    order = data.draw(st.permutations(range(len(events))))
    shuffled = _record(events, order)
    assume(shuffled is not None)
    assert shuffled is not None
    assert len(shuffled.events("I-1")) == len(events)
    assert _answers(shuffled, events) == _answers(in_order, events)


def test_a_late_acknowledged_makes_the_response_clock_met_as_of_event_time() -> None:
    # P1 (response 15m): reported 08:00, resolved 09:00 (recorded first), acknowledged at
    # 08:10 arrives an hour late, replayed from a publisher's outbox
    incidents = IncidentFactory(CONTRACTS)
    incidents.report("I-1", T0, customer="acme", priority="P1")
    incidents.then("I-1", "triaged", T0 + timedelta(minutes=1), priority="P1")
    incidents.then("I-1", "workaround_provided", T0 + timedelta(minutes=30))
    before = T0 + timedelta(minutes=45)
    incidents.then("I-1", "acknowledged", T0 + timedelta(minutes=10),
                   recorded_at=T0 + timedelta(minutes=50))  # fmt: skip
    as_of = T0 + timedelta(hours=2)
    (now,) = sla_view(incidents.histories(), CONTRACTS, as_of)
    (then,) = sla_view(incidents.histories(), CONTRACTS, as_of, as_known_at=before)
    assert str(now.clocks.clocks["response"].status) == "met"  # type: ignore[index]
    assert str(then.clocks.clocks["response"].status) == "breached"  # type: ignore[index]
