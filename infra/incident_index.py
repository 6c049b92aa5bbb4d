"""The incident index in the event store's own database, written in the same transaction as
the events (docs/scale.md).

eventsourcing passes the keyword arguments of `Application.save` down to the recorder's
`_insert_events`, inside the transaction that inserts the events: the application service
hands the index rows of the incidents it saves there (`INDEX_ROWS`), and these recorder
subclasses upsert them. The store URL's environment names them
(`APPLICATION_RECORDER_TOPIC`: infra/store.py; PostgreSQL's in incident_index_pg.py).
Queries read the table through the recorder's own connection and return incident ids in
report order, streamed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from slatrail.projections.incident_index import INDEX_ROWS, IndexEntry, IndexQuery

INDEX_TABLE = "slatrail_incident_index"
PAGE = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

COLUMNS = (
    "incident_id TEXT PRIMARY KEY, customer TEXT NOT NULL, reported_us BIGINT NOT NULL, "
    "starts_us BIGINT NOT NULL, last_us BIGINT NOT NULL, open SMALLINT NOT NULL, priority TEXT, "
    "resolved_us BIGINT, postmortem_us BIGINT"
)
# The columns a query filters on follow the report-order key, so a page is read from the index
# alone: an open-incidents query scans index entries, not 2% of the table's rows by lookup
# (docs/scale.md, *The incident index*). Stores made before keep their narrower indexes too.
_FILTERED = "open, last_us, resolved_us, postmortem_us, starts_us"
INDEXES = (
    ("customer_state", f"customer, reported_us, incident_id, {_FILTERED}"),
    ("open_reported", "open, reported_us, incident_id"),
    ("reported_state", f"reported_us, incident_id, {_FILTERED}"),
)
# The closed incidents by their last change (`keyset_incident_ids`): an incident enters it when
# it is resolved; the events of an open incident, most of them, never write to it.
CLOSED_CHANGED = ("closed_changed", "last_us, reported_us, incident_id, open", "open = 0")
CHANGED_CAP = 10_000
UPSERT = (
    "INSERT INTO {table} (incident_id, customer, reported_us, starts_us, last_us, open, "
    "priority, resolved_us, postmortem_us) {rows} "
    "ON CONFLICT (incident_id) DO UPDATE SET "
    "starts_us = {least}({table}.starts_us, excluded.starts_us), "
    "last_us = {greatest}({table}.last_us, excluded.last_us), open = excluded.open, "
    "priority = coalesce(excluded.priority, {table}.priority), "
    "resolved_us = {greatest}(coalesce({table}.resolved_us, excluded.resolved_us), "
    "coalesce(excluded.resolved_us, {table}.resolved_us)), "
    "postmortem_us = {greatest}(coalesce({table}.postmortem_us, excluded.postmortem_us), "
    "coalesce(excluded.postmortem_us, {table}.postmortem_us))"
)
MARKS = 9
SQLITE_UPSERT = UPSERT.format(
    table=INDEX_TABLE, rows="VALUES (" + ",".join("?" * MARKS) + ")", least="min", greatest="max"
)


def to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def row_params(entry: IndexEntry) -> tuple[Any, ...]:
    return (
        entry.incident_id, entry.customer, to_us(entry.reported_at), to_us(entry.starts_at),
        to_us(entry.last_occurred_at), 1 if entry.open else 0, entry.priority,
        _us_or_none(entry.resolved_at), _us_or_none(entry.postmortem_at),
    )  # fmt: skip


def _us_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else to_us(moment)


def from_us(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=int(us))


SELECT_ENTRIES = (
    "SELECT incident_id, customer, reported_us, starts_us, last_us, open, priority, "
    "resolved_us, postmortem_us FROM {table} {where}ORDER BY incident_id LIMIT {limit}"
)
ENTRIES_PAGE = 10_000


def paged_entries(
    table: str,
    mark: str,
    page_of: Callable[[str, Sequence[Any]], Sequence[Any]],
    page: int | None = None,
) -> Iterator[IndexEntry]:
    """Every row of the index by incident id, read `page` rows at a time (`ENTRIES_PAGE`;
    keyset on the key, `mark` the driver's placeholder): never the whole index at once."""
    page = page or ENTRIES_PAGE
    first = SELECT_ENTRIES.format(table=table, where="", limit=mark)
    after = SELECT_ENTRIES.format(table=table, where=f"WHERE incident_id > {mark} ", limit=mark)
    rows = page_of(first, (page,))
    while True:
        yield from map(entry_from_row, rows)
        if len(rows) < page:
            return
        rows = page_of(after, (str(rows[-1]["incident_id"]), page))


def entry_from_row(row: Any) -> IndexEntry:
    reported, starts, last = (from_us(row[k]) for k in ("reported_us", "starts_us", "last_us"))
    assert reported is not None and starts is not None and last is not None
    return IndexEntry(
        incident_id=str(row["incident_id"]), customer=str(row["customer"]), reported_at=reported,
        starts_at=starts, last_occurred_at=last, open=bool(row["open"]),
        priority=row["priority"], resolved_at=from_us(row["resolved_us"]),
        postmortem_at=from_us(row["postmortem_us"]),
    )  # fmt: skip


def where(query: IndexQuery, mark: str) -> tuple[str, list[Any]]:
    """The query's conditions as SQL (`mark`: the driver's placeholder)."""
    parts: list[str] = []
    params: list[Any] = []

    def add(sql: str, *values: Any) -> None:
        parts.append(sql.replace("?", mark))
        params.extend(values)

    if query.customer is not None:
        add("customer = ?", query.customer)
    if query.reported_by is not None:
        add("reported_us <= ?", to_us(query.reported_by))
    if query.reported_since is not None:
        add("reported_us >= ?", to_us(query.reported_since))
    if query.reported_until is not None:
        add("reported_us < ?", to_us(query.reported_until))
    if query.starts_before is not None:
        add("starts_us < ?", to_us(query.starts_before))
    if query.open_or_changed_after is not None:
        add("(open = 1 OR last_us > ?)", to_us(query.open_or_changed_after))
    if query.resolved_or_changed_after is not None:
        add("(open = 0 OR last_us > ?)", to_us(query.resolved_or_changed_after))
    if query.unsettled_or_changed_since is not None:
        add(
            "(open = 1 OR postmortem_us IS NULL OR (resolved_us IS NOT NULL "
            "AND postmortem_us < resolved_us) OR last_us >= ?)",
            to_us(query.unsettled_or_changed_since),
        )
    if query.open_or_ended_since is not None:
        add("(open = 1 OR last_us >= ?)", to_us(query.open_or_ended_since))
    return (" WHERE " + " AND ".join(parts)) if parts else "", params


SelectPage = Callable[[str, Sequence[Any]], Sequence[Any]]
"""Runs one SELECT with its parameters and returns its rows (mapping-like)."""


def keyset_incident_ids(
    table: str,
    query: IndexQuery,
    mark: str,
    select: SelectPage,
    *,
    row_values: bool = False,
    closed_from: str | None = None,
) -> Iterator[str]:
    """The ids of the incidents `query` admits from the index `table`, in report order, a page
    of `PAGE` at a time: keyset pagination (each page starts after the last row of the one
    before), so no cursor is held open between pages and a writer is never blocked by a slow
    reader. `mark`: the driver's placeholder; `select` runs one page's statement;
    `row_values`: write the page start as a row comparison (PostgreSQL starts its index scan
    there).

    `closed_from`: how to read the index of closed incidents by their last change
    (`CLOSED_CHANGED`), when the table has it. "Open, or changed after X" over every customer
    is then read as two parts, each from its own index — the open incidents, and the closed
    ones changed after X — when the second has at most `CHANGED_CAP` rows (an X in the past
    may admit most of the store: then one scan of the report order, as without that index).
    The open ones are a few percent of a store; read as one scan, the open-incidents query
    went over every incident ever reported (`escalations`, `sla --state open`)."""
    parts = [(table, *where(query, mark))]
    changed_after = query.open_or_changed_after
    if closed_from is not None and changed_after is not None and query.customer is None:
        rest, rest_params = where(replace(query, open_or_changed_after=None), mark)
        join = " AND " if rest else " WHERE "
        closed = (closed_from, f"{rest}{join}open = 0 AND last_us > {mark}",
                  [*rest_params, to_us(changed_after)])  # fmt: skip
        probe = f"SELECT incident_id FROM {closed[0]}{closed[1]} LIMIT {CHANGED_CAP + 1}"
        if len(select(probe, closed[2])) <= CHANGED_CAP:
            parts = [(table, f"{rest}{join}open = 1", rest_params), closed]
    if row_values:
        keyset = f"(reported_us, incident_id) > ({mark}, {mark})"
    else:
        keyset = f"(reported_us > {mark} OR (reported_us = {mark} AND incident_id > {mark}))"
    order = f" ORDER BY reported_us, incident_id LIMIT {PAGE}"
    last: tuple[int, str] | None = None
    while True:
        statements, page_params = [], []
        for source, clause, params in parts:
            statement = f"SELECT incident_id, reported_us FROM {source}{clause}"
            page_params += params
            if last is not None:
                statement += (" AND " if clause else " WHERE ") + keyset
                page_params += [last[0], last[1]] if row_values else [last[0], last[0], last[1]]
            statements.append(statement)
        if len(statements) == 1:
            statement = statements[0] + order
        else:  # each part's page from its own index, the two merged by the database
            statement = (
                " UNION ALL ".join(
                    f"SELECT * FROM ({s}{order}) AS part{n}" for n, s in enumerate(statements)
                )
                + order
            )
        rows = select(statement, page_params)
        for row in rows:
            yield str(row["incident_id"])
        if len(rows) < PAGE:
            return
        last = (int(rows[-1]["reported_us"]), str(rows[-1]["incident_id"]))


def _insert_numbered(
    c: SQLiteCursor, statement: str, table: str, stored_events: Sequence[StoredEvent]
) -> list[int]:
    """Insert the rows in one `executemany` and return their notification ids (rowids), in
    the order given: what the library's recorder does with one `execute` per row
    (docs/scale.md "Ingest").

    SQLite gives each new row the largest rowid plus one, and the transaction holds the write
    lock from its first insert to its commit, so the rows get consecutive ids ending at
    `last_insert_rowid()`. Only a table whose largest rowid once reached 2^63 - 1 (never by
    these inserts) picks ids at random; the first and last rows are read back to make sure,
    and otherwise each row's id is looked up by its key."""
    params = [
        (s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
         s.originator_version, s.topic, s.state)
        for s in stored_events
    ]  # fmt: skip
    if not params:
        return []
    cursor = c.sqlite_cursor
    cursor.executemany(statement, params)
    last = cursor.execute("SELECT last_insert_rowid()").fetchone()[0]
    ids = list(range(last - len(params) + 1, last + 1))
    lookup = f"SELECT rowid FROM {table} WHERE originator_id = ? AND originator_version = ?"

    def rowid(row: tuple[Any, ...]) -> int:
        return int(cursor.execute(lookup, row[:2]).fetchone()[0])

    if rowid(params[0]) == ids[0] and rowid(params[-1]) == ids[-1]:
        return ids
    return [rowid(row) for row in params]


class IndexedSQLiteRecorder(SQLiteApplicationRecorder):
    """eventsourcing's SQLite application recorder, keeping the incident index too."""

    _closed_changed: bool | None = None  # whether the store has the CLOSED_CHANGED index

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {INDEX_TABLE} ({COLUMNS})",
            *(
                f"CREATE INDEX IF NOT EXISTS {INDEX_TABLE}_{name} ON {INDEX_TABLE} ({columns})"
                for name, columns in INDEXES
            ),
            f"CREATE INDEX IF NOT EXISTS {INDEX_TABLE}_{CLOSED_CHANGED[0]} ON {INDEX_TABLE} "
            f"({CLOSED_CHANGED[1]}) WHERE {CLOSED_CHANGED[2]}",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        returning = _insert_numbered(c, self.insert_events_statement, self.events_table_name,
                                     stored_events)  # fmt: skip
        entries: Sequence[IndexEntry] = kwargs.get(INDEX_ROWS) or ()
        if entries:
            c.executemany(SQLITE_UPSERT, [row_params(e) for e in entries])
        return returning

    def has_index(self) -> bool:
        return self._in_schema("table", INDEX_TABLE)

    def _in_schema(self, kind: str, name: str) -> bool:
        """Whether the database has the table or index (`kind`) of that name."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?", (kind, name))
            return c.fetchone() is not None

    def select_incident_ids(self, query: IndexQuery) -> Iterator[str]:
        """Incident ids in report order, a page at a time (`keyset_incident_ids`)."""

        def page(statement: str, params: Sequence[Any]) -> list[Any]:
            with self.datastore.transaction(commit=False) as c:
                c.execute(statement, params)
                return list(c.fetchall())

        closed = f"{INDEX_TABLE}_{CLOSED_CHANGED[0]}"
        if self._closed_changed is None:  # a store made before that index: not until a writer
            self._closed_changed = self._in_schema("index", closed)
        closed_from = f"{INDEX_TABLE} INDEXED BY {closed}" if self._closed_changed else None
        return keyset_incident_ids(INDEX_TABLE, query, "?", page, closed_from=closed_from)

    def select_notification_ids(
        self, start: int, stop: int, limit: int, topics: Sequence[str]
    ) -> list[int]:
        """The ids `select_notifications(start, limit, stop, topics)` would return, without
        reading the rows (the SLA ledger's gap check asks for thousands at a time)."""
        marks = ",".join("?" * len(topics))
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid FROM {self.events_table_name} WHERE rowid >= ? AND rowid <= ? "
                f"AND topic IN ({marks}) ORDER BY rowid LIMIT ?",
                [start, stop, *topics, limit],
            )
            return [int(row[0]) for row in c.fetchall()]

    def index_entries(self) -> Iterator[IndexEntry]:
        """Every row of the index, by incident id, a page at a time (`slatrail verify`)."""

        def page(statement: str, params: Sequence[Any]) -> list[Any]:
            with self.datastore.transaction(commit=False) as c:
                c.execute(statement, params)
                return list(c.fetchall())

        return paged_entries(INDEX_TABLE, "?", page)

    def replace_index(self, entries: Sequence[IndexEntry]) -> None:
        """Write `entries` as the whole index (backfill and `replay`)."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"DELETE FROM {INDEX_TABLE}")
            c.executemany(SQLITE_UPSERT, [row_params(e) for e in entries])
