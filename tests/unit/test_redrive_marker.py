"""The "came by redrive" marker on a recorded event (docs/redrive.md, docs/audit.md §2).

`redrive` is hashed only when set: every other event hashes byte for byte as before the field
existed, a redriven one carries it through every copy (store, envelope, read models, export,
audit) and cannot lose or gain it unseen."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from slatrail.domain.model import GENESIS_HASH, EventType, IncidentEvent, canonical_json
from slatrail.infra.exports import event_record
from slatrail.infra.kafka_envelope import decode_envelope, encode_envelope
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from slatrail.projections.audit import audit_trail
from slatrail.projections.read_models import AUDIT, SLA, TrackedEvent
from slatrail.projections.verification import summarise_rows, verify_chain
from tests.builders import contracts_from, line, reported_data, utc, wire

T0 = utc(2026, 3, 2, 9)
MIN = timedelta(minutes=1)
REF = "incidents.rejected/2/41"


def pinned(**extra: str) -> IncidentEvent:
    return IncidentEvent(
        incident_id="INC-7", position=1, type=EventType.REPORTED, occurred_at=T0,
        recorded_at=T0 + MIN, actor="li.wei", source=None, message_id="m-1",
        data={"title": "t", "priority": "P1", "customer": "acme"},
        prev_hash=GENESIS_HASH, hash="", **extra,
    )  # fmt: skip


def test_an_event_not_redriven_hashes_exactly_the_nine_members_as_before() -> None:
    event = pinned()
    assert "redrive" not in event.canonical_fields()
    nine = (
        b'{"actor":"li.wei","data":{"customer":"acme","priority":"P1","title":"t"},'
        b'"incident_id":"INC-7","message_id":"m-1","occurred_at":"2026-03-02T09:00:00Z",'
        b'"position":1,"recorded_at":"2026-03-02T09:01:00Z","source":null,"type":"reported"}'
    )
    assert canonical_json(event.canonical_fields()) == nine
    assert event.computed_hash() == hashlib.sha256(GENESIS_HASH.encode() + nine).hexdigest()


def test_a_redriven_event_hashes_its_marker_as_a_tenth_member() -> None:
    event = pinned(redrive=REF)
    text = canonical_json(event.canonical_fields()).decode()
    assert text.endswith(f'"recorded_at":"2026-03-02T09:01:00Z","redrive":"{REF}",'
                         '"source":null,"type":"reported"}')  # fmt: skip
    assert event.computed_hash() != pinned().computed_hash()


@pytest.fixture
def app(tmp_path: Path):  # type: ignore[no-untyped-def]
    application = open_application(f"sqlite:///{tmp_path / 's.db'}", contracts_from())
    yield application
    application.close()


def messages() -> list[bytes]:
    return [
        line(wire("reported", T0, reported_data(priority="P1"), message_id="r")),
        line(wire("acknowledged", T0 + 10 * MIN, message_id="a")),
    ]


def test_record_with_redrive_references_marks_the_events_and_chains_them(app) -> None:  # type: ignore[no-untyped-def]
    batch = [decode(raw) for raw in messages()]
    outcomes = app.record(batch, now=T0 + 20 * MIN, redrive=[None, REF])
    assert [o.status for o in outcomes] == ["accepted", "accepted"]
    events = app.incident_events("INC-1")
    assert [e.redrive for e in events] == [None, REF]
    assert all(e.computed_hash() == e.hash for e in events)
    assert verify_chain(events) == []
    # The stored event without the marker no longer verifies: the marker is covered.
    assert replace(events[1], redrive=None).computed_hash() != events[1].hash


def test_redriving_what_is_recorded_is_a_duplicate_not_a_conflict(app) -> None:  # type: ignore[no-untyped-def]
    batch = [decode(raw) for raw in messages()]
    app.record(batch, now=T0 + 20 * MIN)
    again = app.record([decode(raw) for raw in messages()], now=T0 + 30 * MIN, redrive=[REF, REF])
    assert [o.status for o in again] == ["duplicate", "duplicate"]
    assert [e.redrive for e in app.incident_events("INC-1")] == [None, None]


def test_a_batch_retried_singly_after_a_conflict_keeps_each_reference(
    app,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    app.record([decode(messages()[0])], now=T0 + 20 * MIN)  # `app` caches the incident at 1
    other = open_application(f"sqlite:///{tmp_path / 's.db'}", contracts_from())
    try:  # another writer goes on with the incident: `app`'s cached copy is stale
        other.record([decode(messages()[1])], now=T0 + 21 * MIN)
    finally:
        other.close()
    late = line(wire("resolved", T0 + 30 * MIN, {"resolution": "fixed"}, message_id="z"))
    outcomes = app.record(
        [decode(messages()[1]), decode(late)], now=T0 + 40 * MIN, redrive=["f:1", "f:2"]
    )
    assert [o.status for o in outcomes] == ["duplicate", "accepted"]
    events = app.incident_events("INC-1")
    assert [(e.message_id, e.redrive) for e in events] == [("r", None), ("a", None), ("z", "f:2")]
    assert verify_chain(events) == []


def test_one_reference_per_message_is_required(app) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="one redrive reference per message"):
        app.record([decode(raw) for raw in messages()], now=T0, redrive=[REF])


def test_the_marker_travels_through_envelope_read_models_export_and_audit(app) -> None:  # type: ignore[no-untyped-def]
    app.record([decode(raw) for raw in messages()], now=T0 + 20 * MIN, redrive=[None, REF])
    events = app.incident_events("INC-1")
    # incidents.events envelope: only a redriven event carries the member.
    bodies = [json.loads(encode_envelope(n, e)) for n, e in enumerate(events, 1)]
    assert "redrive" not in bodies[0] and bodies[1]["redrive"] == REF
    assert [decode_envelope(encode_envelope(n, e))[1] for n, e in enumerate(events, 1)] == events
    # Read models: stored, read back equal, and their rows verify through the chain.
    store = ReadModelStore("sqlite:///:memory:")
    try:
        store.apply([TrackedEvent("store", n, e) for n, e in enumerate(events, 1)])
        assert store.incident_events("INC-1", AUDIT) == events
        assert store.histories(SLA)["INC-1"] == events
        summary = summarise_rows([(AUDIT, store.iter_rows(AUDIT), None)])[0]
        assert summary.copies["INC-1"].problem is None
        assert summary.copies["INC-1"].hash == events[-1].hash
    finally:
        store.close()
    # Export: the hashed members, the marker among them only when set.
    records = [event_record(e) for e in events]
    assert "redrive" not in records[0] and records[1]["redrive"] == REF
    # Audit trail (JSON).
    trail = audit_trail(events)
    assert "redrive" not in trail[0] and trail[1]["redrive"] == REF


def test_a_read_model_row_whose_marker_was_removed_no_longer_verifies(app) -> None:  # type: ignore[no-untyped-def]
    app.record([decode(raw) for raw in messages()], now=T0 + 20 * MIN, redrive=[None, REF])
    events = app.incident_events("INC-1")
    rows = [tuple(r) for r in _rows(events)]
    rows[1] = (*rows[1][:11], None)
    summary = summarise_rows([(AUDIT, rows, None)])[0]
    assert summary.copies["INC-1"].problem == "position 2 does not hash to its stored hash"


def _rows(events: list[IncidentEvent]) -> list[tuple[object, ...]]:
    store = ReadModelStore("sqlite:///:memory:")
    try:
        store.apply([TrackedEvent("store", n, e) for n, e in enumerate(events, 1)])
        return list(store.iter_rows(AUDIT))
    finally:
        store.close()


OLD_TABLE = (
    "CREATE TABLE {name} (incident_id TEXT NOT NULL, position INTEGER NOT NULL, "
    "type TEXT NOT NULL, occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL, "
    "actor TEXT NOT NULL, source TEXT, message_id TEXT NOT NULL, data TEXT NOT NULL, "
    "prev_hash TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (incident_id, position))"
)


def test_a_read_model_database_from_before_the_marker_gets_the_column(
    app,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    path = tmp_path / "old-read.db"
    with sqlite3.connect(path) as db:
        for name in ("rm_audit_events", "rm_sla_events"):
            db.execute(OLD_TABLE.format(name=name))
        db.execute(
            "INSERT INTO rm_audit_events VALUES "
            "('OLD', 1, 'reported', '2026-03-02T09:00:00Z', '2026-03-02T09:00:00Z', 'x', NULL, "
            "'m', '{}', ?, 'h')",
            (GENESIS_HASH,),
        )
    db.close()
    app.record([decode(raw) for raw in messages()], now=T0 + 20 * MIN, redrive=[None, REF])
    events = app.incident_events("INC-1")
    store = ReadModelStore(f"sqlite:///{path}")
    try:
        assert store.incident_events("OLD", AUDIT)[0].redrive is None
        store.apply([TrackedEvent("store", n, e) for n, e in enumerate(events, 1)])
        assert store.incident_events("INC-1", AUDIT) == events
    finally:
        store.close()
    again = ReadModelStore(f"sqlite:///{path}")  # a second open does not add it twice
    again.close()
