"""The `sla` and `audit` read models in one SQLite/PostgreSQL database, tracked by eventsourcing.

`ReadModelStore.apply` writes a batch's rows *and* the new tracking positions in one
transaction of the read-model recorder (`infra.read_model_drivers`), skipping what its tracking
says was already applied; rows are keyed by (incident_id, position), so the same event
delivered twice at different offsets (relay redelivery) is stored once. Tracking names are
`"<read model>@<source>"` (`projections.read_models.tracking_name`).

`reset(names)` empties read models and their tracking, so they are rebuilt by feeding them
again (from Kafka offset 0, or from the store).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import structlog
from eventsourcing.persistence import IntegrityError, OperationalError, Tracking

from slatrail.consumers.projection_ports import RecordedIds
from slatrail.domain.contract_version import ContractBook
from slatrail.domain.model import IncidentEvent
from slatrail.infra.ledger_table import (
    advance,
    any_row,
    close_gaps,
    delete_ledgers,
    insert_rows,
    keep_applied,
    mismatched,
    reach,
    replace_ledgers,
)
from slatrail.infra.read_model_drivers import ReadModelRecorder, open_recorder
from slatrail.infra.store import StoreURLError
from slatrail.projections.ledger import (
    LEDGER_APPLIED,
    LEDGER_CONTIGUOUS,
    LEDGER_CONTRACTS,
    LEDGER_PREFIX,
    LEDGER_TABLE,
    LEDGER_TRACKING,
    TABLE_COLUMNS,
    LedgerInterval,
    row_interval,
    table_row,
    to_us,
)
from slatrail.projections.read_models import (
    AUDIT,
    EVENT_COLUMNS,
    READ_MODELS,
    SLA,
    TRACKING_SEPARATOR,
    TrackedEvent,
    check_read_models,
    new_rows,
    row_event,
    tracking_source,
)

ReadModelURLError = StoreURLError
"""A read-model URL slatrail cannot use."""

_TABLES = {
    SLA: ("rm_sla_events", "rm_sla_incidents", LEDGER_TABLE, LEDGER_APPLIED),
    AUDIT: ("rm_audit_events",),
}
_COLUMNS = ", ".join(EVENT_COLUMNS)
_RETRIES = 5  # a concurrent writer got further first: read the tracking again
_LEDGER_BATCH = 5000  # ledger rows per insert / per page read
_REMEASURE = 200  # incidents recomputed per transaction when a contract version is recorded
GAP_LOOKAHEAD = 5000  # store notifications looked at past the ledger's contiguous watermark
log = structlog.get_logger("slatrail.read_models")


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


def _table(read_model: str) -> str:
    return _TABLES[check_read_models([read_model])[0]][0]


class ReadModelStore:
    """The `sla` and `audit` read models and their tracking, in one SQLite/PostgreSQL database.

    Thread-safe. Several processes may write the same database: rows are written idempotently
    and tracking only moves forward (a lost race is retried).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._recorder: ReadModelRecorder = open_recorder(url)
        self._lock = threading.RLock()

    def close(self) -> None:
        self._recorder.close()

    # -- writing ----------------------------------------------------------------------

    def apply(
        self,
        batch: Sequence[TrackedEvent],
        *,
        read_models: Iterable[str] = READ_MODELS,
        contracts: ContractBook | None = None,
        notification: int | None = None,
    ) -> int:
        """Store the events each read model has not seen yet, with the new tracking positions.

        Returns how many (event, read model) rows were newly written. Events whose position is
        at or below a read model's tracking for their source are skipped for that read model.
        With `contracts` (and the `sla` read model), the SLA ledger of every incident the batch
        touches is computed again under them from its history, from the earliest instant a
        batch event of it occurred at on, and replaces its rows in the same transaction;
        `notification` is the highest store notification id in the batch.
        """
        if not batch:
            return 0
        names = check_read_models(read_models)
        ledger = contracts if SLA in names else None
        for attempt in range(_RETRIES):
            try:
                with self._lock:
                    return self._apply(batch, names, ledger, notification)
            except (IntegrityError, OperationalError):
                if attempt == _RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _apply(
        self,
        batch: Sequence[TrackedEvent],
        names: list[str],
        ledger: ContractBook | None,
        notification: int | None,
    ) -> int:
        rows: dict[int, tuple[Any, ...]] = {}  # computed once per event, shared by read models
        sources = {item.source for item in batch}
        written = 0
        with self._recorder.write() as cursor:
            if ledger is not None:
                # an empty `sla` read model fed from the start keeps a complete ledger
                starting = cursor.max_tracking_id(LEDGER_CONTRACTS) is None and not any_row(
                    cursor, "rm_sla_events"
                )
            for name in names:
                tracked: dict[str, int] = {}
                for source in sources:
                    tracking = f"{name}{TRACKING_SEPARATOR}{source}"
                    position = cursor.max_tracking_id(tracking)
                    if position is not None:
                        tracked[tracking] = position
                new = new_rows(name, batch, tracked, rows)
                if not new.events:
                    continue
                cursor.executemany(
                    f"INSERT INTO {_TABLES[name][0]} ({_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (incident_id, position) DO NOTHING",
                    new.events,
                )
                written += max(cursor.rowcount, 0)
                if new.reported:
                    cursor.executemany(
                        "INSERT INTO rm_sla_incidents (incident_id, customer, reported_at) "
                        "VALUES (?, ?, ?) ON CONFLICT (incident_id) DO NOTHING",
                        new.reported,
                    )
                for tracking, position in new.positions.items():
                    cursor.insert_tracking(Tracking(tracking, position))
            if ledger is not None:
                since: dict[str, datetime] = {}  # incident → its earliest event in the batch
                for item in batch:
                    at, incident = item.event.occurred_at, item.event.incident_id
                    since[incident] = min(since.get(incident, at), at)
                replace_ledgers(cursor, sorted(since), ledger, since)
                if starting:
                    cursor.insert_tracking(Tracking(LEDGER_CONTRACTS, ledger.latest.version))
                if cursor.max_tracking_id(LEDGER_CONTRACTS) is not None:
                    before = cursor.max_tracking_id(LEDGER_TRACKING)
                    advance(cursor, LEDGER_TRACKING, notification)
                    keep_applied(cursor, (item.store_notification for item in batch), before)
        return written

    def remeasure(self, contracts: ContractBook, *, limit: int = _REMEASURE) -> int:
        """Bring a complete ledger table to the latest contract version: recompute (at most
        `limit` per call, one transaction) the incidents whose rows another version measures;
        when none is left, record the version. Returns the incidents recomputed."""
        version = contracts.latest.version
        with self._lock:
            measured = self._recorder.max_tracking_id(LEDGER_CONTRACTS)
            if measured is None or measured >= version:
                return 0
            try:
                return self._remeasure(contracts, version, limit)
            except IntegrityError:  # another process recorded the version first
                return 0

    def _remeasure(self, contracts: ContractBook, version: int, limit: int) -> int:
        with self._recorder.write() as cursor:
            if (cursor.max_tracking_id(LEDGER_CONTRACTS) or 0) >= version:
                return 0
            wrong, params = mismatched(contracts)
            cursor.execute(
                f"SELECT DISTINCT incident_id FROM {LEDGER_TABLE} WHERE {wrong} "
                "ORDER BY incident_id LIMIT ?",
                (*params, limit),
            )
            ids = [str(row[0]) for row in cursor.fetchall()]
            replace_ledgers(cursor, ids, contracts)
            if len(ids) < limit:
                cursor.insert_tracking(Tracking(LEDGER_CONTRACTS, version))
                log.info("ledger_remeasured", contract_version=version)
        return len(ids)

    def reset(self, read_models: Iterable[str] = READ_MODELS) -> None:
        """Empty read models and forget their tracking (they are then fed from the start);
        the SLA ledger goes with the `sla` read model it is kept with."""
        names = check_read_models(read_models)
        with self._lock, self._recorder.write() as cursor:
            for name in names:
                prefixes = [f"{name}{TRACKING_SEPARATOR}"]
                if name == SLA:
                    prefixes.append(LEDGER_PREFIX)
                for table in _TABLES[name]:
                    cursor.execute(f"DELETE FROM {table}")
                for prefix in prefixes:
                    cursor.execute(
                        f"DELETE FROM {self._recorder.tracking_table} "
                        "WHERE application_name LIKE ?",
                        (f"{prefix}%",),
                    )

    # -- the SLA ledger (kept by `apply`, rebuilt by `replay`; docs/scale.md#the-sla-ledger) --

    def rebuild_ledger(
        self,
        ledgers: Iterable[tuple[datetime, Sequence[LedgerInterval]]],
        position: int,
        version: int,
    ) -> int:
        """Replace the ledger table with `ledgers` (each incident's report instant and its
        intervals), computed from the store at notification `position` under contract
        `version`. The tracking records are removed first and written last: a table whose
        rebuild was interrupted is never current. Each chunk replaces its incidents' rows (a
        projection consumer running meanwhile may have written some)."""
        with self._lock:
            with self._recorder.write() as cursor:
                cursor.execute(f"DELETE FROM {LEDGER_TABLE}")
                cursor.execute(
                    f"DELETE FROM {self._recorder.tracking_table} WHERE application_name LIKE ?",
                    (f"{LEDGER_PREFIX}%",),
                )
            written = 0
            pending: list[tuple[Any, ...]] = []
            for reported_at, intervals in ledgers:
                pending.extend(table_row(i, reported_at) for i in intervals)
                if len(pending) >= _LEDGER_BATCH:
                    written += self._insert_ledger(pending)
                    pending = []
            written += self._insert_ledger(pending)
            with self._recorder.write() as cursor:
                cursor.execute(f"DELETE FROM {LEDGER_APPLIED}")
                cursor.insert_tracking(Tracking(LEDGER_CONTRACTS, version))
                cursor.insert_tracking(Tracking(LEDGER_TRACKING, position))
                cursor.insert_tracking(Tracking(LEDGER_CONTIGUOUS, position))
        return written

    def _insert_ledger(self, rows: list[tuple[Any, ...]]) -> int:
        if rows:
            with self._recorder.write() as cursor:
                delete_ledgers(cursor, sorted({str(row[0]) for row in rows}))
                insert_rows(cursor, rows)
        return len(rows)

    def ledger_position(self) -> int | None:
        """The highest store notification the ledger table has applied (None: not built)."""
        return self._recorder.max_tracking_id(LEDGER_TRACKING)

    def ledger_contiguous(self) -> int | None:
        """The notification up to which the ledger table has applied every incident event of
        the store, as last moved up (None: a table kept before it was tracked)."""
        return self._recorder.max_tracking_id(LEDGER_CONTIGUOUS)

    def ledger_reach(self, recorded: RecordedIds, *, limit: int = GAP_LOOKAHEAD) -> int | None:
        """How far the ledger table has applied every incident event of the store now (reading
        only; None: no watermark kept)."""
        watermark = self.ledger_contiguous()
        if watermark is None:
            return None
        return reach(watermark, self._recorder.read, recorded, limit)

    def close_ledger_gaps(self, recorded: RecordedIds, *, limit: int = GAP_LOOKAHEAD) -> int | None:
        """Move the ledger's contiguous watermark up over every gap that has closed (the
        projection consumer, after each batch); returns it. Another writer moving it at the
        same time (a second `serve`) is no failure: None, and the next batch tries again."""
        try:
            with self._lock, self._recorder.write() as cursor:
                return close_gaps(cursor, recorded, limit)
        except (IntegrityError, OperationalError) as error:
            log.info("ledger_watermark_race", error_class=type(error).__name__)
            return None

    def ledger_version(self) -> int | None:
        """The contract version the whole table is measured by (None: not complete)."""
        return self._recorder.max_tracking_id(LEDGER_CONTRACTS)

    def ledger_status(
        self, as_of: datetime, *, customer: str | None = None
    ) -> list[tuple[str, str, str, int]]:
        """(customer, clock, status, clocks) of the intervals covering `as_of`: one query."""
        t = to_us(as_of)
        where = "start_us <= ? AND (end_us IS NULL OR end_us > ?)"
        params: list[Any] = [t, t]
        if customer is not None:
            where += " AND customer = ?"
            params.append(customer)
        rows = self._recorder.read(
            f"SELECT customer, metric, status, COUNT(*) FROM {LEDGER_TABLE} WHERE {where} "
            "GROUP BY customer, metric, status",
            params,
        )
        return [(str(c), str(m), str(s), int(n)) for c, m, s, n in rows]

    def ledger_intervals(
        self,
        *,
        customer: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        page: int = _LEDGER_BATCH,
    ) -> Iterator[LedgerInterval]:
        """The stored intervals overlapping `[start, end)`, in report order, each incident's
        clocks in metric order, a page at a time (keyset pagination)."""
        where: list[str] = []
        params: list[Any] = []
        if customer is not None:
            where.append("customer = ?")
            params.append(customer)
        if end is not None:
            where.append("start_us < ?")
            params.append(to_us(end))
        if start is not None:
            where.append("(end_us IS NULL OR end_us > ?)")
            params.append(to_us(start))
        order = "reported_us, incident_id, metric_rank, start_us"
        after: tuple[Any, ...] | None = None
        while True:
            keyset = [f"({order}) > (?, ?, ?, ?)"] if after is not None else []
            clause = " AND ".join(where + keyset)
            rows = self._recorder.read(
                f"SELECT {', '.join(TABLE_COLUMNS)} FROM {LEDGER_TABLE}"
                f"{' WHERE ' + clause if clause else ''} ORDER BY {order} LIMIT ?",
                (*params, *(after or ()), page),
            )
            for row in rows:
                yield row_interval(row)
            if len(rows) < page:
                return
            last = dict(zip(TABLE_COLUMNS, rows[-1], strict=True))
            after = tuple(
                last[c] for c in ("reported_us", "incident_id", "metric_rank", "start_us")
            )

    def ledger_incidents(
        self,
        status: str,
        as_of: datetime,
        *,
        customer: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page: int = _LEDGER_BATCH,
    ) -> Iterator[str]:
        """The incidents with a clock in `status` at `as_of` (reported in `[since, until)`), in
        report order, a page at a time (keyset pagination)."""
        t = to_us(as_of)
        where = ["status = ?", "start_us <= ?", "(end_us IS NULL OR end_us > ?)"]
        params: list[Any] = [status, t, t]
        for clause, value in (
            ("customer = ?", customer),
            ("reported_us >= ?", to_us(since)),
            ("reported_us < ?", to_us(until)),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        after: tuple[Any, ...] = ()
        while True:
            keyset = ["(reported_us, incident_id) > (?, ?)"] if after else []
            rows = self._recorder.read(
                f"SELECT reported_us, incident_id FROM {LEDGER_TABLE} "
                f"WHERE {' AND '.join(where + keyset)} GROUP BY reported_us, incident_id "
                "ORDER BY reported_us, incident_id LIMIT ?",
                (*params, *after, page),
            )
            for _, incident_id in rows:
                yield str(incident_id)
            if len(rows) < page:
                return
            after = (rows[-1][0], rows[-1][1])

    # -- tracking -----------------------------------------------------------------------

    def positions(self, read_model: str) -> dict[str, int]:
        """Tracking of one read model: source → last applied position."""
        rows = self._recorder.read(
            f"SELECT application_name, notification_id FROM {self._recorder.tracking_table} "
            "WHERE application_name LIKE ?",
            (f"{read_model}{TRACKING_SEPARATOR}%",),
        )
        out: dict[str, int] = {}
        for name, position in rows:
            source = tracking_source(read_model, str(name))
            if source is not None:
                out[source] = int(position)
        return out

    def position(self, read_model: str, source: str) -> int | None:
        """Last applied position of `source` in `read_model` (None: nothing yet)."""
        return self._recorder.max_tracking_id(f"{read_model}{TRACKING_SEPARATOR}{source}")

    # -- reading ------------------------------------------------------------------------

    def incident_events(self, incident_id: str, read_model: str = AUDIT) -> list[IncidentEvent]:
        """One incident's events in position order (empty if unknown)."""
        rows = self._recorder.read(
            f"SELECT {_COLUMNS} FROM {_table(read_model)} WHERE incident_id = ? ORDER BY position",
            (incident_id,),
        )
        return [row_event(row) for row in rows]

    def histories(
        self, read_model: str = SLA, *, customer: str | None = None
    ) -> dict[str, list[IncidentEvent]]:
        """Every incident's events (optionally one customer's), each list in position order."""
        table = _table(read_model)
        if customer is not None and read_model == SLA:
            rows = self._recorder.read(
                f"SELECT {', '.join('e.' + c for c in EVENT_COLUMNS)} "
                f"FROM {table} e JOIN rm_sla_incidents i ON i.incident_id = e.incident_id "
                "WHERE i.customer = ? ORDER BY e.incident_id, e.position",
                (customer,),
            )
        else:
            rows = self._recorder.read(
                f"SELECT {_COLUMNS} FROM {table} ORDER BY incident_id, position"
            )
        grouped: dict[str, list[IncidentEvent]] = {}
        for row in rows:
            event = row_event(row)
            grouped.setdefault(event.incident_id, []).append(event)
        if customer is not None and read_model != SLA:
            grouped = {
                k: v for k, v in grouped.items() if v and v[0].data.get("customer") == customer
            }
        return grouped

    def sla_incidents(self, *, customer: str | None = None) -> list[tuple[str, str]]:
        """(incident_id, reported_at) of the `sla` read model's incidents (of one customer),
        from its incident table: what a question selects before reading any event."""
        if customer is None:
            rows = self._recorder.read("SELECT incident_id, reported_at FROM rm_sla_incidents")
        else:
            rows = self._recorder.read(
                "SELECT incident_id, reported_at FROM rm_sla_incidents WHERE customer = ?",
                (customer,),
            )
        return [(str(r[0]), str(r[1])) for r in rows]

    def sla_histories_of(self, incident_ids: Sequence[str]) -> list[list[IncidentEvent]]:
        """The `sla` read model's events of each of `incident_ids` that has any (one query),
        in the order given, each in position order."""
        if not incident_ids:
            return []
        marks = ", ".join("?" * len(incident_ids))
        rows = self._recorder.read(
            f"SELECT {_COLUMNS} FROM rm_sla_events WHERE incident_id IN ({marks}) "
            "ORDER BY incident_id, position",
            tuple(incident_ids),
        )
        grouped: dict[str, list[IncidentEvent]] = {}
        for row in rows:
            event = row_event(row)
            grouped.setdefault(event.incident_id, []).append(event)
        return [grouped[i] for i in incident_ids if i in grouped]

    def counts(self, read_model: str) -> tuple[int, int]:
        """(incidents, events) in a read model."""
        rows = self._recorder.read(
            f"SELECT COUNT(DISTINCT incident_id), COUNT(*) FROM {_table(read_model)}"
        )
        return int(rows[0][0]), int(rows[0][1])

    def iter_rows(self, read_model: str, *, page: int = 10_000) -> Iterator[tuple[Any, ...]]:
        """Every stored row of a read model as stored — incident_id, position, type,
        occurred_at, recorded_at, actor, source, message_id, data (canonical JSON text),
        prev_hash, hash, redrive — in (incident_id, position) order, a page at a time:
        `slatrail verify` checks them against the store without holding them."""
        table = _table(read_model)
        after: tuple[str, int] = ("", 0)
        while True:
            rows = self._recorder.read(
                f"SELECT {_COLUMNS} FROM {table} "
                "WHERE (incident_id, position) > (?, ?) ORDER BY incident_id, position LIMIT ?",
                (after[0], after[1], page),
            )
            yield from rows
            if len(rows) < page:
                return
            after = (rows[-1][0], int(rows[-1][1]))

    def sla_index(self) -> dict[str, tuple[str, str]]:
        """The `sla` read model's incident index: incident_id → (customer, reported_at)."""
        rows = self._recorder.read(
            "SELECT incident_id, customer, reported_at FROM rm_sla_incidents"
        )
        return {str(r[0]): (str(r[1]), str(r[2])) for r in rows}
