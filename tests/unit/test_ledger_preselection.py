"""`sla --status S --as-of T` pre-selected from a current SLA ledger table answers exactly what
the incident index's selection answers: the table only excludes, the fold still decides."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slatrail.application.selection import (
    histories_of_ids,
    selected_histories,
    sla_answers,
    sla_query,
)
from slatrail.domain.contract_version import ContractBook, ContractVersion
from slatrail.infra.ledger_check import freshness
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.projections.read_models import STORE_SOURCE, TrackedEvent
from tests.builders import CONTRACTS_TOML
from tests.hypothesis_profiles import examples
from tests.unit.test_selection_properties import CONTRACTS, CUSTOMERS, T0, incident, recorded

BOOK = ContractBook((ContractVersion.unrecorded(CONTRACTS, CONTRACTS_TOML, T0),))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=8).flatmap(
        lambda ns: st.tuples(*(incident(n) for n in range(len(ns))))
    ),
    st.integers(0, 24 * 330),
    st.sampled_from(("met", "breached", "running", "at_risk", "pending", "not_applicable")),
    st.sampled_from((None, *CUSTOMERS)),
    st.sampled_from((None, "open", "resolved")),
    st.sampled_from((None, 24 * 100)),
)
@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_ledger_preselected_answers_equal_the_unselected_ones(
    store: Path,
    incidents: tuple[list[dict[str, Any]], ...],
    hours: int,
    status: str,
    customer: str | None,
    state: str | None,
    since_hours: int | None,
) -> None:
    app = recorded(store, list(incidents))
    read_models = ReadModelStore(f"sqlite:///{store / f'read-{len(list(store.iterdir()))}.db'}")
    try:
        events = [TrackedEvent(STORE_SOURCE, n, e) for n, e in app.all_events()]
        for start in range(0, len(events), 5):  # several batches, as the consumer applies them
            part = events[start : start + 5]
            read_models.apply(part, contracts=BOOK, notification=part[-1].position)
        assert freshness(read_models, app, BOOK).current
        as_of = T0 + timedelta(hours=hours)
        since = None if since_hours is None else T0 + timedelta(hours=since_hours)
        options: dict[str, Any] = {"customer": customer, "state": state, "status": status}
        query = sla_query(
            as_of=as_of, as_known_at=None, customer=customer, state=state, since=since
        )
        unselected = [
            s.as_json() for s in sla_answers(selected_histories(app, query), BOOK, as_of, **options)
        ]
        ids = list(read_models.ledger_incidents(status, as_of, customer=customer, since=since))
        preselected = [
            s.as_json()
            for s in sla_answers(histories_of_ids(app, ids, chunk=3), BOOK, as_of, **options)
        ]
        assert preselected == unselected
        # without the state option to narrow it, the table names exactly the answer
        if state is None:
            assert ids == [s["incident_id"] for s in unselected]
    finally:
        read_models.close()
        app.close()
