"""One query for the stored events of many aggregates (the record path's per-batch lookup).

eventsourcing's recorders read one aggregate per query (`select_events`); recording a batch
of 500 messages touching 300 incidents would make 300 round trips. This reads them all in one
statement (chunked under SQLite's parameter limit) from the recorder's own table, through the
recorder's own connection, and returns the library's `StoredEvent` rows unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, StoredEvent
from eventsourcing.sqlite import SQLiteAggregateRecorder

if TYPE_CHECKING:  # psycopg is imported only when the store is PostgreSQL
    from eventsourcing.postgres import PostgresAggregateRecorder

SQLITE_CHUNK = 500  # under SQLITE_MAX_VARIABLE_NUMBER on every supported build (999)


def stored_events_of(
    recorder: AggregateRecorder, ids: Sequence[UUID]
) -> Mapping[UUID, Sequence[StoredEvent]]:
    """The stored events of each of `ids` that exist, in version order (absent ids: no key)."""
    if not ids:
        return {}
    if isinstance(recorder, SQLiteAggregateRecorder):
        return _sqlite(recorder, ids)
    if is_postgres_recorder(recorder):
        from eventsourcing.postgres import PostgresAggregateRecorder

        if isinstance(recorder, PostgresAggregateRecorder):
            return _postgres(recorder, ids)
    return {i: found for i in ids if (found := recorder.select_events(i))}


def is_postgres_recorder(recorder: object) -> bool:
    """Whether `recorder` is (a subclass of) an eventsourcing PostgreSQL recorder, told without
    importing psycopg (the incident index's recorders subclass the library's)."""
    return any(k.__module__ == "eventsourcing.postgres" for k in type(recorder).__mro__)


def _sqlite(
    recorder: SQLiteAggregateRecorder, ids: Sequence[UUID]
) -> dict[UUID, list[StoredEvent]]:
    found: dict[UUID, list[StoredEvent]] = {}
    table = recorder.events_table_name
    for start in range(0, len(ids), SQLITE_CHUNK):
        chunk = [i.hex for i in ids[start : start + SQLITE_CHUNK]]
        marks = ",".join("?" * len(chunk))
        statement = (
            f"SELECT originator_id, originator_version, topic, state FROM {table} "
            f"WHERE originator_id IN ({marks}) ORDER BY originator_id, originator_version"
        )
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, chunk)
            rows: list[Any] = cursor.fetchall()
        for row in rows:
            originator = UUID(row["originator_id"])
            found.setdefault(originator, []).append(
                StoredEvent(
                    originator_id=originator,
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=row["state"],
                )
            )
    return found


def _postgres(
    recorder: PostgresAggregateRecorder, ids: Sequence[UUID]
) -> dict[UUID, list[StoredEvent]]:
    from psycopg.sql import SQL, Identifier

    statement = SQL(
        "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
        "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    found: dict[UUID, list[StoredEvent]] = {}
    with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
        cursor.execute(statement, (list(ids),))
        for row in cursor.fetchall():
            originator = row["originator_id"]
            found.setdefault(originator, []).append(
                StoredEvent(
                    originator_id=originator,
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
            )
    return found
