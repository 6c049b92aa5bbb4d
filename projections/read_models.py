"""Read models kept outside the event store, each write stored with its tracking position.

A read model is fed `TrackedEvent`s: an `IncidentEvent` plus where it was read from — a Kafka
partition of `incidents.events` (source `"<topic>:<partition>"`, position = offset) or the
store's notification log (source `"store"`, position = notification id). `ReadModelStore.apply`
writes a batch's rows *and* the new tracking positions in one transaction, skipping what its
tracking says was already applied; rows are keyed by (incident_id, position), so the same event
delivered twice at different offsets (relay redelivery) is stored once.

Two read models live in one database (SQLite file or PostgreSQL):

* `sla`   — every incident's event timeline plus an index (customer, reported_at); the SLA
  view is evaluated at query time for any `as_of` (`projections.sla.sla_view` over it).
* `audit` — the audit trail: every recorded event with its chain hashes.

`reset(names)` empties read models and their tracking, so they are rebuilt by feeding them
again (from Kafka offset 0, or from the store).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from domain.model import EventType, IncidentEvent, format_instant, parse_instant

SLA = "sla"
AUDIT = "audit"
READ_MODELS: tuple[str, ...] = (SLA, AUDIT)
STORE_SOURCE = "store"


def kafka_source(topic: str, partition: int) -> str:
    """Tracking source name of a Kafka partition."""
    return f"{topic}:{partition}"


@dataclass(frozen=True, slots=True)
class TrackedEvent:
    """An event with the position it was read at (`source` names the sequence)."""

    source: str
    position: int
    event: IncidentEvent


# -- IncidentEvent ⇄ JSON (also the body of the incidents.events envelope) ------------------


def event_to_json(event: IncidentEvent) -> dict[str, Any]:
    return {
        "incident_id": event.incident_id,
        "position": event.position,
        "type": str(event.type),
        "occurred_at": format_instant(event.occurred_at),
        "recorded_at": format_instant(event.recorded_at),
        "actor": event.actor,
        "source": event.source,
        "message_id": event.message_id,
        "data": dict(event.data),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        **({"redrive": event.redrive} if event.redrive is not None else {}),
    }


def event_from_json(obj: Mapping[str, Any]) -> IncidentEvent:
    """Inverse of `event_to_json`; raises KeyError/ValueError/TypeError on a malformed object."""
    data = obj["data"]
    if not isinstance(data, dict):
        raise TypeError("data must be an object")
    source = obj["source"]
    redrive = obj.get("redrive")
    return IncidentEvent(
        incident_id=str(obj["incident_id"]),
        position=int(obj["position"]),
        type=EventType(obj["type"]),
        occurred_at=parse_instant(str(obj["occurred_at"])),
        recorded_at=parse_instant(str(obj["recorded_at"])),
        actor=str(obj["actor"]),
        source=None if source is None else str(source),
        message_id=str(obj["message_id"]),
        data=data,
        prev_hash=str(obj["prev_hash"]),
        hash=str(obj["hash"]),
        redrive=None if redrive is None else str(redrive),
    )


# -- database access (SQLite / PostgreSQL) -------------------------------------------------


class _Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class _Database(Protocol):
    dialect: str

    def write(self) -> AbstractContextManager[_Cursor]: ...

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def close(self) -> None: ...


class ReadModelURLError(ValueError):
    """A read-model URL slatrail cannot use."""


class _SQLite:
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        memory = path == ":memory:"
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=60.0
        )
        if not memory:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.RLock()

    @contextmanager
    def write(self) -> Iterator[_Cursor]:
        with self._lock:
            cursor = self._conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                self._conn.rollback()
                raise
            else:
                self._conn.commit()
            finally:
                cursor.close()

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _PgCursor:
    """`?` placeholders on a psycopg cursor."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        count: int = self._cursor.rowcount
        return count

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        return self._cursor.executemany(sql.replace("?", "%s"), rows)

    def fetchall(self) -> list[Any]:
        rows: list[Any] = self._cursor.fetchall()
        return rows


class _Postgres:
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: Any = None
        self._lock = threading.RLock()

    def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        return self._conn

    @contextmanager
    def write(self) -> Iterator[_Cursor]:
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cursor:
                    yield _PgCursor(cursor)
            except BaseException:
                if conn.broken:
                    conn.close()
                raise

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            conn = self._connection()
            try:
                with conn.cursor() as cursor:
                    cursor.execute(sql.replace("?", "%s"), params)
                    return list(cursor.fetchall())
            except BaseException:
                if conn.broken:
                    conn.close()
                raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _open(url: str) -> _Database:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(url[len("sqlite://") :])[1:]
        if not path:
            raise ReadModelURLError(f"sqlite read-model URL needs a path: {url!r}")
        return _SQLite(path)
    if parsed.scheme in ("postgresql", "postgres"):
        return _Postgres(url)
    raise ReadModelURLError(  # the URL itself is not shown: it may hold a password
        f"unsupported read-model URL scheme {parsed.scheme!r}: use sqlite:///path or postgresql://…"
    )


def default_read_model_url(store_url: str) -> str:
    """Next to a SQLite store (`x.db` → `x-read.db`); the same database for PostgreSQL."""
    parsed = urlparse(store_url)
    if parsed.scheme != "sqlite":
        return store_url
    path = unquote(store_url[len("sqlite://") :])[1:]
    if path in ("", ":memory:"):
        return "sqlite:///:memory:"
    p = Path(path)
    return "sqlite:///" + str(p.with_name(f"{p.stem}-read{p.suffix or '.db'}"))


# -- the store ------------------------------------------------------------------------------

_EVENT_COLUMNS = (
    "incident_id, position, type, occurred_at, recorded_at, actor, source, message_id, data, "
    "prev_hash, hash, redrive"
)


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


def _add_redrive_column(cursor: _Cursor, dialect: str) -> None:
    """Read models created before events could come by redrive get the `redrive` column."""
    for table in ("rm_audit_events", "rm_sla_events"):
        if dialect == "postgresql":
            cursor.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS redrive TEXT")
            continue
        cursor.execute(f"PRAGMA table_info({table})")
        if "redrive" not in {str(row[1]) for row in cursor.fetchall()}:
            cursor.execute(f"ALTER TABLE {table} ADD COLUMN redrive TEXT")


def _schema(dialect: str) -> list[str]:
    big = "BIGINT" if dialect == "postgresql" else "INTEGER"
    return [
        "CREATE TABLE IF NOT EXISTS rm_tracking ("
        "read_model TEXT NOT NULL, source TEXT NOT NULL, "
        f"position {big} NOT NULL, PRIMARY KEY (read_model, source))",
        _events_table("rm_audit_events", big),
        _events_table("rm_sla_events", big),
        "CREATE TABLE IF NOT EXISTS rm_sla_incidents ("
        "incident_id TEXT PRIMARY KEY, customer TEXT NOT NULL, reported_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rm_sla_incidents_customer ON rm_sla_incidents (customer)",
    ]


_TABLES = {
    SLA: ("rm_sla_events", "rm_sla_incidents"),
    AUDIT: ("rm_audit_events",),
}


def _row(event: IncidentEvent) -> tuple[Any, ...]:
    return (
        event.incident_id,
        event.position,
        str(event.type),
        format_instant(event.occurred_at),
        format_instant(event.recorded_at),
        event.actor,
        event.source,
        event.message_id,
        json.dumps(dict(event.data), ensure_ascii=False, separators=(",", ":")),
        event.prev_hash,
        event.hash,
        event.redrive,
    )


def _event(row: Sequence[Any]) -> IncidentEvent:
    return IncidentEvent(
        incident_id=row[0],
        position=int(row[1]),
        type=EventType(row[2]),
        occurred_at=parse_instant(row[3]),
        recorded_at=parse_instant(row[4]),
        actor=row[5],
        source=row[6],
        message_id=row[7],
        data=json.loads(row[8]),
        prev_hash=row[9],
        hash=row[10],
        redrive=row[11],
    )


class ReadModelStore:
    """The `sla` and `audit` read models and their tracking, in one SQLite/PostgreSQL database.

    Thread-safe (one connection behind a lock). Several processes may write the same database:
    rows and tracking are written idempotently.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._db = _open(url)
        with self._db.write() as cursor:
            for statement in _schema(self._db.dialect):
                cursor.execute(statement)
            _add_redrive_column(cursor, self._db.dialect)

    def close(self) -> None:
        self._db.close()

    # -- writing ----------------------------------------------------------------------

    def apply(
        self, batch: Sequence[TrackedEvent], *, read_models: Iterable[str] = READ_MODELS
    ) -> int:
        """Store the events each read model has not seen yet, with the new tracking positions.

        Returns how many (event, read model) rows were newly written. Events whose position is
        at or below a read model's tracking for their source are skipped for that read model.
        """
        if not batch:
            return 0
        names = _check(read_models)
        rows: dict[int, tuple[Any, ...]] = {}  # computed once per event, shared by read models
        written = 0
        with self._db.write() as cursor:
            for name in names:
                tracked = self._positions(cursor, name)
                fresh: list[tuple[Any, ...]] = []
                reported: list[tuple[Any, ...]] = []
                advanced: dict[str, int] = {}
                for index, item in enumerate(batch):
                    if item.position <= tracked.get(item.source, -1):
                        continue
                    row = rows.get(index)
                    if row is None:
                        row = rows[index] = _row(item.event)
                    fresh.append(row)
                    if name == SLA and item.event.type is EventType.REPORTED:
                        customer = str(item.event.data.get("customer", ""))
                        reported.append((row[0], customer, row[3]))
                    if item.position > advanced.get(item.source, -1):
                        advanced[item.source] = item.position
                if not fresh:
                    continue
                cursor.executemany(
                    f"INSERT INTO {_TABLES[name][0]} ({_EVENT_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (incident_id, position) DO NOTHING",
                    fresh,
                )
                written += max(cursor.rowcount, 0)
                if reported:
                    cursor.executemany(
                        "INSERT INTO rm_sla_incidents (incident_id, customer, reported_at) "
                        "VALUES (?, ?, ?) ON CONFLICT (incident_id) DO NOTHING",
                        reported,
                    )
                cursor.executemany(
                    "INSERT INTO rm_tracking (read_model, source, position) VALUES (?, ?, ?) "
                    "ON CONFLICT (read_model, source) DO UPDATE "
                    "SET position = excluded.position "
                    "WHERE rm_tracking.position < excluded.position",
                    [(name, source, position) for source, position in advanced.items()],
                )
        return written

    def reset(self, read_models: Iterable[str] = READ_MODELS) -> None:
        """Empty read models and forget their tracking (they are then fed from the start)."""
        names = _check(read_models)
        with self._db.write() as cursor:
            for name in names:
                for table in _TABLES[name]:
                    cursor.execute(f"DELETE FROM {table}")
                cursor.execute("DELETE FROM rm_tracking WHERE read_model = ?", (name,))

    # -- tracking -----------------------------------------------------------------------

    def _positions(self, cursor: _Cursor, name: str) -> dict[str, int]:
        cursor.execute("SELECT source, position FROM rm_tracking WHERE read_model = ?", (name,))
        return {str(source): int(position) for source, position in cursor.fetchall()}

    def positions(self, read_model: str) -> dict[str, int]:
        """Tracking of one read model: source → last applied position."""
        rows = self._db.read(
            "SELECT source, position FROM rm_tracking WHERE read_model = ?", (read_model,)
        )
        return {str(source): int(position) for source, position in rows}

    def position(self, read_model: str, source: str) -> int | None:
        """Last applied position of `source` in `read_model` (None: nothing yet)."""
        return self.positions(read_model).get(source)

    # -- reading ------------------------------------------------------------------------

    def incident_events(self, incident_id: str, read_model: str = AUDIT) -> list[IncidentEvent]:
        """One incident's events in position order (empty if unknown)."""
        table = _TABLES[_check([read_model])[0]][0]
        rows = self._db.read(
            f"SELECT {_EVENT_COLUMNS} FROM {table} WHERE incident_id = ? ORDER BY position",
            (incident_id,),
        )
        return [_event(row) for row in rows]

    def histories(
        self, read_model: str = SLA, *, customer: str | None = None
    ) -> dict[str, list[IncidentEvent]]:
        """Every incident's events (optionally one customer's), each list in position order."""
        table = _TABLES[_check([read_model])[0]][0]
        if customer is not None and read_model == SLA:
            rows = self._db.read(
                f"SELECT {', '.join('e.' + c for c in _EVENT_COLUMNS.split(', '))} "
                f"FROM {table} e JOIN rm_sla_incidents i ON i.incident_id = e.incident_id "
                "WHERE i.customer = ? ORDER BY e.incident_id, e.position",
                (customer,),
            )
        else:
            rows = self._db.read(
                f"SELECT {_EVENT_COLUMNS} FROM {table} ORDER BY incident_id, position"
            )
        grouped: dict[str, list[IncidentEvent]] = {}
        for row in rows:
            event = _event(row)
            grouped.setdefault(event.incident_id, []).append(event)
        if customer is not None and read_model != SLA:
            grouped = {
                k: v for k, v in grouped.items() if v and v[0].data.get("customer") == customer
            }
        return grouped

    def counts(self, read_model: str) -> tuple[int, int]:
        """(incidents, events) in a read model."""
        table = _TABLES[_check([read_model])[0]][0]
        rows = self._db.read(f"SELECT COUNT(DISTINCT incident_id), COUNT(*) FROM {table}")
        return int(rows[0][0]), int(rows[0][1])

    def iter_rows(self, read_model: str, *, page: int = 10_000) -> Iterator[tuple[Any, ...]]:
        """Every stored row of a read model as stored — incident_id, position, type,
        occurred_at, recorded_at, actor, source, message_id, data (canonical JSON text),
        prev_hash, hash, redrive — in (incident_id, position) order, a page at a time:
        `slatrail verify` checks them against the store without holding them."""
        table = _TABLES[_check([read_model])[0]][0]
        after: tuple[str, int] = ("", 0)
        while True:
            rows = self._db.read(
                f"SELECT {_EVENT_COLUMNS} FROM {table} "
                "WHERE (incident_id, position) > (?, ?) ORDER BY incident_id, position LIMIT ?",
                (after[0], after[1], page),
            )
            yield from rows
            if len(rows) < page:
                return
            after = (rows[-1][0], int(rows[-1][1]))

    def sla_index(self) -> dict[str, tuple[str, str]]:
        """The `sla` read model's incident index: incident_id → (customer, reported_at)."""
        rows = self._db.read("SELECT incident_id, customer, reported_at FROM rm_sla_incidents")
        return {str(r[0]): (str(r[1]), str(r[2])) for r in rows}


def _check(names: Iterable[str]) -> list[str]:
    out = list(names)
    for name in out:
        if name not in _TABLES:
            raise ValueError(f"unknown read model {name!r}: one of {', '.join(READ_MODELS)}")
    return out
