"""Restatements and what-ifs from the incident index, one customer at a time, equal the same
comparisons over the whole store: random histories whose events were recorded late, a
contract version recorded between the two knowledge instants, a draft contract, random months,
instants and customers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slatrail.application.selection import selected_restatements, selected_whatif
from slatrail.application.service import SlatrailApplication
from slatrail.domain.contract_version import SINCE_EVER, ContractBook
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from slatrail.projections.availability import Month
from slatrail.projections.restatements import restatements
from slatrail.projections.whatif import whatif
from tests.builders import CONTRACTS_TOML, contracts_from, line, reported_data, wire
from tests.hypothesis_profiles import examples

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER_TERMS = CONTRACTS_TOML.replace('P2 = { calendar = "always", response = "1h"',
                                     'P2 = { calendar = "always", response = "20m"')  # fmt: skip
# newco is contracted only from version 2: no report of it as known before that
WITH_NEWCOMER = LATER_TERMS + '\n[customers.newco]\ntier = "gold"\n'


@st.composite
def incident(draw: st.DrawFn, n: int) -> list[tuple[datetime, dict[str, Any]]]:
    """(recorded at, message) of one incident; a message may be recorded days late."""
    at = T0 + timedelta(hours=draw(st.integers(0, 24 * 40)))
    customer = draw(st.sampled_from(("acme", "dayco", "newco")))
    data = reported_data(customer=customer, priority=draw(st.sampled_from(("P1", "P3", "P2"))))
    if draw(st.booleans()):
        data["outage"] = True
    out = [(at, wire("reported", at, data, incident_id=f"R-{n}"))]
    for kind in ("acknowledged", "resolved")[: draw(st.integers(1, 2))]:
        at += timedelta(minutes=draw(st.sampled_from((5, 12, 40, 90, 300, 600))))  # targets
        extra = {"resolution": "fixed"} if kind == "resolved" else None
        late = timedelta(hours=draw(st.sampled_from((24 * 9, 0, 3))))
        out.append((at + late, wire(kind, at, extra, incident_id=f"R-{n}")))
    return out


def stores_per_example(count: int) -> Any:
    """`count` examples (under the `ci` profile), each recording a store of its own."""
    return settings(
        max_examples=examples(count),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def recorded(tmp: Path, incidents: list[list[tuple[datetime, dict[str, Any]]]]) -> Any:
    app = open_application(f"sqlite:///{tmp / f's-{len(list(tmp.iterdir()))}.db'}",
                           contracts_from(CONTRACTS_TOML))  # fmt: skip
    app.record_contracts(CONTRACTS_TOML, source="v1", effective_from=SINCE_EVER, actor="t",
                         reason="first", now=T0 - timedelta(days=1))  # fmt: skip
    app.record_contracts(WITH_NEWCOMER, source="v2", effective_from=T0 + timedelta(days=30),
                         actor="t", reason="second", now=T0 + timedelta(days=60))  # fmt: skip
    timed = [(at, m["occurred_at"], m) for i in incidents for at, m in i]
    for at, _, message in sorted(timed, key=lambda t: t[:2]):
        outcomes = app.record([decode(line(message))], now=at)
        assert outcomes[0].status in ("accepted", "rejected"), outcomes
    return app


def every(app: SlatrailApplication) -> list[list[Any]]:
    return list(app.histories().values())


@given(
    st.integers(1, 7).flatmap(lambda k: st.tuples(*(incident(n) for n in range(k)))),
    st.integers(0, 12),
    st.sampled_from((0, 24 * 20, 24 * 3)),
    st.sampled_from((0, 0, 0, -1, 1)),
    st.sampled_from((None, "acme", "newco")),
)
@stores_per_example(200)
def test_restatements_one_customer_at_a_time_equal_the_whole_store(
    store: Path,
    incidents: tuple[list[tuple[datetime, dict[str, Any]]], ...],
    known_hours: int,
    later_hours: int,
    month_offset: int,
    customer: str | None,
) -> None:
    app = recorded(store, list(incidents))
    try:
        book = app.contract_book()
        assert isinstance(book, ContractBook)
        # known some hours after the first incident was reported, its month and a neighbour
        reported = incidents[0][0][0]
        known_at = reported + timedelta(hours=known_hours)
        vs = None if later_hours == 0 else known_at + timedelta(hours=later_hours)
        months = [Month(reported.year, reported.month).shifted(month_offset)]
        as_of = known_at
        selected = selected_restatements(app, book, months, as_of, known_at, vs, customer=customer)
        try:
            whole = restatements(every(app), book, months, as_of, known_at, vs, customer=customer)
        except ValueError:  # a customer the later knowledge does not contract: nothing to compare
            assert customer is not None and (selected["figures"], selected["clocks"]) == ([], [])
        else:
            assert selected == whole
    finally:
        app.close()


def test_an_outage_that_looked_ongoing_then_restates_months_long_after_its_events(
    tmp_path: Path,
) -> None:
    """acme's outage began and ended in January; its resolution was recorded only in June. As
    known in May it was still down, so May's availability was lower than it is now: the
    incident is selected although every event of it occurred long before May (the state
    conditions of a current report would have left it out)."""
    began = T0 + timedelta(days=5)
    data = {**reported_data(customer="acme", priority="P1"), "outage": True}
    resolved = wire("resolved", began + timedelta(hours=2), {"resolution": "fixed"},
                    incident_id="OUT")  # fmt: skip
    app = recorded(tmp_path, [[
        (began, wire("reported", began, data, incident_id="OUT")),
        (T0 + timedelta(days=160), resolved),
    ]])  # fmt: skip
    try:
        book = app.contract_book()
        assert isinstance(book, ContractBook)
        known_at = T0 + timedelta(days=150)  # 2026-05-31: the resolution not recorded yet
        months = [Month(2026, 5)]
        found = selected_restatements(app, book, months, known_at, known_at, None)
        assert found == restatements(every(app), book, months, known_at, known_at, None)
        changed = {(f["customer"], f["figure"]) for f in found["figures"]}
        assert ("acme", "availability.percent") in changed
    finally:
        app.close()


@given(
    st.integers(1, 7).flatmap(lambda k: st.tuples(*(incident(n) for n in range(k)))),
    st.integers(0, 24 * 20),
    st.sampled_from((0, -1, 1, 2)),
    st.sampled_from((None, "acme", "dayco")),
    st.sampled_from((LATER_TERMS, WITH_NEWCOMER)),
)
@stores_per_example(100)
def test_whatif_one_customer_at_a_time_equals_the_whole_store(
    store: Path,
    incidents: tuple[list[tuple[datetime, dict[str, Any]]], ...],
    hours: int,
    month_offset: int,
    customer: str | None,
    draft_text: str,
) -> None:
    app = recorded(store, list(incidents))
    try:
        book = app.contract_book()
        assert isinstance(book, ContractBook)
        reported = incidents[0][0][0]
        as_of = reported + timedelta(hours=hours)
        months = [Month(reported.year, reported.month).shifted(month_offset)]
        draft = contracts_from(draft_text, "draft.toml")
        assert selected_whatif(app, book, draft, months, as_of, customer=customer) == whatif(
            every(app), book, draft, months, as_of, customer=customer
        )
    finally:
        app.close()
