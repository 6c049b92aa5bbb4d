"""The incident list of the web API (`/v1/incidents`) and `sla --from-read-model` select their
incidents (the store's incident index, the read model's incident table) and fold only those:
for random histories recorded through the application and random filters, tokens and page
sizes, the pages put together equal the whole store's answer filtered afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slatrail.application.queries import read_model_histories
from slatrail.application.selection import open_histories, sla_answers
from slatrail.application.service import SlatrailApplication
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.infra.web.answers import Filters, incidents_page
from slatrail.infra.web.open_incidents import OpenIncidents
from slatrail.infra.web.tokens import Principal
from slatrail.infra.wire import decode
from slatrail.projections.read_models import STORE_SOURCE, TrackedEvent
from slatrail.projections.sla import sla_view
from tests.builders import line, reported_data, wire
from tests.hypothesis_profiles import examples
from tests.unit.test_selection_properties import (
    CONTRACTS,
    CUSTOMERS,
    NOW,
    T0,
    every,
    incident,
    recorded,
)


@dataclass
class Stores:
    """What `incidents_page` reads, as the composition root's `Container` gives it."""

    app: SlatrailApplication
    read_models: ReadModelStore

    def clock(self) -> datetime:
        return T0 + timedelta(days=500)

    def contracts_known_at(self, as_known_at: datetime | None) -> Any:
        return CONTRACTS


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def read_model_of(app: SlatrailApplication, tmp: Path) -> ReadModelStore:
    read_models = ReadModelStore(f"sqlite:///{tmp / f'read-{len(list(tmp.iterdir()))}.db'}")
    batch = [
        TrackedEvent(STORE_SOURCE, n, event)
        for n, event in enumerate((e for events in every(app) for e in events), start=1)
    ]
    read_models.apply(batch)
    return read_models


def whole_store(
    app: SlatrailApplication, principal: Principal, filters: Filters, as_of: datetime
) -> list[dict[str, Any]]:
    return [
        s.as_json()
        for s in sla_view(every(app), CONTRACTS, as_of)
        if principal.sees(s.clocks.timeline.customer)
        and (filters.customer is None or s.clocks.timeline.customer == filters.customer)
        and filters.keeps(s)
    ]


def all_pages(
    stores: Stores, principal: Principal, filters: Filters, as_of: datetime, limit: int,
    *, from_read_model: bool,
) -> list[dict[str, Any]]:  # fmt: skip
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        page = incidents_page(
            stores, principal, filters, as_of=as_of, as_known_at=None, limit=limit,  # type: ignore[arg-type]
            cursor=cursor, from_read_model=from_read_model,
        )  # fmt: skip
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=8).flatmap(
        lambda ns: st.tuples(*(incident(n) for n in range(len(ns))))
    ),
    st.integers(0, 24 * 330),
    st.sampled_from((None, None, "open", "awaiting_customer", "resolved")),
    st.sampled_from((None, None, *CUSTOMERS)),
    st.sampled_from((None, None, None, "met", "breached", "running", "pending")),
    st.sampled_from((None, None, None, "P2", "P1")),
    st.one_of(st.none(), st.none(), st.integers(0, 24 * 200)),
    st.one_of(st.none(), st.none(), st.integers(1, 24 * 200)),
    st.sampled_from(("admin", "viewer-one", "viewer-both")),
    st.integers(1, 4),
)
@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_listed_pages_equal_the_whole_store_answer_filtered(
    store: Path,
    incidents: tuple[list[dict[str, Any]], ...],
    hours: int,
    state: str | None,
    customer: str | None,
    status: str | None,
    priority: str | None,
    since_h: int | None,
    width_h: int | None,
    token: str,
    limit: int,
) -> None:
    app = recorded(store, list(incidents))
    read_models = read_model_of(app, store)
    try:
        stores = Stores(app, read_models)
        as_of = T0 + timedelta(hours=hours)
        since = None if since_h is None else T0 + timedelta(hours=since_h)
        until = None if width_h is None else (since or T0) + timedelta(hours=width_h)
        principal = {
            "admin": Principal("a", "admin", frozenset()),
            "viewer-one": Principal("v", "viewer", frozenset({CUSTOMERS[1]})),
            "viewer-both": Principal("w", "viewer", frozenset(CUSTOMERS)),
        }[token]
        if customer is not None and not principal.sees(customer):
            customer = None
        filters = Filters(customer, state, status, priority, since, until)
        want = whole_store(app, principal, filters, as_of)

        for from_read_model in (False, True):
            assert (
                all_pages(stores, principal, filters, as_of, limit, from_read_model=from_read_model)
                == want
            ), from_read_model
        # `sla --from-read-model`: the read model's selection, folded like the store's
        selected = read_model_histories(
            read_models, [customer], reported_by=as_of, since=since, until=until, chunk=2
        )
        assert [
            s.as_json() for s in sla_answers(selected, CONTRACTS, as_of, customer=customer)
        ] == [
            s.as_json()
            for s in sla_view(read_models.histories().values(), CONTRACTS, as_of, customer=customer)
            if (since is None or s.clocks.timeline.reported_at >= since)
            and (until is None or s.clocks.timeline.reported_at < until)
        ]
    finally:
        read_models.close()
        app.close()


class CountingLog:
    """The store's event log, noting from where it was read."""

    def __init__(self, app: SlatrailApplication) -> None:
        self.app = app
        self.starts: list[int] = []

    def all_events(self, *, start: int = 1, page: int = 2000) -> Iterator[tuple[int, Any]]:
        self.starts.append(start)
        return self.app.all_events(start=start, page=page)

    def incident_events(self, incident_id: str) -> list[Any]:
        return self.app.incident_events(incident_id)


def open_now(app: SlatrailApplication) -> tuple[int, list[list[Any]]] | None:
    head = app.recorder.max_notification_id() or 0
    histories = open_histories(app)
    return None if histories is None else (head, list(histories))


def board_state(incidents: OpenIncidents) -> dict[str, list[Any]]:
    while incidents.refresh():
        pass
    return {events[0].incident_id: events for events in incidents.histories()}


@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=8).flatmap(
        lambda ns: st.tuples(*(incident(n) for n in range(len(ns))))
    ),
    st.data(),
)
@settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_open_incidents_start_from_the_index_and_follow_the_log_alike(
    store: Path, incidents: tuple[list[dict[str, Any]], ...], data: st.DataObject
) -> None:
    app = recorded(store, list(incidents))
    try:
        head = app.recorder.max_notification_id() or 0
        from_log, from_index = CountingLog(app), CountingLog(app)
        whole, indexed = OpenIncidents(from_log), OpenIncidents(from_index, lambda: open_now(app))
        assert board_state(indexed) == board_state(whole)
        assert from_index.starts[0] == head + 1  # nothing before the head was read
        # then both follow what is recorded: resolutions, reopenings, new incidents
        later = NOW + timedelta(days=1)
        more = [
            wire(kind, later, {"resolution": "fixed"} if kind == "resolved" else {"reason": "r"},
                 incident_id=f"S-{n}", message_id=f"late-{n}-{kind}")
            for n in range(len(incidents))
            for kind in [data.draw(st.sampled_from(("resolved", "reopened", None)))]
            if kind is not None
        ]  # fmt: skip
        more.append(wire("reported", later, reported_data(customer=CUSTOMERS[0]),
                         incident_id="S-new"))  # fmt: skip
        app.record([decode(line(m)) for m in more], now=later)
        assert board_state(indexed) == board_state(whole)
        assert "S-new" in board_state(indexed)
    finally:
        app.close()
