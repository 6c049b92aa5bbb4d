"""One query for the stored events of many aggregates (the record path's per-batch lookup).

eventsourcing's recorders read one aggregate per query (`select_events`); recording a batch
of 500 messages touching 300 incidents would make 300 round trips. This reads them all in one
statement (chunked under SQLite's parameter limit) from the recorder's own table, through the
recorder's own connection, and returns the library's `StoredEvent` rows unchanged.

`event_rows_of` is the same query for the read side (`histories_of`): each aggregate's
`(version, topic, state)` rows, in the order the ids were given, without building a `UUID` and a
`StoredEvent` for every row (a third of reading a report's incidents: docs/scale.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, StoredEvent
from eventsourcing.sqlite import SQLiteAggregateRecorder

from slatrail.application.service import (
    EventRow,
    event_rows_one_query_each,
    stored_events_one_query_each,
)

if TYPE_CHECKING:  # psycopg is imported only when the store is PostgreSQL
    from eventsourcing.postgres import PostgresAggregateRecorder

K = TypeVar("K", str, UUID)  # an aggregate id as a table keeps it: hex text, or a UUID
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
    return stored_events_one_query_each(recorder, ids)


def event_rows_of(recorder: AggregateRecorder, ids: Sequence[UUID]) -> list[list[EventRow]]:
    """The stored rows of each of `ids`, in version order, one list per id in the order given
    (an absent id: an empty list)."""
    if not ids:
        return []
    if isinstance(recorder, SQLiteAggregateRecorder):
        return _sqlite_rows(recorder, ids)
    if is_postgres_recorder(recorder):
        from eventsourcing.postgres import PostgresAggregateRecorder

        if isinstance(recorder, PostgresAggregateRecorder):
            return _postgres_rows(recorder, ids)
    return event_rows_one_query_each(recorder, ids)


def is_postgres_recorder(recorder: object) -> bool:
    """Whether `recorder` is (a subclass of) an eventsourcing PostgreSQL recorder, told without
    importing psycopg (the incident index's recorders subclass the library's)."""
    return any(k.__module__ == "eventsourcing.postgres" for k in type(recorder).__mro__)


def _sqlite(
    recorder: SQLiteAggregateRecorder, ids: Sequence[UUID]
) -> dict[UUID, list[StoredEvent]]:
    found: dict[UUID, list[StoredEvent]] = {}
    for originator_hex, version, topic, state in _sqlite_select(recorder, [i.hex for i in ids]):
        originator = UUID(originator_hex)
        found.setdefault(originator, []).append(
            StoredEvent(
                originator_id=originator, originator_version=version, topic=topic, state=state
            )
        )
    return found


def _sqlite_select(
    recorder: SQLiteAggregateRecorder, hexes: Sequence[str]
) -> Iterator[tuple[str, int, str, bytes]]:
    """(originator_id, version, topic, state) of the stored events of the aggregates whose ids
    (as the SQLite store keeps them: hex) are given, SQLITE_CHUNK ids per query, each
    aggregate's in version order."""
    table = recorder.events_table_name
    for start in range(0, len(hexes), SQLITE_CHUNK):
        chunk = list(hexes[start : start + SQLITE_CHUNK])
        marks = ",".join("?" * len(chunk))
        statement = (
            f"SELECT originator_id, originator_version, topic, state FROM {table} "
            f"WHERE originator_id IN ({marks}) ORDER BY originator_id, originator_version"
        )
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, chunk)
            rows: list[Any] = cursor.fetchall()
        for row in rows:
            yield row[0], row[1], row[2], row[3]


def _sqlite_rows(recorder: SQLiteAggregateRecorder, ids: Sequence[UUID]) -> list[list[EventRow]]:
    out, slot = _slots(ids, [i.hex for i in ids])
    for originator, version, topic, state in _sqlite_select(recorder, list(slot)):
        slot[originator].append((version, topic, state))
    return _repeated(ids, out, len(slot))


def _slots(
    ids: Sequence[UUID], keys: Sequence[K]
) -> tuple[list[list[EventRow]], dict[K, list[EventRow]]]:
    """One empty list of rows per id, in the ids' order, and each distinct id's list by its key
    as the table stores it (an id given twice: its first list; `_repeated` fills the others)."""
    out: list[list[EventRow]] = [[] for _ in ids]
    slot: dict[K, list[EventRow]] = {}
    for n, key in enumerate(keys):
        slot.setdefault(key, out[n])
    return out, slot


def _repeated(
    ids: Sequence[UUID], out: list[list[EventRow]], distinct: int
) -> list[list[EventRow]]:
    """`out` with an id given twice holding its rows both times (filled once, at the first);
    `distinct`: how many different ids there are."""
    if distinct == len(ids):
        return out
    first: dict[UUID, list[EventRow]] = {}
    return [first.setdefault(i, rows) for i, rows in zip(ids, out, strict=True)]


def _postgres_select(recorder: PostgresAggregateRecorder) -> Any:
    """The events of the aggregates whose ids are `%s` (an array), each in version order."""
    from psycopg.sql import SQL, Identifier

    return SQL(
        "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
        "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )


def _postgres_rows(
    recorder: PostgresAggregateRecorder, ids: Sequence[UUID]
) -> list[list[EventRow]]:
    statement = _postgres_select(recorder)
    out, slot = _slots(ids, ids)
    with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
        cursor.execute(statement, (list(slot),))
        for row in cursor.fetchall():
            slot[row["originator_id"]].append(
                (row["originator_version"], row["topic"], bytes(row["state"]))
            )
    return _repeated(ids, out, len(slot))


def _postgres(
    recorder: PostgresAggregateRecorder, ids: Sequence[UUID]
) -> dict[UUID, list[StoredEvent]]:
    statement = _postgres_select(recorder)
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
