"""The audit export for external auditors (docs/audit.md): JSON Lines or CSV, verifiable.

Each selected incident is exported with its whole chain (position 1 to its head), so an auditor
recomputes every hash from the genesis value without trusting anything outside the file. The
file ends with the chain heads (per incident: last position and its hash).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from slatrail.application.service import SlatrailApplication
from slatrail.domain.contract_version import ContractBook
from slatrail.domain.model import (
    GENESIS_HASH,
    EventType,
    IncidentEvent,
    canonical_json,
    event_to_dict,
    format_instant,
    incident_uuid,
)
from slatrail.infra.render import escape_json_text
from slatrail.projections.verification import Anchor

FORMAT = "slatrail.export/v1"
CSV_COLUMNS = (
    "record",
    "incident_id",
    "position",
    "type",
    "occurred_at",
    "recorded_at",
    "actor",
    "source",
    "message_id",
    "data",
    "prev_hash",
    "hash",
    "in_range",
    "redrive",
)
# after the event columns: an event's inclusion proof against the export's checkpoint
PROOF_COLUMNS = ("leaf_index", "inclusion_path")


def _csv_cell(name: str, record: dict[str, Any]) -> object:
    """One CSV cell of an event record: `data` as canonical JSON, absent/None as empty."""
    value = record.get(name)
    if name == "data":
        return canonical_json(value).decode("utf-8")
    if name == "in_range":
        return "true" if value else "false"
    return "" if value is None else value


def _proof_cells(record: dict[str, Any]) -> list[object]:
    """`leaf_index` and the audit path as base64 hashes joined by spaces (empty: no proof)."""
    proof = record.get("inclusion")
    if proof is None:
        return ["", ""]
    return [proof["leaf_index"], " ".join(proof["path"])]


def _checkpoint_row(checkpoint: dict[str, Any]) -> list[object]:
    """The checkpoint as a CSV row: `position` its tree size, `occurred_at` its known-at, `hash`
    its root, `data` the canonical JSON of {origin, tree_size, root, known_at, note}."""
    cells: dict[str, object] = {
        "record": "checkpoint", "position": checkpoint["tree_size"],
        "occurred_at": checkpoint["known_at"] or "", "hash": checkpoint["root"],
        "data": canonical_json(checkpoint).decode("utf-8"),
    }  # fmt: skip
    return [cells.get(name, "") for name in (*CSV_COLUMNS, *PROOF_COLUMNS)]


def _contract_cell(name: str, version: dict[str, Any]) -> object:
    """A contract version as a CSV row: `position` its number, `occurred_at` its effective_from,
    `data` the canonical JSON of {content, sha256, reason, source, holidays, holidays_sha256}
    (`holidays`: the recorded holiday tables by country, {} when none)."""
    if name == "data":
        keys = ("content", "sha256", "reason", "source", "holidays", "holidays_sha256")
        kept = {k: version[k] for k in keys}
        return canonical_json(kept).decode("utf-8")
    value = {
        "record": "contract_version", "position": version["version"],
        "occurred_at": version["effective_from"], "recorded_at": version["recorded_at"],
        "actor": version["actor"], "prev_hash": version["prev_hash"], "hash": version["hash"],
    }.get(name)  # fmt: skip
    return "" if value is None else value


class AnchorsError(ValueError):
    """A file given as anchors that holds no chain heads."""


@dataclass(frozen=True)
class Selection:
    """Which incidents to export: a customer's, and/or those with an event in [start, end)."""

    customer: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    @property
    def windowed(self) -> bool:
        return self.start is not None or self.end is not None

    def in_range(self, event: IncidentEvent) -> bool:
        return (self.start is None or event.occurred_at >= self.start) and (
            self.end is None or event.occurred_at < self.end
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "customer": self.customer,
            "from": format_instant(self.start) if self.start else None,
            "to": format_instant(self.end) if self.end else None,
        }


@dataclass
class ExportCounts:
    incidents: int = 0
    events: int = 0
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)


def event_record(event: IncidentEvent, *, in_range: bool = True) -> dict[str, Any]:
    """One exported event: exactly the hashed fields in canonical form, plus the chain links."""
    return {
        "record": "event",
        **event_to_dict(event),
        "in_range": in_range,
    }


def _selected(app: SlatrailApplication, selection: Selection) -> set[UUID] | None:
    """Aggregate ids of the selected incidents (one streaming pass), None for all."""
    if selection.customer is None and not selection.windowed:
        return None
    customer_ok: set[UUID] = set()
    window_ok: set[UUID] = set()
    for _, event in app.all_events():
        aggregate_id = incident_uuid(event.incident_id)
        if event.type is EventType.REPORTED and (
            selection.customer is None or event.data.get("customer") == selection.customer
        ):
            customer_ok.add(aggregate_id)
        if selection.windowed and selection.in_range(event):
            window_ok.add(aggregate_id)
    return customer_ok & window_ok if selection.windowed else customer_ok


def exported_events(
    app: SlatrailApplication, selection: Selection, counts: ExportCounts
) -> Iterator[dict[str, Any]]:
    """The selected incidents' events in store order (chains interleave, each in order)."""
    chosen = _selected(app, selection)
    for _, event in app.all_events():
        if chosen is not None and incident_uuid(event.incident_id) not in chosen:
            continue
        counts.events += 1
        counts.heads[event.incident_id] = (event.position, event.hash)
        yield event_record(event, in_range=selection.in_range(event))
    counts.incidents = len(counts.heads)


def heads_record(counts: ExportCounts) -> dict[str, Any]:
    return {
        "record": "chain_heads",
        "incidents": counts.incidents,
        "events": counts.events,
        "heads": [
            {"incident_id": incident_id, "position": position, "hash": hash_}
            for incident_id, (position, hash_) in sorted(counts.heads.items())
        ],
    }


def json_line(record: dict[str, Any]) -> str:
    """One JSON Lines record: UTF-8 text as itself, except what could split or drive a line."""
    return escape_json_text(json.dumps(record, ensure_ascii=False)) + "\n"


def contract_records(book: ContractBook | None) -> list[dict[str, Any]]:
    """Every recorded contract version, content included: with the events, all an auditor
    needs to recompute every figure (docs/audit.md, *Contract versions*)."""
    if book is None:
        return []
    return [{"record": "contract_version", **v.as_json()} for v in book.versions]


def write_jsonl(
    out: IO[str],
    records: Iterable[dict[str, Any]],
    counts: ExportCounts,
    header: dict[str, Any],
    contracts: Iterable[dict[str, Any]] = (),
) -> None:
    out.write(json_line(header))
    for version in contracts:
        out.write(json_line(version))
    for record in records:
        out.write(json_line(record))
    out.write(json_line(heads_record(counts)))


def write_csv(
    out: IO[str],
    records: Iterable[dict[str, Any]],
    counts: ExportCounts,
    contracts: Iterable[dict[str, Any]] = (),
    checkpoint: dict[str, Any] | None = None,
) -> None:
    """RFC 4180: rows end in CRLF; a field holding `,` `"` CR or LF is quoted, `"` doubled.

    The line terminator must hold both CR and LF: Python's csv module quotes a field for the
    characters of its line terminator, so with a bare LF terminator a CR in an `actor` went out
    unquoted and split the row for every reader. Values are exact (never altered for
    spreadsheets, unlike `report --format csv`): they are what the hashes cover. `out` must not
    translate newlines (open the file with `newline=""`).
    """
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow((*CSV_COLUMNS, *PROOF_COLUMNS))
    if checkpoint is not None:
        writer.writerow(_checkpoint_row(checkpoint))
    for version in contracts:
        writer.writerow([*(_contract_cell(name, version) for name in CSV_COLUMNS), "", ""])
    for record in records:
        writer.writerow([*(_csv_cell(name, record) for name in CSV_COLUMNS), *_proof_cells(record)])
    for incident_id, (position, hash_) in sorted(counts.heads.items()):
        row = ["chain_head", incident_id, position, *[""] * 8, hash_, "", "", "", ""]
        writer.writerow(row)


def export_header(selection: Selection, exported_at: datetime) -> dict[str, Any]:
    return {
        "record": "export",
        "format": FORMAT,
        "exported_at": format_instant(exported_at),
        "selection": selection.as_json(),
        "hash": "sha256(prev_hash as ASCII hex + canonical JSON of the event's fields)",
        "genesis_prev_hash": GENESIS_HASH,
    }


def read_anchors(path: Path) -> dict[str, Anchor]:
    """The chain heads at the end of an earlier export (JSONL or CSV)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            first = handle.readline()
            handle.seek(0)
            anchors = _jsonl_anchors(handle) if first.startswith("{") else _csv_anchors(handle)
    except OSError as error:
        raise AnchorsError(f"cannot read {path}: {error.strerror or error}") from error
    except (ValueError, KeyError, TypeError) as error:
        raise AnchorsError(f"{path}: not a slatrail export: {error}") from error
    if anchors is None:
        raise AnchorsError(f"{path}: no chain heads in it (not a complete slatrail export?)")
    return anchors


def _jsonl_anchors(handle: IO[str]) -> dict[str, Anchor] | None:
    anchors = None
    for line in handle:
        if '"chain_heads"' not in line:
            continue
        record = json.loads(line)
        if record.get("record") == "chain_heads":
            anchors = {
                h["incident_id"]: Anchor(int(h["position"]), str(h["hash"]))
                for h in record["heads"]
            }
    return anchors


def _csv_anchors(handle: IO[str]) -> dict[str, Anchor] | None:
    rows = [row for row in csv.DictReader(handle) if row["record"] == "chain_head"]
    if not rows:
        return None
    return {row["incident_id"]: Anchor(int(row["position"]), row["hash"]) for row in rows}
