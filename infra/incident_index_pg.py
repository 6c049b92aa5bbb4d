"""The incident index on PostgreSQL (infra/incident_index.py): imported only for a
PostgreSQL store, so psycopg is not loaded for SQLite.

The recorder also writes the events' rows itself, as one `INSERT … SELECT FROM unnest(…)` of
four arrays in psycopg's binary format, instead of the library's array of composite values:
psycopg (pure Python here) dumps a composite as escaped text, field by field, which was two
thirds of the insert's cost. Same table, same columns, same bytes; the library's table lock,
NOTIFY and `RETURNING notification_id` are kept (docs/scale.md, "Ingest").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.sql import SQL, Identifier

from slatrail.infra.incident_index import (
    CLOSED_CHANGED,
    COLUMNS,
    INDEX_TABLE,
    INDEXES,
    UPSERT,
    keyset_incident_ids,
    paged_entries,
    row_params,
)
from slatrail.projections.incident_index import INDEX_ROWS, IndexEntry, IndexQuery

# the index columns' types, in row_params order, for the arrays `unnest` reads
_INDEX_TYPES = ("text", "text", "int8", "int8", "int8", "int2", "text", "int8", "int8")


class IndexedPostgresRecorder(PostgresApplicationRecorder):
    """eventsourcing's PostgreSQL application recorder, keeping the incident index too."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        table = Identifier(INDEX_TABLE)
        self.sql_create_statements.append(
            SQL("CREATE TABLE IF NOT EXISTS {schema}.{table} (" + COLUMNS + ")").format(
                schema=schema, table=table
            )
        )
        for name, columns, predicate in (*((n, c, "") for n, c in INDEXES), CLOSED_CHANGED):
            self.sql_create_statements.append(
                SQL(
                    "CREATE INDEX IF NOT EXISTS {index} ON {schema}.{table} ("
                    + columns
                    + ")"
                    + (f" WHERE {predicate}" if predicate else "")
                ).format(index=Identifier(f"{INDEX_TABLE}_{name}"), schema=schema, table=table)
            )
        self._closed_changed: bool | None = None  # whether the store has that last index
        self._index_table = f'"{self.datastore.schema}"."{INDEX_TABLE}"'
        self._upsert = UPSERT.format(
            table=self._index_table,
            rows="VALUES (" + ",".join(["%s"] * len(_INDEX_TYPES)) + ")",
            least="least", greatest="greatest",
        )  # fmt: skip
        self._upsert_arrays = UPSERT.format(
            table=self._index_table,
            rows="SELECT * FROM unnest(" + ", ".join(f"%b::{t}[]" for t in _INDEX_TYPES) + ")",
            least="least", greatest="greatest",
        )  # fmt: skip
        # The notification ids come back as one array (a row each, as dictionaries, cost a
        # tenth of the insert); ascending is the order given: the table is locked and the
        # rows are numbered as unnest yields them.
        self._insert_arrays = SQL(
            "WITH inserted AS (INSERT INTO {schema}.{table} "
            "(originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::int8[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id) "
            "SELECT array_agg(notification_id ORDER BY notification_id) AS ids FROM inserted"
        ).format(schema=schema, table=Identifier(self.events_table_name))
        self._insert_query: bytes | None = None  # rendered once, with the first connection

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        if self.datastore.originator_id_type == "uuid":
            # the library's steps (lock, notify, insert returning the notification ids in
            # the order given), the rows sent as binary arrays
            self._lock_table(curs)
            self._notify_channel(curs)
            if self._insert_query is None:
                self._insert_query = self._insert_arrays.as_bytes(curs)
            curs.execute(self._insert_query, _event_columns(stored_events))
        else:
            super()._insert_stored_events(curs, stored_events, **kwargs)
        entries: Sequence[IndexEntry] = kwargs.get(INDEX_ROWS) or ()
        if entries:  # under the table lock just taken: no two writers interleave rows
            with curs.connection.cursor() as index_cursor:
                self._upsert_entries(index_cursor, entries)

    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if self.datastore.originator_id_type != "uuid":
            return super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        row = curs.fetchone()
        ids: list[int] = list(row["ids"] or ()) if row is not None else []
        if len(ids) != len(stored_events):
            raise ProgrammingError(
                f"Couldn't get all notification IDs (got {len(ids)}, expected {len(stored_events)})"
            )
        return ids

    def _upsert_entries(self, curs: Any, entries: Sequence[IndexEntry]) -> None:
        """One statement for every row; one per row when an incident comes twice (a single
        INSERT … ON CONFLICT DO UPDATE may not change a row twice)."""
        rows = [row_params(e) for e in entries]
        if len({row[0] for row in rows}) == len(rows):
            curs.execute(self._upsert_arrays.encode(), [list(c) for c in zip(*rows, strict=True)])
        else:
            curs.executemany(self._upsert.encode(), rows)

    def has_index(self) -> bool:
        return self._in_schema(INDEX_TABLE)

    def _in_schema(self, name: str) -> bool:
        """Whether the store's schema has the table or index of that name."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute("SELECT to_regclass(%s) AS found", (f'"{self.datastore.schema}".{name}',))
            row = curs.fetchone()
        return row is not None and row["found"] is not None

    def select_incident_ids(self, query: IndexQuery) -> Iterator[str]:
        def page(statement: str, params: Sequence[Any]) -> list[Any]:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(statement.encode(), params)
                return list(curs.fetchall())

        if self._closed_changed is None:  # a store made before that index: not until a writer
            self._closed_changed = self._in_schema(f"{INDEX_TABLE}_{CLOSED_CHANGED[0]}")
        closed_from = self._index_table if self._closed_changed else None
        return keyset_incident_ids(
            self._index_table, query, "%s", page, row_values=True, closed_from=closed_from
        )

    def select_notification_ids(
        self, start: int, stop: int, limit: int, topics: Sequence[str]
    ) -> list[int]:
        """The ids `select_notifications(start, limit, stop, topics)` would return, without
        reading the rows (the SLA ledger's gap check asks for thousands at a time)."""
        statement = SQL(
            "SELECT notification_id FROM {schema}.{table} WHERE notification_id >= %s "
            "AND notification_id <= %s AND topic = ANY(%s) ORDER BY notification_id LIMIT %s"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, [start, stop, list(topics), limit], prepare=True)
            return [int(row["notification_id"]) for row in curs.fetchall()]

    def index_entries(self) -> Iterator[IndexEntry]:
        def page(statement: str, params: Sequence[Any]) -> list[Any]:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(statement.encode(), params)
                return list(curs.fetchall())

        return paged_entries(self._index_table, "%s", page)

    def replace_index(self, entries: Sequence[IndexEntry]) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(f"DELETE FROM {self._index_table}".encode())
            if entries:
                self._upsert_entries(curs, entries)


def _event_columns(stored_events: Sequence[StoredEvent]) -> list[list[Any]]:
    """The stored events as four columns (uuid, version, topic, state)."""
    return [
        [e.originator_id if isinstance(e.originator_id, UUID) else UUID(e.originator_id)
         for e in stored_events],
        [e.originator_version for e in stored_events],
        [e.topic for e in stored_events],
        [e.state for e in stored_events],
    ]  # fmt: skip
