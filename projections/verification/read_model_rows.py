"""Read models against the verified store: each incident's rows must be a consistent prefix of
its recorded chain. The rows are summarised in one pass (`summarise_rows`), then compared with
the chain heads `ChainVerifier` found (`compare_read_model`), field by field where they differ."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slatrail.domain.model import EVENT_FIELDS, GENESIS_HASH, IncidentEvent, chain_hash
from slatrail.projections.verification.differences import Anchor, Difference, DifferenceKind

# Every field but the key (incident, position), by which rows are already matched.
_FIELDS = tuple(name for name in EVENT_FIELDS if name not in ("incident_id", "position"))


def field_differences(stored: IncidentEvent, recorded: IncidentEvent) -> list[str]:
    """What differs between a read model's copy of an event and the event as recorded."""
    out = []
    mine, theirs = stored.canonical_fields(), recorded.canonical_fields()
    for name in _FIELDS:
        have = mine.get(name, getattr(stored, name))
        want = theirs.get(name, getattr(recorded, name))
        if have != want:
            out.append(f"{name} is {_brief(have)}, the store has {_brief(want)}")
    return out


def _brief(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(slots=True)
class _Copy:
    """What a read model holds of one incident: its last position and that row's hash, its
    number of rows, and the first way its rows are not a consistent chain (if any)."""

    last: int
    rows: int
    hash: str
    problem: str | None = None


@dataclass
class ReadModelRows:
    """A read model's rows, summarised per incident (`summarise_rows`): small and picklable,
    so it can be computed in another process while the store is verified."""

    name: str
    rows: int = 0
    copies: dict[str, _Copy] = field(default_factory=dict)
    index_problems: list[tuple[str, str]] = field(default_factory=list)


def _row_hash(values: Sequence[Any]) -> str:
    """The chain hash a stored row's values give (columns as `ReadModelStore.iter_rows`)."""
    fields = dict(zip(_ROW_FIELDS, values[:9], strict=True))
    fields["data"] = json.loads(fields["data"])
    if len(values) > 11 and values[11] is not None:
        fields["redrive"] = values[11]  # hashed only when set (docs/audit.md §2)
    return chain_hash(str(values[9]), fields)


_ROW_FIELDS = (
    "incident_id", "position", "type", "occurred_at", "recorded_at", "actor", "source",
    "message_id", "data",
)  # fmt: skip


def _row_problem(values: Sequence[Any]) -> str | None:
    """None when a stored row's values hash to its stored hash, else what is wrong."""
    try:
        return None if _row_hash(values) == str(values[10]) else "does not hash to its stored hash"
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        return f"cannot be read: {error}"


class _Summariser:
    """Folds one read model's rows, in (incident_id, position) order, into `ReadModelRows`."""

    def __init__(self, name: str, index: Mapping[str, tuple[str, str]] | None) -> None:
        self.out = ReadModelRows(name)
        self.index = index
        self.customers: dict[str, tuple[str, str]] = {}
        self.copy: _Copy | None = None
        self.current = ""

    def feed(self, values: Sequence[Any], problem: str | None) -> None:
        self.out.rows += 1
        incident_id, position = str(values[0]), int(values[1])
        copy = self.copy
        if copy is None or incident_id != self.current:
            self.current = incident_id
            copy = self.copy = self.out.copies[incident_id] = _Copy(0, 0, GENESIS_HASH)
        prev = copy.hash
        copy.rows += 1
        copy.last = position
        copy.hash = str(values[10])
        if copy.problem is not None:
            return
        if position != copy.rows:
            copy.problem = f"position {copy.rows} is missing"
        elif str(values[9]) != prev:
            copy.problem = f"position {position} does not link to position {position - 1}"
        elif problem is not None:
            copy.problem = f"position {position} {problem}"
        elif position == 1 and self.index is not None:
            customer = str(json.loads(values[8]).get("customer", ""))
            self.customers[incident_id] = (customer, str(values[3]))

    def done(self) -> ReadModelRows:
        out, index, copies = self.out, self.index, self.out.copies
        if index is None:
            return out
        for incident_id in sorted(set(copies) | set(index)):
            entry, want = index.get(incident_id), self.customers.get(incident_id)
            if entry is None:
                out.index_problems.append(
                    (incident_id, "incident is missing from the customer index")
                )
            elif incident_id not in copies:
                out.index_problems.append(
                    (incident_id, "customer index lists an incident with no events")
                )
            elif want is not None and entry != want:
                out.index_problems.append(
                    (
                        incident_id,
                        f"customer index says {entry[0]!r} reported at {entry[1]}, the "
                        f"events say {want[0]!r} at {want[1]}",
                    )
                )
        return out


RowSource = tuple[str, Iterable[Sequence[Any]], Mapping[str, tuple[str, str]] | None]


def summarise_rows(sources: Sequence[RowSource]) -> list[ReadModelRows]:
    """Per read model (name, rows in (incident_id, position) order, customer index or None),
    per incident: last position, its hash, and whether the rows are positions 1..k, each
    hashing to its stored hash and linking to the previous. Read models holding the same row
    (the usual case) are read side by side and the row is hashed once."""
    summarisers = [_Summariser(name, index) for name, _, index in sources]
    streams = [iter(rows) for _, rows, _ in sources]
    heads: list[Sequence[Any] | None] = [next(stream, None) for stream in streams]
    while True:
        if len(heads) == 2 and heads[0] is not None and heads[0] == heads[1]:
            values = tuple(heads[0])  # the usual case: both read models hold the same row
            problem = _row_problem(values)
            for n in (0, 1):
                summarisers[n].feed(values, problem)
                heads[n] = next(streams[n], None)
            continue
        keys = [(str(h[0]), int(h[1])) for h in heads if h is not None]
        if not keys:
            return [summariser.done() for summariser in summarisers]
        key = min(keys)
        checked: dict[tuple[Any, ...], str | None] = {}
        for n, head in enumerate(heads):
            if head is None or (str(head[0]), int(head[1])) != key:
                continue
            values = tuple(head)
            if values not in checked:
                checked[values] = _row_problem(values)
            summarisers[n].feed(values, checked[values])
            heads[n] = next(streams[n], None)


def compare_read_model(
    summary: ReadModelRows,
    *,
    store_heads: Mapping[str, Anchor],
    hash_at: Callable[[str, int], str | None],
    rows_of: Callable[[str], Sequence[IncidentEvent]],
    events_of: Callable[[str], Sequence[IncidentEvent]],
    tracked_store: int | None = None,
    tracked_last: Mapping[str, int] | None = None,
) -> tuple[list[Difference], int]:
    """A summarised read model against the verified store: each incident's rows must be a
    consistent prefix 1..k of its chain whose k-th hash is the store's (so, by the chain, every
    value equals the recorded one). Returns the differences (field by field where rows differ)
    and how many recorded events the read model has not applied yet (`lagging`).

    `hash_at(incident_id, k)` is the store's hash at a position below the head (rows behind);
    `tracked_last` the last position of each incident at or before the read model's tracking
    position on the store's notification log (`tracked_store`): those must all be there.
    """
    differences: list[Difference] = []
    lagging = 0

    def drift(incident_id: str, position: int | None, detail: str) -> None:
        differences.append(
            Difference(
                DifferenceKind.READ_MODEL_DRIFT,
                f"read model {summary.name}: {detail}",
                incident_id=incident_id,
                position=position,
            )
        )

    drifted: list[str] = []
    for incident_id, copy in summary.copies.items():
        head = store_heads.get(incident_id)
        if head is None:
            drift(incident_id, None, "incident is not in the store")
            continue
        if copy.problem is not None or copy.last > head.position:
            drifted.append(incident_id)
            continue
        recorded = head.hash if copy.last == head.position else hash_at(incident_id, copy.last)
        if recorded != copy.hash:
            drifted.append(incident_id)
    for incident_id, head in store_heads.items():
        held = summary.copies.get(incident_id)
        have = held.last if held is not None else 0
        must = (tracked_last or {}).get(incident_id, 0)
        if have < must and (held is None or held.problem is None):
            drift(
                incident_id,
                have + 1,
                f"missing, although the read model's tracking says it applied the store up to "
                f"notification {tracked_store} (position {must} is at or before it)",
            )
        lagging += max(head.position - max(have, must), 0)
    for incident_id in sorted(drifted):
        before = len(differences)
        problem = summary.copies[incident_id].problem
        try:
            rows = rows_of(incident_id)
        except (KeyError, TypeError, ValueError) as error:  # rows too damaged to read back
            problem = problem or f"rows cannot be read: {type(error).__name__}: {error}"
        else:
            _field_drift(drift, incident_id, rows, events_of(incident_id))
        if len(differences) == before:
            drift(incident_id, None, problem or "rows differ from the recorded events")
    for incident_id, detail in summary.index_problems:
        drift(incident_id, None, detail)
    return differences, lagging


def _field_drift(
    drift: Callable[[str, int | None, str], None],
    incident_id: str,
    rows: Sequence[IncidentEvent],
    recorded: Sequence[IncidentEvent],
) -> None:
    by_position = {row.position: row for row in rows}
    events = {event.position: event for event in recorded}
    last = max(by_position, default=0)
    head = max(events, default=0)
    for position in range(1, last + 1):
        row, event = by_position.get(position), events.get(position)
        if row is None:
            drift(incident_id, position, "missing (positions after it are there)")
        elif event is None:
            drift(
                incident_id,
                position,
                f"holds position {position}; the store's chain ends at {head}",
            )
        else:
            what = field_differences(row, event)
            if what:
                drift(incident_id, position, "; ".join(what))
