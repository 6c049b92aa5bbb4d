"""The SLA ledger equals the fold: a lookup at any instant answers what `incident_sla` answers.

Random histories (business calendars with lunch breaks, a holiday and DST; pauses, priority
changes, resolutions and reopenings) are checked at random instants to the microsecond and at
every interval boundary and one microsecond either side of it, where a missed or misplaced
crossing would show. The events are handed over shuffled: the ledger folds in occurred order.
"""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slatrail.application.service import SlatrailApplication
from slatrail.domain.clocks import Metric
from slatrail.domain.contract_version import ContractBook, ContractSource
from slatrail.domain.model import IncidentEvent, State
from slatrail.projections.ledger import incident_ledger, lookup
from slatrail.projections.sla import incident_sla
from tests.builders import CONTRACTS_TOML, contracts_from, record_history, utc
from tests.hypothesis_profiles import examples

CONTRACTS = contracts_from()
START = utc(2026, 3, 2, 7)  # a Monday; 4 March is a holiday, DST starts 29 March


def _book() -> ContractBook:
    """Two recorded versions: from 22 March dayco is measured under gold (other targets and
    calendars), so incidents reported before and after it are measured differently."""
    app = SlatrailApplication(CONTRACTS)
    upgraded = CONTRACTS_TOML.replace('[customers.dayco]\ntier = "daily"',
                                      '[customers.dayco]\ntier = "gold"')  # fmt: skip
    for text, effective in ((CONTRACTS_TOML, utc(1970, 1, 1)), (upgraded, utc(2026, 3, 22))):
        app.record_contracts(text, source="c.toml", effective_from=effective, actor="am",
                             reason="test", now=utc(2026, 2, 1))  # fmt: skip
    book = app.contract_book()
    assert book is not None and len(book.versions) == 2
    return book


BOOK = _book()
TINY = timedelta(microseconds=1)

_NEXT = {
    State.OPEN: ["triaged", "priority_changed", "acknowledged", "awaiting_customer",
                 "workaround_provided", "resolved"],
    State.AWAITING_CUSTOMER: ["customer_responded", "triaged", "acknowledged",
                              "workaround_provided", "resolved"],
    State.RESOLVED: ["reopened", "postmortem_published"],
}  # fmt: skip
_PAYLOAD: dict[str, dict[str, Any]] = {
    "awaiting_customer": {"reason": "logs"},
    "workaround_provided": {"description": "d"},
    "resolved": {"resolution": "fixed"},
    "reopened": {"reason": "again"},
    "postmortem_published": {"summary": "s", "root_cause": "r", "action_items": []},
}
_LEADS_TO = {
    "awaiting_customer": State.AWAITING_CUSTOMER,
    "customer_responded": State.OPEN,
    "resolved": State.RESOLVED,
    "reopened": State.OPEN,
}


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[IncidentEvent], datetime]:
    at = START + timedelta(seconds=draw(st.integers(0, 40 * 24 * 3600)))
    customer = draw(st.sampled_from(["acme", "dayco"]))
    priority = draw(st.sampled_from(["P1", "P2", "P3", "P4"]))
    data: dict[str, Any] = {"customer": customer, "title": "t", "priority": priority}
    if draw(st.booleans()):
        data["outage"] = True
    facts: list[tuple[str, datetime, dict[str, Any]]] = [("reported", at, data)]
    state, acknowledged = State.OPEN, False
    for _ in range(draw(st.integers(0, 7))):
        kind = draw(
            st.sampled_from([k for k in _NEXT[state] if k != "acknowledged" or not acknowledged])
        )
        at += timedelta(seconds=draw(st.integers(0, 3 * 24 * 3600)))
        payload = dict(_PAYLOAD.get(kind, {}))
        if kind in ("triaged", "priority_changed"):
            payload = {"priority": draw(st.sampled_from(["P1", "P2", "P3", "P4"]))}
            if kind == "priority_changed":
                payload["reason"] = "r"
        facts.append((kind, at, payload))
        state = _LEADS_TO.get(kind, state)
        acknowledged = acknowledged or kind == "acknowledged"
    horizon = at + timedelta(days=draw(st.integers(1, 10)))
    return record_history(facts, CONTRACTS, now=horizon), horizon


@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    histories(),
    st.sampled_from([CONTRACTS, BOOK]),
    st.randoms(use_true_random=False),
    st.lists(st.floats(0, 1), max_size=12),
)
def test_a_ledger_lookup_equals_the_fold_at_any_instant(
    case: Any, contracts: ContractSource, rng: random.Random, fractions: list[float]
) -> None:
    events, horizon = case
    shuffled = list(events)
    rng.shuffle(shuffled)
    ledger = incident_ledger(shuffled, contracts)
    version = BOOK.measuring_version(events[0].occurred_at).version if contracts is BOOK else None
    assert {i.contract_version for i in ledger} == {version}
    reported = events[0].occurred_at
    span_us = int((horizon - reported) / TINY)
    moments = {reported - TINY, reported, horizon}
    moments |= {reported + TINY * int(f * span_us) for f in fractions}
    for interval in ledger:
        moments |= {interval.start - TINY, interval.start, interval.start + TINY}
    for moment in sorted(moments):
        sla = incident_sla(events, contracts, moment)
        for metric in Metric:
            found = lookup(ledger, metric, moment)
            if sla is None:
                assert found is None, (moment, found)
                continue
            clock = sla.clocks.clocks[metric]
            assert found is not None, (moment, metric)
            got = (found.status, found.target_s, found.due_at)
            assert got == (clock.status, clock.target_s, clock.due_at), (moment, metric, found)
            timeline = sla.clocks.timeline
            assert found.priority == (clock.priority or timeline.priority)
            if moment == found.start:
                assert found.counted_us == clock.elapsed_us


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_intervals_tile_each_clock_from_the_report_on(case: Any) -> None:
    events, _ = case
    ledger = incident_ledger(events, CONTRACTS)
    for metric in Metric:
        rows = [r for r in ledger if r.metric is metric]
        assert rows[0].start == events[0].occurred_at
        assert rows[-1].end is None
        for before, after in itertools.pairwise(rows):
            assert before.end == after.start and before.start < after.start
            assert (before.status, before.priority, before.target_s, before.due_at) != (
                after.status, after.priority, after.target_s, after.due_at,
            )  # fmt: skip


def test_an_unreported_history_has_no_intervals() -> None:
    assert incident_ledger([], CONTRACTS) == []


@settings(
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(histories(), st.sampled_from([CONTRACTS, BOOK]), st.randoms(use_true_random=False))
def test_recomputing_from_the_new_events_on_equals_the_whole_ledger(
    case: Any, contracts: ContractSource, rng: random.Random
) -> None:
    """What the projection consumer does per batch: the intervals before the earliest new event
    are kept, the rest computed again, batch after batch. The consumer computes from the
    store's history, which always holds an incident's events 1..n (a late fact is recorded at
    the next position with an earlier `occurred_at`), so the batches are consecutive runs of
    positions; a history missing a position in the middle cannot exist (it could hold two
    resolutions with no reopening between them). Late facts: `test_ledger_live.py`."""
    events, _ = case
    arrival = sorted(events, key=lambda e: e.position)
    cuts = sorted(rng.sample(range(1, len(arrival) + 1), k=min(3, len(arrival))))
    seen: list[IncidentEvent] = []
    kept = incident_ledger([], contracts)
    start = 0
    for cut in cuts:
        batch = arrival[start:cut]
        start = cut
        if not batch:
            continue
        seen += batch
        since = min(e.occurred_at for e in batch)
        kept = incident_ledger(seen, contracts, since=since, kept=kept)
        assert kept == incident_ledger(seen, contracts)
