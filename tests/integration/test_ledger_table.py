"""The materialised SLA ledger on both read-model backends: what is stored reads back exactly,
in report order, filtered by customer and window, a page at a time; a rebuild is not fresh
until it has finished."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from slatrail.application.ledger import overlaps
from slatrail.domain.contract_version import ContractBook, ContractVersion
from slatrail.domain.model import IncidentEvent
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.projections.ledger import LedgerInterval, clock_statuses, incident_ledger
from slatrail.projections.read_models import STORE_SOURCE, TrackedEvent
from tests.builders import CONTRACTS_TOML, IncidentFactory, contracts_from, utc

pytestmark = pytest.mark.integration

CONTRACTS = contracts_from()
V2 = CONTRACTS_TOML.replace('response = "30m"', 'response = "45m"', 1)  # a P1 responds later


def history() -> list[list[IncidentEvent]]:
    incidents = IncidentFactory(CONTRACTS)
    incidents.report("I-2", "2026-03-02T10:00:00Z", customer="dayco", priority="P1")
    incidents.report("I-1", "2026-03-02T08:00:00Z", customer="acme", priority="P3")
    incidents.then("I-1", "acknowledged", "2026-03-02T09:30:00Z")
    incidents.then("I-1", "awaiting_customer", "2026-03-02T11:00:00Z", reason="logs")
    incidents.then("I-1", "customer_responded", "2026-03-03T11:00:00Z")
    incidents.then("I-2", "resolved", "2026-03-02T13:00:00Z", resolution="fixed")
    incidents.then("I-1", "priority_changed", "2026-03-02T10:00:00Z", "2026-03-03T12:00:00Z",
                   priority="P2", reason="late: told after the customer responded")  # fmt: skip
    return incidents.histories()


def ledgers() -> list[tuple[datetime, list[LedgerInterval]]]:
    histories = sorted(history(), key=lambda h: h[0].occurred_at)
    return [(h[0].occurred_at, incident_ledger(h, CONTRACTS)) for h in histories]


class LedgerTableContract:
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def store(self, url: str) -> Iterator[ReadModelStore]:
        opened = ReadModelStore(url)
        yield opened
        opened.close()

    def test_stored_intervals_read_back_exactly_in_report_order(
        self, store: ReadModelStore
    ) -> None:
        expected = [i for _, intervals in ledgers() for i in intervals]
        assert store.ledger_position() is None
        assert store.rebuild_ledger(ledgers(), 42, 1) == len(expected)
        assert (store.ledger_position(), store.ledger_version()) == (42, 1)
        assert store.ledger_contiguous() == 42  # everything up to it is in the rebuilt table
        assert list(store.ledger_intervals(page=3)) == expected
        start, end = utc(2026, 3, 2, 11, 30), utc(2026, 3, 2, 12, 0)
        window = [i for i in expected if i.customer == "acme" and overlaps(i, start, end)]
        assert window and len(window) < len([i for i in expected if i.customer == "acme"])
        got = store.ledger_intervals(customer="acme", start=start, end=end, page=2)
        assert list(got) == window

    def test_an_unfinished_rebuild_is_not_fresh(self, store: ReadModelStore) -> None:
        store.rebuild_ledger(ledgers(), 7, 1)

        def failing() -> Iterator[tuple[datetime, list[LedgerInterval]]]:
            yield from ledgers()[:1]
            raise RuntimeError("interrupted")

        with pytest.raises(RuntimeError):
            store.rebuild_ledger(failing(), 9, 1)
        assert store.ledger_position() is None and store.ledger_version() is None

    def test_applied_batches_keep_the_ledger_and_a_new_version_re_measures(
        self, store: ReadModelStore
    ) -> None:
        histories = sorted(history(), key=lambda h: h[0].occurred_at)
        events = sorted((e for h in histories for e in h), key=lambda e: e.recorded_at)
        batch = [TrackedEvent(STORE_SOURCE, n, e) for n, e in enumerate(events, start=1)]
        v1 = ContractVersion.unrecorded(CONTRACTS, CONTRACTS_TOML, utc(2026, 3, 1))
        book = ContractBook((v1,))
        for start in range(0, len(batch), 2):  # a late fact (I-1's) lands in a later batch
            part = batch[start : start + 2]
            store.apply(part, contracts=book, notification=part[-1].position)
        expected = [i for h in histories for i in incident_ledger(h, book)]
        assert list(store.ledger_intervals()) == expected
        assert (store.ledger_position(), store.ledger_version()) == (len(batch), 1)
        # the store's incident notifications: 1 … len(batch), and one (len + 1) not applied
        recorded = list(range(1, len(batch) + 2))

        def incident_notifications(start: int, stop: int, limit: int) -> list[int]:
            return [n for n in recorded if start <= n <= stop][:limit]

        assert store.ledger_contiguous() == 0  # fed from the start
        assert store.ledger_reach(incident_notifications) == len(batch)
        assert store.ledger_reach(incident_notifications, limit=2) == 2
        assert store.close_ledger_gaps(incident_notifications, limit=2) == 2
        assert store.close_ledger_gaps(incident_notifications) == len(batch)
        assert store.ledger_contiguous() == len(batch)
        v2 = replace(v1, version=2, contracts=contracts_from(V2), effective_from=utc(2026, 3, 2, 9))
        book = ContractBook((v1, v2))
        assert store.remeasure(book) == 1  # I-2 only (I-1 was reported before 09:00)
        assert store.ledger_version() == 2
        assert list(store.ledger_intervals()) == [
            i for h in histories for i in incident_ledger(h, book)
        ]
        at = utc(2026, 3, 2, 10, 30)
        counted = Counter(s for h in histories for s in clock_statuses(h, book, at))
        want = sorted((c, str(m), str(s), n) for (c, m, s), n in counted.items())
        assert sorted(store.ledger_status(at)) == want  # one GROUP BY query
        assert sorted(store.ledger_status(at, customer="dayco")) == [
            row for row in want if row[0] == "dayco"
        ]


class TestOnSQLite(LedgerTableContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'read.db'}"


class TestOnPostgreSQL(LedgerTableContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
