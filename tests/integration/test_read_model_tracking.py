"""Read-model tracking on both backends: eventsourcing tracking records named per read model and
source, and a read-model database from before (its own `rm_tracking` table) adopted once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from slatrail.domain.model import GENESIS_HASH, EventType, IncidentEvent
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.projections.read_models import AUDIT, SLA, TrackedEvent, kafka_source

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
OLD_TRACKING = (
    "CREATE TABLE rm_tracking (read_model TEXT NOT NULL, source TEXT NOT NULL, "
    "position BIGINT NOT NULL, PRIMARY KEY (read_model, source))"
)
OLD_ROWS = [("sla", "incidents.events:0", 5), ("audit", "incidents.events:0", 5),
            ("audit", "store", 9)]  # fmt: skip


def event(incident_id: str) -> IncidentEvent:
    draft = IncidentEvent(
        incident_id=incident_id, position=1, type=EventType.REPORTED, occurred_at=T0,
        recorded_at=T0 + timedelta(minutes=1), actor="li.wei", source=None, message_id=incident_id,
        data={"title": "t", "priority": "P1", "customer": "acme"}, prev_hash=GENESIS_HASH, hash="",
    )  # fmt: skip
    return replace(draft, hash=draft.computed_hash())


class TrackingContract:
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    def run_sql(self, url: str, statements: list[str], rows: list[tuple[str, str, int]]) -> None:
        raise NotImplementedError

    def tables(self, url: str) -> set[str]:
        raise NotImplementedError

    @pytest.fixture
    def store(self, url: str) -> Iterator[ReadModelStore]:
        opened = ReadModelStore(url)
        yield opened
        opened.close()

    def test_each_read_model_and_partition_is_tracked_under_its_own_name(
        self, store: ReadModelStore
    ) -> None:
        p3, p1 = kafka_source("incidents.events", 3), kafka_source("incidents.events", 1)
        assert store.apply([TrackedEvent(p3, 0, event("A")), TrackedEvent(p3, 7, event("B"))]) == 4
        assert store.apply([TrackedEvent(p1, 2, event("C"))], read_models=[AUDIT]) == 1
        assert store.apply([TrackedEvent(p3, 7, event("D"))]) == 0
        assert store.positions(SLA) == {p3: 7}
        assert store.positions(AUDIT) == {p3: 7, p1: 2}
        store.reset([SLA])
        assert store.positions(SLA) == {}
        assert store.positions(AUDIT) == {p3: 7, p1: 2}

    def test_an_old_read_model_database_keeps_its_positions(self, url: str) -> None:
        first = ReadModelStore(url)  # the row tables, as an old database has them
        first.close()
        self.run_sql(url, [OLD_TRACKING], OLD_ROWS)
        store = ReadModelStore(url)
        try:
            assert store.positions(SLA) == {"incidents.events:0": 5}
            assert store.positions(AUDIT) == {"incidents.events:0": 5, "store": 9}
            source = kafka_source("incidents.events", 0)
            assert store.apply([TrackedEvent(source, 5, event("OLD"))]) == 0
            assert store.apply([TrackedEvent(source, 6, event("NEW"))]) == 2
        finally:
            store.close()
        assert "rm_tracking" not in self.tables(url)
        again = ReadModelStore(url)
        try:
            assert again.positions(AUDIT) == {"incidents.events:0": 6, "store": 9}
        finally:
            again.close()


class TestOnSQLite(TrackingContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'read.db'}"

    def _path(self, url: str) -> str:
        return url[len("sqlite:///") :]

    def run_sql(self, url: str, statements: list[str], rows: list[tuple[str, str, int]]) -> None:
        with closing(sqlite3.connect(self._path(url))) as db, db:
            for statement in statements:
                db.execute(statement)
            db.executemany("INSERT INTO rm_tracking VALUES (?, ?, ?)", rows)

    def tables(self, url: str) -> set[str]:
        with closing(sqlite3.connect(self._path(url))) as db:
            return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


class TestOnPostgreSQL(TrackingContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url

    def run_sql(self, url: str, statements: list[str], rows: list[tuple[str, str, int]]) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)
            with conn.cursor() as cursor:
                cursor.executemany("INSERT INTO rm_tracking VALUES (%s, %s, %s)", rows)

    def tables(self, url: str) -> set[str]:
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        return {str(r[0]) for r in rows}


def test_opening_a_postgresql_read_model_being_written_takes_no_table_lock(
    postgres_url: str,
) -> None:
    """Opening ran its schema statements again, and on existing tables those still lock them
    (ALTER … ADD COLUMN IF NOT EXISTS: ACCESS EXCLUSIVE) for the whole transaction: a reader
    opening the read model while `serve`'s projection consumer wrote the audit events and the
    ledger deadlocked with it. A complete schema is now left alone."""
    import threading

    ReadModelStore(postgres_url).close()  # the schema, once
    writer = psycopg.connect(postgres_url)
    try:
        writer.execute("LOCK TABLE rm_audit_events, rm_sla_ledger IN ROW EXCLUSIVE MODE")
        opened = threading.Event()

        def open_store() -> None:
            ReadModelStore(postgres_url).close()
            opened.set()

        opener = threading.Thread(target=open_store, daemon=True)
        opener.start()
        assert opened.wait(10), "opening the read model waited for the writer's locks"
    finally:
        writer.rollback()
        writer.close()
    opener.join(30)
