"""The incident index on PostgreSQL (infra/incident_index.py): imported only for a
PostgreSQL store, so psycopg is not loaded for SQLite."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.sql import SQL, Identifier

from slatrail.infra.incident_index import (
    COLUMNS,
    INDEX_TABLE,
    INDEXES,
    MARKS,
    PAGE,
    SELECT_ENTRIES,
    UPSERT,
    entry_from_row,
    row_params,
    where,
)
from slatrail.projections.incident_index import INDEX_ROWS, IndexEntry, IndexQuery


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
        for name, columns in INDEXES:
            self.sql_create_statements.append(
                SQL(
                    "CREATE INDEX IF NOT EXISTS {index} ON {schema}.{table} (" + columns + ")"
                ).format(index=Identifier(f"{INDEX_TABLE}_{name}"), schema=schema, table=table)
            )
        self._upsert = UPSERT.format(
            table=f'"{self.datastore.schema}"."{INDEX_TABLE}"',
            marks=",".join(["%s"] * MARKS), least="least", greatest="greatest",
        )  # fmt: skip

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_stored_events(curs, stored_events, **kwargs)
        entries: Sequence[IndexEntry] = kwargs.get(INDEX_ROWS) or ()
        if entries:  # under the table lock just taken: no two writers interleave rows
            with curs.connection.cursor() as index_cursor:
                index_cursor.executemany(self._upsert, [row_params(e) for e in entries])

    def has_index(self) -> bool:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                "SELECT to_regclass(%s) AS found", (f'"{self.datastore.schema}".{INDEX_TABLE}',)
            )
            row = curs.fetchone()
        return row is not None and row["found"] is not None

    def select_incident_ids(self, query: IndexQuery) -> Iterator[str]:
        clause, params = where(query, "%s")
        table = f'"{self.datastore.schema}"."{INDEX_TABLE}"'
        after: tuple[int, str] | None = None
        while True:
            statement = f"SELECT incident_id, reported_us FROM {table}{clause}"
            page_params = list(params)
            if after is not None:
                statement += (" AND " if clause else " WHERE ") + (
                    "(reported_us, incident_id) > (%s, %s)"
                )
                page_params += [after[0], after[1]]
            statement += f" ORDER BY reported_us, incident_id LIMIT {PAGE}"
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(statement.encode(), page_params)
                rows = curs.fetchall()
            for row in rows:
                yield str(row["incident_id"])
            if len(rows) < PAGE:
                return
            after = (int(rows[-1]["reported_us"]), str(rows[-1]["incident_id"]))

    def index_entries(self) -> Iterator[IndexEntry]:
        table = f'"{self.datastore.schema}"."{INDEX_TABLE}"'
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SELECT_ENTRIES.format(table=table).encode())
            rows = curs.fetchall()
        for row in rows:
            yield entry_from_row(row)

    def replace_index(self, entries: Sequence[IndexEntry]) -> None:
        table = f'"{self.datastore.schema}"."{INDEX_TABLE}"'
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(f"DELETE FROM {table}".encode())
            if entries:
                curs.executemany(self._upsert.encode(), [row_params(e) for e in entries])
