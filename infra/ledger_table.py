"""The SLA ledger's rows written inside a read-model transaction (docs/scale.md#the-sla-ledger):
each incident's intervals replaced from its history in the `sla` read model, the rows another
contract version measures found, tracking moved forward. Used by `ReadModelStore`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from eventsourcing.persistence import Tracking

from slatrail.consumers.projection_ports import RecordedIds
from slatrail.domain.contract_version import ContractBook
from slatrail.domain.model import IncidentEvent
from slatrail.infra.read_model_drivers import Cursor
from slatrail.projections.ledger import (
    LEDGER_APPLIED,
    LEDGER_CONTIGUOUS,
    LEDGER_TABLE,
    TABLE_COLUMNS,
    LedgerInterval,
    contiguous_reach,
    incident_ledger,
    measuring_segments,
    row_interval,
    table_row,
)
from slatrail.projections.read_models import EVENT_COLUMNS, row_event

_COLUMNS = ", ".join(EVENT_COLUMNS)
_IN_CHUNK = 400  # incident ids per `IN (…)` (under SQLite's parameter limit)


def any_row(cursor: Cursor, table: str) -> bool:
    cursor.execute(f"SELECT 1 FROM {table} LIMIT 1")
    return bool(cursor.fetchall())


def advance(cursor: Cursor, name: str, position: int | None) -> None:
    """Move a tracking record forward to `position` (never back)."""
    if position is None:
        return
    current = cursor.max_tracking_id(name)
    if current is None or position > current:
        cursor.insert_tracking(Tracking(name, position))


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start : start + _IN_CHUNK]


def delete_ledgers(cursor: Cursor, ids: Sequence[str]) -> None:
    for chunk in _chunks(ids):
        marks = ", ".join("?" for _ in chunk)
        cursor.execute(f"DELETE FROM {LEDGER_TABLE} WHERE incident_id IN ({marks})", chunk)


def insert_rows(cursor: Cursor, rows: Sequence[tuple[Any, ...]]) -> None:
    if rows:
        cursor.executemany(
            f"INSERT INTO {LEDGER_TABLE} ({', '.join(TABLE_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in TABLE_COLUMNS)})",
            rows,
        )


def replace_ledgers(
    cursor: Cursor,
    ids: Sequence[str],
    contracts: ContractBook,
    since: Mapping[str, datetime] | None = None,
) -> None:
    """The ledger of each of `ids` computed again from its whole history in the `sla` read
    model (as this transaction sees it) and written in place of its rows; with `since` (the
    earliest instant each incident's new events occurred at), its stored intervals before
    then are kept and only the rest is computed (`incident_ledger`)."""
    for chunk in _chunks(ids):
        marks = ", ".join("?" for _ in chunk)
        cursor.execute(
            f"SELECT {_COLUMNS} FROM rm_sla_events WHERE incident_id IN ({marks}) "
            "ORDER BY incident_id, position",
            chunk,
        )
        histories: dict[str, list[IncidentEvent]] = {}
        for row in cursor.fetchall():
            event = row_event(row)
            histories.setdefault(event.incident_id, []).append(event)
        kept: dict[str, list[LedgerInterval]] = {}
        if since is not None:
            cursor.execute(
                f"SELECT {', '.join(TABLE_COLUMNS)} FROM {LEDGER_TABLE} "
                f"WHERE incident_id IN ({marks})",
                chunk,
            )
            for row in cursor.fetchall():
                interval = row_interval(row)
                kept.setdefault(interval.incident_id, []).append(interval)
        rows = [
            table_row(interval, events[0].occurred_at)
            for incident, events in histories.items()
            for interval in incident_ledger(
                events,
                contracts,
                since=None if since is None else since.get(incident),
                kept=kept.get(incident, ()),
            )
        ]
        delete_ledgers(cursor, chunk)
        insert_rows(cursor, rows)


def mismatched(contracts: ContractBook) -> tuple[str, list[Any]]:
    """A condition on ledger rows: measured by another version than the one the measuring
    rule gives their report instant (`measuring_segments`)."""
    steps = measuring_segments(contracts)
    right: list[str] = []
    params: list[Any] = []
    for index, (start, version) in enumerate(steps):
        end = steps[index + 1][0] if index + 1 < len(steps) else None
        parts = ["COALESCE(contract_version, -1) = ?"]
        params.append(version)
        if start is not None:
            parts.append("reported_us >= ?")
            params.append(start)
        if end is not None:
            parts.append("reported_us < ?")
            params.append(end)
        right.append("(" + " AND ".join(parts) + ")")
    return "NOT (" + " OR ".join(right) + ")", params


def keep_applied(cursor: Cursor, notifications: Iterable[int | None], before: int | None) -> None:
    """In a batch's transaction: list the batch's store notifications above the contiguous
    watermark as applied. A table kept before the watermark existed starts it at the highest
    notification it had applied (`before`), which is what it was trusted to then."""
    watermark = cursor.max_tracking_id(LEDGER_CONTIGUOUS)
    if watermark is None:
        watermark = before or 0
        cursor.insert_tracking(Tracking(LEDGER_CONTIGUOUS, watermark))
    above = sorted({n for n in notifications if n is not None and n > watermark})
    if above:
        cursor.executemany(
            f"INSERT INTO {LEDGER_APPLIED} (notification_id) VALUES (?) "
            "ON CONFLICT (notification_id) DO NOTHING",
            [(n,) for n in above],
        )


Read = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def reach(watermark: int, read: Read, recorded: RecordedIds, limit: int) -> int:
    """How far every incident event of the store is applied now, from the contiguous
    `watermark`, looking at most `limit` notifications past it (`read`: a query on the
    read-model database)."""
    applied = [
        int(row[0])
        for row in read(
            f"SELECT notification_id FROM {LEDGER_APPLIED} WHERE notification_id > ? "
            "ORDER BY notification_id LIMIT ?",
            (watermark, limit),
        )
    ]
    if not applied:
        return watermark
    return contiguous_reach(watermark, applied, recorded(watermark + 1, applied[-1], limit))


def close_gaps(cursor: Cursor, recorded: RecordedIds, limit: int) -> int | None:
    """Move the contiguous watermark up as far as every incident event is applied, and forget
    the applied notifications below it; returns the watermark (None: none kept)."""
    watermark = cursor.max_tracking_id(LEDGER_CONTIGUOUS)
    if watermark is None:
        return None

    def read(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        cursor.execute(sql, params)
        return cursor.fetchall()

    reached = reach(watermark, read, recorded, limit)
    if reached > watermark:
        cursor.insert_tracking(Tracking(LEDGER_CONTIGUOUS, reached))
        cursor.execute(f"DELETE FROM {LEDGER_APPLIED} WHERE notification_id <= ?", (reached,))
    return reached
