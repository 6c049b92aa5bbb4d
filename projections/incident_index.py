"""The incident index: one row per incident, enough to pre-select the incidents a question may
concern without decoding the others (docs/scale.md).

The index never decides an answer. It only excludes incidents that *cannot* matter; the
selected ones are folded as before and the fold decides (state as of an instant, clock status,
the month an incident counts in). So every column is either fixed at the report
(`customer`, `reported_at`) or a bound that holds whatever order facts were recorded in:
`starts_at` the earliest instant the incident may count from (the report, or an impact start
before it), `last_occurred_at` the latest occurred_at of any event (after it nothing changes),
`open` whether the incident is unresolved now, `resolved_at`/`postmortem_at` the latest
occurred_at of a resolution / of a published post-mortem (a post-mortem is pending while the
first is later than the second), `priority` the latest priority recorded (shown, never used to
exclude).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slatrail.domain.lifecycle import next_state
from slatrail.domain.model import EventType, IncidentEvent, State, parse_instant

INDEX_ROWS = "incident_index"  # the save() keyword carrying index rows to the recorder


@dataclass(frozen=True, slots=True)
class IndexEntry:
    incident_id: str
    customer: str
    reported_at: datetime
    starts_at: datetime
    last_occurred_at: datetime
    open: bool
    priority: str | None
    resolved_at: datetime | None = None
    postmortem_at: datetime | None = None

    @property
    def unsettled(self) -> bool:
        """Open, or resolved without a post-mortem published since: alerts may still come."""
        return (
            self.open
            or self.postmortem_at is None
            or (self.resolved_at is not None and self.postmortem_at < self.resolved_at)
        )


def starts_from(reported_at: datetime, data: Mapping[str, Any]) -> datetime:
    """The earliest instant an event's data lets the incident count from."""
    impact = data.get("impact_started_at")
    if impact is None:
        return reported_at
    try:
        return min(reported_at, parse_instant(str(impact)))
    except ValueError:
        return reported_at


class EntryBuilder:
    """The index row of one incident, folded event by event (any order of recording).

    `verify` keeps one for every incident of the store: the customer and priority are
    interned (a store has a few of each, not one copy per incident)."""

    __slots__ = (
        "customer", "incident_id", "last", "postmortem", "priority", "reported_at", "resolved",
        "starts", "state",
    )  # fmt: skip

    def __init__(self) -> None:
        self.incident_id: str | None = None
        self.customer: str | None = None
        self.reported_at: datetime | None = None
        self.starts: datetime | None = None
        self.last: datetime | None = None
        self.state = State.OPEN
        self.priority: str | None = None
        self.resolved: datetime | None = None
        self.postmortem: datetime | None = None

    def add(self, event: IncidentEvent) -> None:
        if event.type is EventType.REPORTED:
            self.incident_id = event.incident_id
            self.customer = sys.intern(str(event.data.get("customer")))  # one of a few
            self.reported_at = event.occurred_at
        self.state = next_state(self.state, event.type)
        if "priority" in event.data:
            self.priority = sys.intern(str(event.data["priority"]))
        occurred = event.occurred_at
        if event.type is EventType.RESOLVED:
            self.resolved = occurred if self.resolved is None else max(self.resolved, occurred)
        if event.type is EventType.POSTMORTEM_PUBLISHED:
            known = self.postmortem
            self.postmortem = occurred if known is None else max(known, occurred)
        self.last = occurred if self.last is None else max(self.last, occurred)
        start = starts_from(self.reported_at or occurred, event.data)
        self.starts = start if self.starts is None else min(self.starts, start)

    def entry(self) -> IndexEntry | None:
        if self.incident_id is None or self.customer is None or self.reported_at is None:
            return None
        assert self.last is not None and self.starts is not None
        return IndexEntry(
            incident_id=self.incident_id,
            customer=self.customer,
            reported_at=self.reported_at,
            starts_at=min(self.starts, self.reported_at),
            last_occurred_at=self.last,
            open=self.state is not State.RESOLVED,
            priority=self.priority,
            resolved_at=self.resolved,
            postmortem_at=self.postmortem,
        )


def entry_of(events: Iterable[IncidentEvent]) -> IndexEntry | None:
    """The index row of one incident's recorded events (None without a report)."""
    builder = EntryBuilder()
    for event in events:
        builder.add(event)
    return builder.entry()


@dataclass(frozen=True, slots=True)
class IndexQuery:
    """Conditions on index rows, all of which must hold (None: no condition)."""

    customer: str | None = None
    reported_by: datetime | None = None  # reported_at <= this
    reported_since: datetime | None = None  # reported_at >= this
    reported_until: datetime | None = None  # reported_at < this
    starts_before: datetime | None = None  # starts_at < this
    open_or_changed_after: datetime | None = None  # open now, or last_occurred_at > this
    resolved_or_changed_after: datetime | None = None  # resolved now, or last_occurred_at > this
    open_or_ended_since: datetime | None = None  # open now, or last_occurred_at >= this
    # open, or a post-mortem pending, or changed since this (the alert timer's start-up)
    unsettled_or_changed_since: datetime | None = None

    def admits(self, entry: IndexEntry) -> bool:
        """The same conditions in Python (the store without an index; tests)."""
        last = entry.last_occurred_at
        return not (
            (self.customer is not None and entry.customer != self.customer)
            or (self.reported_by is not None and entry.reported_at > self.reported_by)
            or (self.reported_since is not None and entry.reported_at < self.reported_since)
            or (self.reported_until is not None and entry.reported_at >= self.reported_until)
            or (self.starts_before is not None and entry.starts_at >= self.starts_before)
            or (
                self.open_or_changed_after is not None
                and not entry.open
                and last <= self.open_or_changed_after
            )
            or (
                self.resolved_or_changed_after is not None
                and entry.open
                and last <= self.resolved_or_changed_after
            )
            or (
                self.unsettled_or_changed_since is not None
                and not entry.unsettled
                and last < self.unsettled_or_changed_since
            )
            or (
                self.open_or_ended_since is not None
                and not entry.open
                and last < self.open_or_ended_since
            )
        )
