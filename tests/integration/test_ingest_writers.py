"""The record path's writes on real SQLite and PostgreSQL: two writers sharing a store record
every message once, and the PostgreSQL recorder's own insert (binary arrays instead of the
library's composite values) stores what the library would, in the order given."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from slatrail.application.service import INCIDENT_TOPICS, SlatrailApplication
from slatrail.domain.model import receipt_uuid
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from slatrail.projections.incident_index import IndexEntry, IndexQuery
from tests.builders import contracts_from, line, reported_data, wire

T0 = datetime(2026, 9, 1, 8, tzinfo=UTC)
NOW = T0 + timedelta(days=30)


def send(app: SlatrailApplication, *messages: dict[str, Any]) -> list[str]:
    return [str(o.status) for o in app.record([decode(line(m)) for m in messages], now=NOW)]


def stored_counts(app: SlatrailApplication) -> tuple[Counter[str], int]:
    """(message_id → number of incident events carrying it, number of receipts)."""
    events: Counter[str] = Counter()
    receipts = 0
    position = 1
    while notifications := app.recorder.select_notifications(position, 500):
        for notification in notifications:
            event: Any = app.mapper.to_domain_event(notification)
            if notification.topic in INCIDENT_TOPICS:
                events[event.message_id] += 1
            else:
                receipts += notification.topic.endswith("MessageReceipt.Received")
        position = notifications[-1].id + 1
    return events, receipts


def test_two_writers_with_stale_caches_record_a_message_once(store_url: str) -> None:
    """A and B both hold L-1 (version 1). B records an acknowledgement; A, from its cache,
    records the same message (accepted there, refused by the store: the batch is redone) and
    a message_id B already used for another incident (a conflict, not a second record)."""
    contracts = contracts_from()
    a = open_application(store_url, contracts)
    b = open_application(store_url, contracts)
    try:
        report = wire("reported", T0, reported_data(), incident_id="L-1")
        assert send(a, report) == ["accepted"]
        assert send(b, report) == ["duplicate"]  # B now holds L-1 too
        ack = wire("acknowledged", T0 + timedelta(minutes=5), incident_id="L-1")
        shared_id = wire("reported", T0, reported_data(), incident_id="L-2", message_id="M-9")
        other = wire("reported", T0, reported_data(), incident_id="L-3", message_id="M-9")
        assert send(b, ack, shared_id) == ["accepted", "accepted"]
        later = wire("reported", T0, reported_data(), incident_id="L-4")
        assert send(a, ack, other, later) == ["duplicate", "rejected", "accepted"]
        events, receipts = stored_counts(a)
        assert set(events.values()) == {1} and receipts == len(events) == 4
        assert [e.position for e in a.incident_events("L-1")] == [1, 2]
        assert a.incident_events("L-3") == []
        ids = a.select_incident_ids(IndexQuery())
        assert sorted(ids or ()) == ["L-1", "L-2", "L-4"]
    finally:
        a.close()
        b.close()


def test_two_writers_racing_on_the_same_messages_record_each_once(store_url: str) -> None:
    """Both writers record the same 30 incidents' messages at the same time, in batches:
    each message is accepted by exactly one of them, a duplicate for the other."""
    contracts = contracts_from()
    messages = [
        m
        for n in range(30)
        for m in (
            wire("reported", T0 + timedelta(minutes=n), reported_data(), incident_id=f"R-{n}"),
            wire("acknowledged", T0 + timedelta(minutes=n + 1), incident_id=f"R-{n}"),
        )
    ]
    writers = [open_application(store_url, contracts) for _ in range(2)]
    statuses: list[list[str]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(k: int) -> None:
        try:
            start.wait()
            for first in range(0, len(messages), 10):
                statuses[k] += send(writers[k], *messages[first : first + 10])
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors
        for n, pair in enumerate(zip(*statuses, strict=True)):
            assert sorted(pair) == ["accepted", "duplicate"], (n, pair)
        events, receipts = stored_counts(writers[0])
        assert len(events) == receipts == len(messages) and set(events.values()) == {1}
    finally:
        for writer in writers:
            writer.close()


def test_postgres_events_are_stored_as_the_library_stores_them(postgres_url: str) -> None:
    """Arbitrary bytes (every byte value, a backslash, quotes, a NUL) and topics stored through
    the recorder's binary-array insert read back unchanged, with notification ids in the order
    given; the library's composite dumping is not used."""
    app = open_application(postgres_url, contracts_from())
    try:
        recorder: Any = app.recorder

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the library's composite values were built")

        recorder.construct_pg_stored_event = refuse
        stored = [
            StoredEvent(uuid4(), 1, "domain.incident:Incident.Reported", bytes(range(256))),
            StoredEvent(uuid4(), 1, "topic with 'quotes' \"and\" \\ ü", b'\\x00{"a":"\\\\"}\x00'),
            StoredEvent(receipt_uuid("m"), 1, "domain.receipt:MessageReceipt.Received", b""),
        ]
        ids = recorder.insert_events(stored)
        assert ids == sorted(ids) and len(set(ids)) == 3
        back = recorder.select_notifications(ids[0], 10)
        assert [n.id for n in back] == ids
        assert [(n.originator_id, n.originator_version, n.topic, n.state) for n in back] == [
            (s.originator_id, s.originator_version, s.topic, s.state) for s in stored
        ]
        with pytest.raises(Exception, match="duplicate key"):  # the key still refuses a repeat
            recorder.insert_events(stored[2:])
    finally:
        app.close()


def test_postgres_index_rows_are_upserted_in_one_statement_or_merged(postgres_url: str) -> None:
    """Rows with NULL columns are written by the one-statement upsert; the same incident twice
    in one call is merged as two upserts would merge it."""
    app = open_application(postgres_url, contracts_from())
    try:
        recorder: Any = app.recorder
        first = IndexEntry(
            incident_id="X-1", customer="acme", reported_at=T0, starts_at=T0,
            last_occurred_at=T0, open=True, priority=None, resolved_at=None, postmortem_at=None,
        )  # fmt: skip
        second = IndexEntry(
            incident_id="X-2", customer="dayco", reported_at=T0, starts_at=T0,
            last_occurred_at=T0 + timedelta(hours=1), open=False, priority="P2",
            resolved_at=T0 + timedelta(hours=1), postmortem_at=None,
        )  # fmt: skip
        recorder.replace_index([first, second])
        assert list(recorder.index_entries()) == [first, second]
        earlier = IndexEntry(
            incident_id="X-1", customer="acme", reported_at=T0,
            starts_at=T0 - timedelta(hours=2), last_occurred_at=T0 + timedelta(hours=3),
            open=False, priority="P1", resolved_at=T0 + timedelta(hours=3), postmortem_at=None,
        )  # fmt: skip
        recorder.replace_index([first, earlier])
        assert list(recorder.index_entries()) == [earlier]
    finally:
        app.close()


def test_postgres_index_is_kept_whatever_the_environment_asks_of_the_library(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """eventsourcing's stored-procedure insert (POSTGRES_ENABLE_DB_FUNCTIONS) would skip the
    recorder that writes the index rows: the store's environment turns it off."""
    monkeypatch.setenv("POSTGRES_ENABLE_DB_FUNCTIONS", "y")
    app = open_application(postgres_url, contracts_from())
    try:
        assert send(app, wire("reported", T0, reported_data(), incident_id="F-1")) == ["accepted"]
        assert list(app.select_incident_ids(IndexQuery()) or ()) == ["F-1"]
    finally:
        app.close()


def _stream_across_batches() -> list[dict[str, Any] | str]:
    """4,600 lines for `slatrail ingest` (batches of 2,000): new incidents, their next steps in
    the next batch, repeats and refusals on both sides of each batch boundary."""
    out: list[dict[str, Any] | str] = []
    for n in range(1_150):
        at = T0 + timedelta(minutes=n)
        out.append(wire("reported", at, reported_data(), incident_id=f"W-{n}"))
        if n % 50 == 49:
            out.append("{torn")
    for n in range(1_150):
        at = T0 + timedelta(minutes=n + 5)
        out.append(wire("acknowledged", at, incident_id=f"W-{n}"))
        if n % 7 == 0:
            out.append(wire("reported", at, reported_data(), incident_id=f"W-{n}"))  # again
        if n % 9 == 0:
            out.append(wire("reopened", at, {"reason": "not resolved"}, incident_id=f"W-{n}"))
    reused = wire("acknowledged", T0, incident_id="W-0", message_id="W-1:reported")
    out.append(reused)
    for n in range(1_150):  # exact repeats of both earlier batches
        out.append(out[n * 2 % len(out)])
    return out


def test_ingest_on_postgresql_with_writes_overlapped_records_what_sqlite_records(
    postgres_url: str, tmp_path: Any
) -> None:
    """`slatrail ingest` writes each batch on PostgreSQL while the next is applied
    (docs/scale.md, "Writes overlapped"); on SQLite one after another. The counts, the refused
    lines and every stored event are the same."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from tests.builders import CONTRACTS_TOML, jsonl

    (tmp_path / "contracts.toml").write_text(CONTRACTS_TOML, encoding="utf-8")
    (tmp_path / "in.jsonl").write_text(jsonl(_stream_across_batches()), encoding="utf-8")
    sqlite_url = f"sqlite:///{tmp_path / 'store.db'}"

    def slatrail(url: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).parent / "slatrail"), "--store", url, "--contracts",
             "contracts.toml", *argv],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    answers = []
    for url, rejected in ((sqlite_url, "sqlite.rejected"), (postgres_url, "pg.rejected")):
        done = slatrail(url, "ingest", "in.jsonl", "--rejected", rejected, "--format", "json")
        assert done.returncode == 1, done.stderr  # some lines are refused
        verified = slatrail(url, "verify")  # every hash chain holds (recorded_at is hashed)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        counts = json.loads(done.stdout)
        refused = [
            (r.get("line"), r["code"], r["message_id"])
            for r in map(json.loads, (tmp_path / rejected).read_text().splitlines())
        ]
        app = open_application(url, contracts_from())
        try:
            events = {
                incident: [(e.position, e.type, e.message_id, e.occurred_at, dict(e.data))
                           for e in history]
                for incident, history in ((h[0].incident_id, h) for h in app.histories().values())
            }  # fmt: skip
            _, receipts = stored_counts(app)
        finally:
            app.close()
        answers.append((counts["accepted"], counts["duplicate"], counts["rejected"],
                        counts["rejected_by_code"], sorted(refused), events, receipts))  # fmt: skip
    assert answers[0][0] > 2_000 and answers[0][1] > 1_000 and answers[0][2] > 100
    assert answers[1] == answers[0]
