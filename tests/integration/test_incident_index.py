"""The incident index on a real PostgreSQL (and SQLite): kept in the events' transaction,
selected in report order, and built for a store recorded before it existed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from slatrail.application.selection import IndexQuery, sla_query
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import contracts_from, line, reported_data, wire

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=60)


def test_the_index_follows_recording_and_is_rebuilt_for_an_old_store(store_url: str) -> None:
    contracts = contracts_from()
    app = open_application(store_url, contracts)
    try:
        messages = []
        for n in range(6):
            customer = "acme" if n % 2 else "dayco"
            at = T0 + timedelta(hours=n)
            messages.append(wire("reported", at, reported_data(customer), incident_id=f"I-{n}"))
        messages.append(wire("resolved", T0 + timedelta(days=1), {"resolution": "x"},
                             incident_id="I-3"))  # fmt: skip
        outcomes = app.record([decode(line(m)) for m in messages], now=NOW)
        assert {str(o.status) for o in outcomes} == {"accepted"}
        ids = app.select_incident_ids(IndexQuery(customer="acme"))
        assert ids is not None and list(ids) == ["I-1", "I-3", "I-5"]
        open_now = sla_query(as_of=NOW, as_known_at=None, state="open")
        assert list(app.select_incident_ids(open_now) or ()) == ["I-0", "I-1", "I-2", "I-4", "I-5"]
        before = T0 + timedelta(hours=12)  # I-3 was still open then: it must be selected
        open_then = sla_query(as_of=before, as_known_at=None, state="open")
        assert "I-3" in list(app.select_incident_ids(open_then) or ())
        # a store whose index is empty (recorded before it existed) is indexed when opened
        app.recorder.replace_index([])  # type: ignore[attr-defined]
        assert app.index_is_stale()
    finally:
        app.close()
    again = open_application(store_url, contracts)
    try:
        assert not again.index_is_stale()
        assert list(again.select_incident_ids(IndexQuery()) or ()) == [f"I-{n}" for n in range(6)]
    finally:
        again.close()


def test_verify_finds_an_index_row_that_differs_from_the_events(
    store_url: str, tmp_path: Path
) -> None:
    from slatrail.infra.bootstrap import Container
    from slatrail.infra.settings import Settings
    from slatrail.infra.verify import verify_store

    contracts_path = tmp_path / "contracts.toml"
    from tests.builders import CONTRACTS_TOML

    contracts_path.write_text(CONTRACTS_TOML)
    app = open_application(store_url, contracts_from())
    try:
        messages = [wire("reported", T0, reported_data("acme"), incident_id="V-1"),
                    wire("reported", T0, reported_data("dayco"), incident_id="V-2"),
                    wire("resolved", T0 + timedelta(hours=1), {"resolution": "x"},
                         incident_id="V-2")]  # fmt: skip
        assert {
            str(o.status) for o in app.record([decode(line(m)) for m in messages], now=NOW)
        } == {"accepted"}
        entries = list(app.index_entries() or ())
    finally:
        app.close()

    def findings() -> list[tuple[str, str | None]]:
        container = Container(
            Settings(store=store_url, contracts=contracts_path), store_read_only=True
        )
        try:
            result = verify_store(container, read_models=False)
        finally:
            container.close()
        return [(str(d.kind), d.incident_id) for d in result.differences]

    assert findings() == []
    app = open_application(store_url, contracts_from())
    try:  # V-2 indexed as still open, V-1 missing from the index
        reopened = [e for e in entries if e.incident_id == "V-2"]
        from dataclasses import replace

        app.recorder.replace_index([replace(reopened[0], open=True)])  # type: ignore[attr-defined]
    finally:
        app.close()
    assert sorted(findings()) == [("index_drift", "V-1"), ("index_drift", "V-2")]


def test_selected_ids_page_through_ties_across_pages(store_url: str) -> None:
    """More rows than a page, many reported at the same instant: every page starts after the
    last row of the one before (keyset), so each incident comes once, in report order."""
    from slatrail.infra.incident_index import PAGE
    from slatrail.projections.incident_index import IndexEntry

    count = PAGE * 2 + 7
    entries = [
        IndexEntry(
            incident_id=f"K-{n:05d}",
            customer="acme" if n % 3 else "dayco",
            reported_at=T0 + timedelta(minutes=n // 400),
            starts_at=T0,
            last_occurred_at=T0 + timedelta(minutes=n // 400),
            open=n % 2 == 0,
            priority=None,
            resolved_at=None,
            postmortem_at=None,
        )
        for n in range(count)
    ]
    app = open_application(store_url, contracts_from())
    try:
        app.recorder.replace_index(entries)  # type: ignore[attr-defined]
        expected = sorted(entries, key=lambda e: (e.reported_at, e.incident_id))
        assert list(app.select_incident_ids(IndexQuery()) or ()) == [
            e.incident_id for e in expected
        ]
        acme = list(app.select_incident_ids(IndexQuery(customer="acme")) or ())
        assert acme == [e.incident_id for e in expected if e.customer == "acme"]
    finally:
        app.close()


def entry(n: int) -> Any:
    """Incident n of a store with ties in report order, a quarter open, closed ones changed at
    various instants."""
    from slatrail.projections.incident_index import IndexEntry

    return IndexEntry(
        incident_id=f"C-{n:05d}", customer="acme" if n % 3 else "dayco",
        reported_at=T0 + timedelta(minutes=n // 300), starts_at=T0,
        last_occurred_at=T0 + timedelta(minutes=n // 300 + n % 11),
        open=n % 4 == 0, priority=None, resolved_at=None, postmortem_at=None,
    )  # fmt: skip


def test_open_or_changed_after_read_from_two_indexes_equals_one_scan(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Open, or changed after X, over every customer: the open incidents and the closed ones
    changed after X, each part from its own index and merged by the database, page after page
    through ties; past `CHANGED_CAP` closed ones, one scan of the report order. Both give
    exactly the incidents the query admits, in report order; so does a store whose index was
    made before the closed-incidents index existed."""
    import slatrail.infra.incident_index as index_module
    from slatrail.infra.incident_index import INDEX_TABLE, PAGE

    count = PAGE * 2 + 7
    entries = [entry(n) for n in range(count)]
    order = sorted(entries, key=lambda e: (e.reported_at, e.incident_id))
    app = open_application(store_url, contracts_from())
    statements: list[str] = []
    try:
        app.recorder.replace_index(entries)  # type: ignore[attr-defined]
        recorder = app.recorder
        select = recorder.select_incident_ids  # type: ignore[attr-defined]

        def spied(query: IndexQuery) -> list[str]:
            original = index_module.keyset_incident_ids

            def keyset(table: str, q: IndexQuery, mark: str, page: Any, **kw: Any) -> Any:
                def recorded(statement: str, params: Any) -> Any:
                    statements.append(statement)
                    return page(statement, params)

                return original(table, q, mark, recorded, **kw)

            monkeypatch.setattr(index_module, "keyset_incident_ids", keyset)
            if store_url.startswith("postgresql"):
                import slatrail.infra.incident_index_pg as pg_module

                monkeypatch.setattr(pg_module, "keyset_incident_ids", keyset)
            try:
                return list(select(query))
            finally:
                monkeypatch.undo()

        for minutes in (0, 3, 7, 12, 40):
            query = IndexQuery(open_or_changed_after=T0 + timedelta(minutes=minutes),
                               reported_by=T0 + timedelta(minutes=minutes + 2))  # fmt: skip
            expected = [e.incident_id for e in order if query.admits(e)]
            statements.clear()
            assert spied(query) == expected, minutes
            assert any("UNION ALL" in s for s in statements), minutes  # two parts
            monkeypatch.setattr(index_module, "CHANGED_CAP", 5)
            changed = sum(1 for e in entries if not e.open and query.admits(e))
            statements.clear()
            capped = spied(query)
            assert capped == expected, minutes
            assert any("UNION ALL" in s for s in statements) == (changed <= 5), minutes
        if store_url.startswith("sqlite"):
            with recorder.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
                c.execute(f"DROP INDEX {INDEX_TABLE}_closed_changed")
            query = IndexQuery(open_or_changed_after=T0 + timedelta(minutes=7))
            expected = [e.incident_id for e in order if query.admits(e)]
            reader = open_application(store_url, contracts_from(), read_only=True)
            try:
                assert list(reader.select_incident_ids(query) or ()) == expected
            finally:
                reader.close()
    finally:
        app.close()


@pytest.mark.parametrize(
    "query",
    [
        sla_query(as_of=NOW, as_known_at=None, state="open"),
        sla_query(as_of=NOW, as_known_at=None, state="open", customer="acme"),
        sla_query(as_of=NOW, as_known_at=None, state="resolved"),
        IndexQuery(unsettled_or_changed_since=NOW),
    ],
    ids=["open", "open-of-a-customer", "resolved", "timer-start-up"],
)
def test_a_state_query_is_answered_from_an_index_alone_on_sqlite(
    tmp_path: Path, query: IndexQuery
) -> None:
    """Open incidents are a few percent of a store: a page that looked up every row of the
    report order to test its state read ~50 rows per id it kept (0.55 s of `escalations` at
    200,000 incidents). The filtered columns are in the index, so no row is looked up."""
    from slatrail.infra.incident_index import INDEX_TABLE, keyset_incident_ids

    app = open_application(f"sqlite:///{tmp_path / 'store.db'}", contracts_from())
    plans: list[str] = []

    def explain(statement: str, params: object) -> list[object]:
        with app.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            c.execute("EXPLAIN QUERY PLAN " + statement, params)
            plans.extend(str(row["detail"]) for row in c.fetchall())
        return []

    closed = f"{INDEX_TABLE} INDEXED BY {INDEX_TABLE}_closed_changed"
    try:
        assert list(keyset_incident_ids(INDEX_TABLE, query, "?", explain)) == []
        # the open ones and the closed ones changed since, each from its own index
        assert list(keyset_incident_ids(INDEX_TABLE, query, "?", explain,
                                        closed_from=closed)) == []  # fmt: skip
    finally:
        app.close()
    read = [p for p in plans if INDEX_TABLE in p]  # not the merge of the two parts' pages
    assert read and all("COVERING INDEX" in p for p in read), plans


def test_index_entries_are_read_a_page_at_a_time_and_each_comes_once(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`verify` compares every index row: they are read by incident id a page at a time
    (keyset), so the whole index is never held at once — and no row is lost or repeated at a
    page boundary, the empty id (which sorts first) included."""

    import slatrail.infra.incident_index as incident_index
    import slatrail.infra.incident_index_pg as incident_index_pg
    from slatrail.projections.incident_index import IndexEntry

    pages: list[int] = []
    paged = incident_index.paged_entries

    def counted(table: str, mark: str, page_of: Any, page: int | None = None) -> Any:
        def read(statement: str, params: Any) -> Any:
            rows = page_of(statement, params)
            pages.append(len(rows))
            return rows

        return paged(table, mark, read, page)

    monkeypatch.setattr(incident_index, "ENTRIES_PAGE", 10)
    for module in (incident_index, incident_index_pg):
        monkeypatch.setattr(module, "paged_entries", counted)
    ids = ["", *(f"P-{n:03d}" for n in range(29))]  # 30 rows: three full pages
    entries = [
        IndexEntry(incident_id=incident_id, customer="acme", reported_at=T0, starts_at=T0,
                   last_occurred_at=T0 + timedelta(minutes=n), open=n % 2 == 0, priority=None)
        for n, incident_id in enumerate(ids)
    ]  # fmt: skip
    app = open_application(store_url, contracts_from())
    try:
        recorder = app.recorder
        recorder.replace_index(entries[::-1])  # type: ignore[attr-defined]
        assert list(app.index_entries() or ()) == sorted(entries, key=lambda e: e.incident_id)
        assert pages == [10, 10, 10, 0]
        pages.clear()
        recorder.replace_index(entries[:25])  # type: ignore[attr-defined]
        assert [e.incident_id for e in app.index_entries() or ()] == sorted(ids[:25])
        assert pages == [10, 10, 5]
    finally:
        app.close()


@pytest.mark.parametrize("table_at_limit", [False, True], ids=["consecutive", "random-rowids"])
def test_sqlite_numbers_every_saved_event_by_its_rowid(
    tmp_path: Path, table_at_limit: bool
) -> None:
    """The recorder inserts a save's rows in one statement and numbers them by their rowids, in
    the order given; a table whose largest rowid reached 2^63 - 1 gets random ones, looked up
    row by row."""
    import sqlite3

    store = tmp_path / "store.db"
    app = open_application(f"sqlite:///{store}", contracts_from())
    try:
        if table_at_limit:
            with sqlite3.connect(store) as db:
                db.execute(
                    "INSERT INTO stored_events (rowid, originator_id, originator_version, topic,"
                    " state) VALUES (?, 'x', 1, 'probe', x'00')", (2**63 - 1,),
                )  # fmt: skip
        stored = [StoredEvent(uuid4(), 1, f"topic-{n}", bytes([n])) for n in range(40)]
        ids = app.recorder.insert_events(stored)
        with sqlite3.connect(store) as db:
            rowids = {
                (o, v): rowid
                for rowid, o, v in db.execute(
                    "SELECT rowid, originator_id, originator_version FROM stored_events"
                )
            }
        assert ids is not None and len(ids) == len(stored) == len(set(ids))
        assert ids == [rowids[(s.originator_id.hex, 1)] for s in stored]
        assert (ids == list(range(ids[0], ids[0] + 40))) is not table_at_limit
    finally:
        app.close()


def test_incident_notification_ids_are_the_incident_rows_the_library_selects(
    store_url: str,
) -> None:
    """The SLA ledger's gap check reads ids alone: the same ids, in the same order, as the
    library's `select_notifications` of the incident topics (receipts and contract versions
    between them left out), for any window and limit."""
    from slatrail.application.service import INCIDENT_TOPICS

    app = open_application(store_url, contracts_from())
    try:
        messages = [
            wire(
                "reported",
                T0 + timedelta(minutes=n),
                reported_data("acme"),
                incident_id=f"N-{n % 4}",
            )
            for n in range(4)
        ] + [
            wire("acknowledged", T0 + timedelta(hours=n), {}, incident_id=f"N-{n % 4}")
            for n in range(1, 4)
        ]
        for message in messages:  # one save each: events and receipts interleave
            assert str(app.record([decode(line(message))], now=NOW)[0].status) == "accepted"
        every = app.recorder.select_notifications(1, 1000)
        assert {n.topic for n in every} - set(INCIDENT_TOPICS)  # other rows lie between
        highest = every[-1].id
        for start, stop, limit in [(1, highest, 1000), (2, highest - 1, 1000), (1, highest, 3),
                                   (5, 5, 10), (highest + 1, highest + 9, 10)]:  # fmt: skip
            expected = [
                n.id
                for n in app.recorder.select_notifications(
                    start, limit, stop=stop, topics=INCIDENT_TOPICS
                )
            ]
            assert app.incident_notifications(start, stop, limit) == expected
        assert len(app.incident_notifications(1, highest, 1000)) == len(messages)
    finally:
        app.close()
