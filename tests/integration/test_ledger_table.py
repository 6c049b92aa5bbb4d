"""The materialised SLA ledger on both read-model backends: what is stored reads back exactly,
in report order, filtered by customer and window, a page at a time; a rebuild is not fresh
until it has finished."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from slatrail.application.ledger import overlaps
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.projections.ledger import LedgerInterval, incident_ledger
from tests.builders import IncidentFactory, contracts_from, utc

pytestmark = pytest.mark.integration

CONTRACTS = contracts_from()


def ledgers() -> list[tuple[datetime, list[LedgerInterval]]]:
    incidents = IncidentFactory(CONTRACTS)
    incidents.report("I-2", "2026-03-02T10:00:00Z", customer="dayco", priority="P1")
    incidents.report("I-1", "2026-03-02T08:00:00Z", customer="acme", priority="P3")
    incidents.then("I-1", "acknowledged", "2026-03-02T09:30:00Z")
    incidents.then("I-1", "awaiting_customer", "2026-03-02T11:00:00Z", reason="logs")
    incidents.then("I-1", "customer_responded", "2026-03-03T11:00:00Z")
    incidents.then("I-2", "resolved", "2026-03-02T13:00:00Z", resolution="fixed")
    histories = sorted(incidents.histories(), key=lambda h: h[0].occurred_at)
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
        assert store.rebuild_ledger(ledgers(), 42) == len(expected)
        assert store.ledger_position() == 42
        assert list(store.ledger_intervals(page=3)) == expected
        start, end = utc(2026, 3, 2, 11, 30), utc(2026, 3, 2, 12, 0)
        window = [i for i in expected if i.customer == "acme" and overlaps(i, start, end)]
        assert window and len(window) < len([i for i in expected if i.customer == "acme"])
        got = store.ledger_intervals(customer="acme", start=start, end=end, page=2)
        assert list(got) == window

    def test_an_unfinished_rebuild_is_not_fresh(self, store: ReadModelStore) -> None:
        store.rebuild_ledger(ledgers(), 7)

        def failing() -> Iterator[tuple[datetime, list[LedgerInterval]]]:
            yield from ledgers()[:1]
            raise RuntimeError("interrupted")

        with pytest.raises(RuntimeError):
            store.rebuild_ledger(failing(), 9)
        assert store.ledger_position() is None


class TestOnSQLite(LedgerTableContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'read.db'}"


class TestOnPostgreSQL(LedgerTableContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
