"""The SLA ledger written for BI tools: CSV (RFC 4180) or Parquet (pyarrow), streamed.

The columns, their types and units are documented in docs/reference/commands.md#ledger-export.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import IO, Any

from slatrail.projections.ledger import LEDGER_COLUMNS, LedgerInterval

BATCH = 8192  # intervals per Parquet record batch: what memory holds at a time


def _csv_cell(value: Any) -> Any:
    return "" if value is None else value


def write_ledger_csv(out: IO[str], intervals: Iterable[LedgerInterval]) -> int:
    """A header row, then one row per interval (CRLF, quoted as needed); empty cell = null."""
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(LEDGER_COLUMNS)
    count = 0
    for interval in intervals:
        row = interval.as_row()
        writer.writerow([_csv_cell(row[name]) for name in LEDGER_COLUMNS])
        count += 1
    return count


def parquet_schema() -> Any:
    import pyarrow as pa

    instant = pa.timestamp("us", tz="UTC")
    return pa.schema(
        [
            pa.field("incident_id", pa.string(), nullable=False),
            pa.field("customer", pa.string(), nullable=False),
            pa.field("metric", pa.string(), nullable=False),
            pa.field("from", instant, nullable=False),
            pa.field("to", instant),
            pa.field("status", pa.string(), nullable=False),
            pa.field("priority", pa.string(), nullable=False),
            pa.field("target_s", pa.int64()),
            pa.field("due_at", instant),
            pa.field("counted_s", pa.float64()),
            pa.field("contract_version", pa.int64()),
        ]
    )


def _columns(batch: list[LedgerInterval]) -> dict[str, list[Any]]:
    return {
        "incident_id": [i.incident_id for i in batch],
        "customer": [i.customer for i in batch],
        "metric": [str(i.metric) for i in batch],
        "from": [i.start for i in batch],
        "to": [i.end for i in batch],
        "status": [str(i.status) for i in batch],
        "priority": [str(i.priority) for i in batch],
        "target_s": [i.target_s for i in batch],
        "due_at": [i.due_at for i in batch],
        "counted_s": [i.counted_s for i in batch],
        "contract_version": [i.contract_version for i in batch],
    }


def _batches(intervals: Iterable[LedgerInterval]) -> Iterator[list[LedgerInterval]]:
    it = iter(intervals)
    while batch := list(islice(it, BATCH)):
        yield batch


def write_ledger_parquet(out: IO[bytes], intervals: Iterable[LedgerInterval]) -> int:
    """One Parquet file, a record batch of `BATCH` intervals at a time (zstd-compressed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    count = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for batch in _batches(intervals):
            writer.write_batch(pa.record_batch(_columns(batch), schema=schema))
            count += len(batch)
    return count
