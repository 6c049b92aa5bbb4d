"""Read models track what they applied with eventsourcing's own tracking records: one tracking
name per read model and source (`sla@incidents.events:3`), written in the rows' transaction;
a read-model database from before (its own `rm_tracking` table) is adopted once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from slatrail.domain.model import GENESIS_HASH, EventType, IncidentEvent
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.projections.read_models import AUDIT, SLA, TrackedEvent, kafka_source, tracking_name
from tests.builders import utc

T0 = utc(2026, 3, 2, 9)
TOPIC = "incidents.events"


def event(incident_id: str, position: int = 1) -> IncidentEvent:
    draft = IncidentEvent(
        incident_id=incident_id, position=position, type=EventType.REPORTED, occurred_at=T0,
        recorded_at=T0 + timedelta(minutes=1), actor="li.wei", source=None, message_id=incident_id,
        data={"title": "t", "priority": "P1", "customer": "acme"}, prev_hash=GENESIS_HASH, hash="",
    )  # fmt: skip
    from dataclasses import replace

    return replace(draft, hash=draft.computed_hash())


def library_tracking(path: Path, name: str) -> int | None:
    """The position as eventsourcing's own SQLite tracking recorder reads it."""
    datastore = SQLiteDatastore(str(path))
    try:
        return SQLiteTrackingRecorder(datastore).max_tracking_id(name)
    finally:
        datastore.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "read.db"


@pytest.fixture
def store(path: Path) -> Iterator[ReadModelStore]:
    opened = ReadModelStore(f"sqlite:///{path}")
    yield opened
    opened.close()


def test_each_read_model_and_partition_has_its_own_eventsourcing_tracking_name(
    store: ReadModelStore, path: Path
) -> None:
    source = kafka_source(TOPIC, 3)
    assert tracking_name(SLA, source) == "sla@incidents.events:3"
    store.apply([TrackedEvent(source, 0, event("A")), TrackedEvent(source, 7, event("B"))])
    store.apply([TrackedEvent(kafka_source(TOPIC, 1), 2, event("C"))], read_models=[AUDIT])
    assert library_tracking(path, "sla@incidents.events:3") == 7
    assert library_tracking(path, "audit@incidents.events:3") == 7
    assert library_tracking(path, "audit@incidents.events:1") == 2
    assert library_tracking(path, "sla@incidents.events:1") is None
    assert store.positions(AUDIT) == {"incidents.events:3": 7, "incidents.events:1": 2}
    assert store.position(SLA, source) == 7


def test_an_event_at_or_below_the_tracked_position_is_not_applied_again(
    store: ReadModelStore,
) -> None:
    source = kafka_source(TOPIC, 0)
    assert store.apply([TrackedEvent(source, 4, event("A"))], read_models=[AUDIT]) == 1
    assert store.apply([TrackedEvent(source, 4, event("B"))], read_models=[AUDIT]) == 0
    assert store.apply([TrackedEvent(source, 3, event("C"))], read_models=[AUDIT]) == 0
    assert store.counts(AUDIT) == (1, 1)


def test_rows_and_tracking_are_one_transaction(
    store: ReadModelStore, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import slatrail.infra.read_model_store as module

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("crash between rows and tracking")

    monkeypatch.setattr(module, "Tracking", broken)
    with pytest.raises(RuntimeError):
        store.apply([TrackedEvent("store", 1, event("A"))])
    assert store.counts(AUDIT) == (0, 0)
    assert store.positions(AUDIT) == {}


def test_reset_forgets_only_that_read_models_tracking(store: ReadModelStore, path: Path) -> None:
    store.apply([TrackedEvent("store", 5, event("A"))])
    store.reset([SLA])
    assert store.positions(SLA) == {}
    assert store.counts(SLA) == (0, 0)
    assert store.positions(AUDIT) == {"store": 5}
    assert library_tracking(path, "__migration__") == 1  # the library's own record is kept


OLD_SCHEMA = [
    "CREATE TABLE rm_tracking (read_model TEXT NOT NULL, source TEXT NOT NULL, "
    "position INTEGER NOT NULL, PRIMARY KEY (read_model, source))",
    *(
        f"CREATE TABLE {name} (incident_id TEXT NOT NULL, position INTEGER NOT NULL, "
        "type TEXT NOT NULL, occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL, "
        "actor TEXT NOT NULL, source TEXT, message_id TEXT NOT NULL, data TEXT NOT NULL, "
        "prev_hash TEXT NOT NULL, hash TEXT NOT NULL, redrive TEXT, "
        "PRIMARY KEY (incident_id, position))"
        for name in ("rm_audit_events", "rm_sla_events")
    ),
    "CREATE TABLE rm_sla_incidents (incident_id TEXT PRIMARY KEY, customer TEXT NOT NULL, "
    "reported_at TEXT NOT NULL)",
]


def test_a_read_model_database_from_before_keeps_its_positions_as_tracking_records(
    path: Path,
) -> None:
    with sqlite3.connect(path) as db:
        for statement in OLD_SCHEMA:
            db.execute(statement)
        db.executemany(
            "INSERT INTO rm_tracking VALUES (?, ?, ?)",
            [("sla", "incidents.events:0", 5), ("audit", "incidents.events:0", 5),
             ("audit", "store", 9)],
        )  # fmt: skip
    db.close()
    store = ReadModelStore(f"sqlite:///{path}")
    try:
        assert store.positions(SLA) == {"incidents.events:0": 5}
        assert store.positions(AUDIT) == {"incidents.events:0": 5, "store": 9}
        source = kafka_source(TOPIC, 0)
        assert store.apply([TrackedEvent(source, 5, event("OLD"))]) == 0  # already applied
        assert store.apply([TrackedEvent(source, 6, event("NEW"))]) == 2
    finally:
        store.close()
    assert library_tracking(path, "audit@store") == 9
    assert library_tracking(path, "sla@incidents.events:0") == 6
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert "rm_tracking" not in tables
    again = ReadModelStore(f"sqlite:///{path}")  # adopted once: a second open changes nothing
    try:
        assert again.positions(AUDIT) == {"incidents.events:0": 6, "store": 9}
    finally:
        again.close()
