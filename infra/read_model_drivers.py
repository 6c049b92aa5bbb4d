"""The read models' database: eventsourcing tracking recorders that also hold the rows.

`SQLiteReadModelRecorder` and `PostgresReadModelRecorder` extend eventsourcing's
`SQLiteTrackingRecorder` / `PostgresTrackingRecorder` the way the library's own
`examples/ftsprojection` does: the recorder creates the read-model tables beside its tracking
table, and a write puts rows and `Tracking` records in one transaction of the recorder's
datastore (`_insert_tracking` on the same cursor). Tracking is single-row per name (the
library's default): a position can only move forward, else `IntegrityError`.

Read-model databases written before this (their own `rm_tracking (read_model, source,
position)` table) are adopted once, when the recorder creates its tables: every row becomes the
tracking record `"<read model>@<source>"` and `rm_tracking` is dropped, in the same transaction.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import psycopg
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL

from slatrail.infra.store import StoreLocation, effective_timeout_s, parse_store_url
from slatrail.projections.read_models import tracking_name

OLD_TRACKING_TABLE = "rm_tracking"
PG_TRACKING_TABLE = "read_model_tracking"


def _events_table(name: str, big: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {name} ("
        "incident_id TEXT NOT NULL, "
        f"position {big} NOT NULL, "
        "type TEXT NOT NULL, "
        "occurred_at TEXT NOT NULL, "
        "recorded_at TEXT NOT NULL, "
        "actor TEXT NOT NULL, "
        "source TEXT, "
        "message_id TEXT NOT NULL, "
        "data TEXT NOT NULL, "
        "prev_hash TEXT NOT NULL, "
        "hash TEXT NOT NULL, "
        "redrive TEXT, "
        "PRIMARY KEY (incident_id, position))"
    )


def _schema(big: str) -> list[str]:
    return [
        _events_table("rm_audit_events", big),
        _events_table("rm_sla_events", big),
        "CREATE TABLE IF NOT EXISTS rm_sla_incidents ("
        "incident_id TEXT PRIMARY KEY, customer TEXT NOT NULL, reported_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rm_sla_incidents_customer ON rm_sla_incidents (customer)",
        # The SLA ledger (projections/ledger.py; docs/scale.md#the-sla-ledger): instants in µs.
        "CREATE TABLE IF NOT EXISTS rm_sla_ledger ("
        "incident_id TEXT NOT NULL, metric TEXT NOT NULL, "
        f"start_us {big} NOT NULL, end_us {big}, customer TEXT NOT NULL, "
        f"reported_us {big} NOT NULL, metric_rank INTEGER NOT NULL, status TEXT NOT NULL, "
        f"priority TEXT NOT NULL, target_s {big}, due_us {big}, counted_us {big}, "
        f"contract_version {big}, PRIMARY KEY (incident_id, metric, start_us))",
        "CREATE INDEX IF NOT EXISTS rm_sla_ledger_order ON rm_sla_ledger "
        "(reported_us, incident_id, metric_rank, start_us)",
        "CREATE INDEX IF NOT EXISTS rm_sla_ledger_status ON rm_sla_ledger (status, start_us)",
        # store notifications the ledger applied above its contiguous watermark (ledger.py)
        f"CREATE TABLE IF NOT EXISTS rm_sla_ledger_applied (notification_id {big} PRIMARY KEY)",
    ]


_IN_SCHEMA = (
    "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s "
    "ON s.oid = c.relnamespace WHERE s.nspname = %s AND c.relname = ANY(%s)"
)


def _schema_relations() -> list[str]:
    """The tables and indexes `_schema` creates, by name."""
    return [
        found.group(1)
        for statement in _schema("BIGINT")
        if (found := re.match(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)", statement))
    ]


class Cursor(Protocol):
    """A cursor inside a read-model transaction, with `?` placeholders and tuple rows."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...

    def insert_tracking(self, tracking: Tracking) -> None: ...

    def max_tracking_id(self, name: str) -> int | None: ...


class ReadModelRecorder(Protocol):
    """What `ReadModelStore` needs from a recorder (SQLite or PostgreSQL)."""

    dialect: str
    tracking_table: str

    def write(self) -> Any: ...  # a context manager yielding a `Cursor`

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def max_tracking_id(self, application_name: str) -> int | None: ...

    def close(self) -> None: ...


def _adopt_old_tracking(cursor: Cursor, exists: bool) -> None:
    """`rm_tracking` rows (before eventsourcing tracking) → tracking records, once."""
    if not exists:
        return
    cursor.execute(f"SELECT read_model, source, position FROM {OLD_TRACKING_TABLE}")
    for read_model, source, position in cursor.fetchall():
        name = tracking_name(str(read_model), str(source))
        current = cursor.max_tracking_id(name)
        if current is None or int(position) > current:
            cursor.insert_tracking(Tracking(name, int(position)))
    cursor.execute(f"DROP TABLE {OLD_TRACKING_TABLE}")


# -- SQLite ---------------------------------------------------------------------------------


class _SQLiteCursor:
    def __init__(self, recorder: SQLiteReadModelRecorder, cursor: SQLiteCursor) -> None:
        self._recorder = recorder
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return int(self._cursor.sqlite_cursor.rowcount)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(sql, rows)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._cursor.fetchall()]

    def insert_tracking(self, tracking: Tracking) -> None:
        self._recorder._insert_tracking(self._cursor, tracking)

    def max_tracking_id(self, name: str) -> int | None:
        return self._recorder._max_tracking_id(name, self._cursor)


class SQLiteReadModelRecorder(SQLiteTrackingRecorder):
    """eventsourcing's SQLite tracking recorder (table `tracking`) plus the read-model tables."""

    dialect = "sqlite"
    tracking_table = "tracking"

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *_schema("INTEGER")]

    def _create_table(self, c: SQLiteCursor) -> None:
        c.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (OLD_TRACKING_TABLE,)
        )
        old = c.fetchone() is not None
        super()._create_table(c)
        cursor = _SQLiteCursor(self, c)
        for table in ("rm_audit_events", "rm_sla_events"):  # from before the redrive marker
            c.execute(f"PRAGMA table_info({table})")
            if "redrive" not in {str(row[1]) for row in c.fetchall()}:
                c.execute(f"ALTER TABLE {table} ADD COLUMN redrive TEXT")
        _adopt_old_tracking(cursor, old)

    @contextmanager
    def write(self) -> Iterator[Cursor]:
        with self.datastore.transaction(commit=True) as c:
            yield _SQLiteCursor(self, c)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, tuple(params))
            return [tuple(row) for row in c.fetchall()]

    def close(self) -> None:
        self.datastore.close()


def open_sqlite(path: str) -> SQLiteReadModelRecorder:
    if path in (":memory:", "file::memory:?mode=memory&cache=shared"):
        path = f"file:read-models-{uuid.uuid4().hex}?mode=memory&cache=shared"  # private
    recorder = SQLiteReadModelRecorder(SQLiteDatastore(path, lock_timeout=60))
    recorder.create_table()
    return recorder


# -- PostgreSQL -----------------------------------------------------------------------------


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


class _PgCursor:
    def __init__(self, recorder: PostgresReadModelRecorder, cursor: Any) -> None:
        self._recorder = recorder
        self._library_cursor = cursor  # dict rows, for the tracking recorder's own statements
        self._cursor = cursor.connection.cursor(row_factory=tuple_row)  # same transaction

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(_pg(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(_pg(sql), rows)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._cursor.fetchall())

    def insert_tracking(self, tracking: Tracking) -> None:
        self._recorder._insert_tracking(self._library_cursor, tracking)

    def max_tracking_id(self, name: str) -> int | None:
        return self._recorder._max_tracking_id(name, self._library_cursor)


class PostgresReadModelRecorder(PostgresTrackingRecorder):
    """eventsourcing's PostgreSQL tracking recorder (table `read_model_tracking`) plus the
    read-model tables."""

    dialect = "postgresql"

    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore, tracking_table_name=PG_TRACKING_TABLE)
        self.tracking_table = f'"{datastore.schema}"."{PG_TRACKING_TABLE}"'
        self.sql_create_statements.extend(
            SQL(statement).format() for statement in _schema("BIGINT")
        )

    def create_table(self) -> None:
        # DDL on existing tables still takes their locks (`ALTER … ADD COLUMN IF NOT EXISTS`
        # an ACCESS EXCLUSIVE one, `CREATE INDEX IF NOT EXISTS` a SHARE one) for the whole
        # transaction: opening a read model that `serve` is writing could deadlock with the
        # projection consumer's transaction over the same tables. A complete schema is left alone.
        if not self._schema_complete():
            super().create_table()

    def _schema_complete(self) -> bool:
        relations = [*_schema_relations(), PG_TRACKING_TABLE]
        events_tables = ["rm_audit_events", "rm_sla_events"]
        schema = self.datastore.schema
        checks: list[tuple[str, tuple[Any, ...], int]] = [
            (_IN_SCHEMA, (schema, relations), len(relations)),
            (
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = ANY(%s) AND column_name = 'redrive'",
                (schema, events_tables),
                len(events_tables),
            ),
            (_IN_SCHEMA, (schema, [OLD_TRACKING_TABLE]), 0),
        ]
        for sql, params, expected in checks:
            if self.read(sql, params)[0][0] != expected:
                return False
        migrated = self.max_tracking_id(self.table_migration_identifier) is not None
        return migrated or not self.datastore.single_row_tracking

    def _create_table(self, curs: Any) -> None:
        curs.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (OLD_TRACKING_TABLE,))
        old = bool(curs.fetchone()["found"])
        super()._create_table(curs)
        for table in ("rm_audit_events", "rm_sla_events"):  # from before the redrive marker
            curs.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS redrive TEXT")
        _adopt_old_tracking(_PgCursor(self, curs), old)

    @contextmanager
    def write(self) -> Iterator[Cursor]:
        with self.datastore.transaction(commit=True) as curs:
            yield _PgCursor(self, curs)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(_pg(sql), tuple(params))
            return list(curs.fetchall())

    def close(self) -> None:
        self.datastore.close()


def open_postgres(location: StoreLocation, connect_timeout_s: float) -> PostgresReadModelRecorder:
    # One plain connection first: its error says why (refused, auth, no database), where the
    # pool would only time out.
    psycopg.connect(location.libpq_url(connect_timeout_s), autocommit=True).close()
    datastore = PostgresDatastore(
        dbname=location.dbname,
        host=location.host,
        port=location.port,
        user=location.user,
        password=location.password,
        connect_timeout=float(effective_timeout_s(connect_timeout_s)),
        pool_size=1,
        max_overflow=4,
        pool_open_timeout=float(effective_timeout_s(connect_timeout_s)),
    )
    recorder = PostgresReadModelRecorder(datastore)
    recorder.create_table()
    return recorder


def open_recorder(url: str) -> SQLiteReadModelRecorder | PostgresReadModelRecorder:
    """The read-model recorder of a `sqlite:///path` or `postgresql://…` URL (tables created)."""
    location = parse_store_url(url, what="read-model")
    if location.scheme == "sqlite":
        return open_sqlite(location.path)
    query = parse_qs(urlsplit(url).query)
    timeout = float(query.get("connect_timeout", ["10"])[0])
    return open_postgres(location, timeout)
