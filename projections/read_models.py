"""The `sla` and `audit` read models, without their database: names, rows, what a batch adds.

A read model is fed `TrackedEvent`s: an `IncidentEvent` plus where it was read from — a Kafka
partition of `incidents.events` (source `"<topic>:<partition>"`, position = offset) or the
store's notification log (source `"store"`, position = notification id). Each (read model,
source) pair has one tracking name, `"<read model>@<source>"` (e.g. `sla@incidents.events:3`):
the eventsourcing tracking record that says how far that read model has applied that source.
`new_rows` is the fold: from a batch and the tracked positions, the rows to insert and the
positions to record with them (one transaction, in `infra.read_model_store`).

* `sla`   — every incident's event timeline plus an index (customer, reported_at); the SLA
  view is evaluated at query time for any `as_of` (`projections.sla.sla_view` over it).
* `audit` — the audit trail: every recorded event with its chain hashes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slatrail.domain.model import (
    EVENT_FIELDS,
    EventType,
    IncidentEvent,
    event_from_dict,
    event_to_dict,
)

SLA = "sla"
AUDIT = "audit"
READ_MODELS: tuple[str, ...] = (SLA, AUDIT)
STORE_SOURCE = "store"
TRACKING_SEPARATOR = "@"


def kafka_source(topic: str, partition: int) -> str:
    """Tracking source name of a Kafka partition."""
    return f"{topic}:{partition}"


def tracking_name(read_model: str, source: str) -> str:
    """The eventsourcing tracking name of one read model fed from one source."""
    return f"{read_model}{TRACKING_SEPARATOR}{source}"


def tracking_source(read_model: str, name: str) -> str | None:
    """The source of a tracking name of `read_model` (None: another read model's name)."""
    prefix = read_model + TRACKING_SEPARATOR
    return name[len(prefix) :] if name.startswith(prefix) else None


def check_read_models(names: Iterable[str]) -> list[str]:
    """The names as a list; ValueError for one that is not a read model."""
    out = list(names)
    for name in out:
        if name not in READ_MODELS:
            raise ValueError(f"unknown read model {name!r}: one of {', '.join(READ_MODELS)}")
    return out


@dataclass(frozen=True, slots=True)
class TrackedEvent:
    """An event with the position it was read at (`source` names the sequence) and, when read
    from a stream, the store notification it was recorded at (`notification`)."""

    source: str
    position: int
    event: IncidentEvent
    notification: int | None = None

    @property
    def store_notification(self) -> int | None:
        """The store notification id of the event, where known (read from the store: its
        position)."""
        if self.notification is not None:
            return self.notification
        return self.position if self.source == STORE_SOURCE else None


# -- rows: IncidentEvent ⇄ the columns of a read-model table ---------------------------------

EVENT_COLUMNS: tuple[str, ...] = EVENT_FIELDS
"""Columns of a read model's events table, in row order (`data` as JSON text)."""


def event_row(event: IncidentEvent) -> tuple[Any, ...]:
    """The row a read model stores for an event (`redrive` None when not set)."""
    obj = event_to_dict(event)
    obj["data"] = json.dumps(obj["data"], ensure_ascii=False, separators=(",", ":"))
    return tuple(obj.get(name) for name in EVENT_COLUMNS)


def row_event(row: Sequence[Any]) -> IncidentEvent:
    """Inverse of `event_row`."""
    obj = dict(zip(EVENT_COLUMNS, row, strict=True))
    obj["data"] = json.loads(obj["data"])
    return event_from_dict(obj)


# -- the fold: what a batch adds to one read model ------------------------------------------


@dataclass(slots=True)
class NewRows:
    """What one batch adds to one read model: event rows, index rows, tracking positions."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    reported: list[tuple[str, str, str]] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)  # tracking name → position


def new_rows(
    read_model: str,
    batch: Sequence[TrackedEvent],
    tracked: Mapping[str, int],
    rows: dict[int, tuple[Any, ...]] | None = None,
) -> NewRows:
    """Rows of the events past `tracked` (tracking name → last applied position), and the
    tracking positions they advance to. `rows` caches rows by batch index across read models."""
    cache = {} if rows is None else rows
    out = NewRows()
    for index, item in enumerate(batch):
        name = tracking_name(read_model, item.source)
        if item.position <= tracked.get(name, -1):
            continue
        row = cache.get(index)
        if row is None:
            row = cache[index] = event_row(item.event)
        out.events.append(row)
        if read_model == SLA and item.event.type is EventType.REPORTED:
            customer = str(item.event.data.get("customer", ""))
            out.reported.append((row[0], customer, row[3]))
        if item.position > out.positions.get(name, -1):
            out.positions[name] = item.position
    return out
