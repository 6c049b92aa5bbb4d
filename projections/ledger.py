"""The SLA ledger: each clock's status intervals, from an incident's events (docs/scale.md).

A clock's status, target, priority and due time change only at an event (in occurred order)
or when its counted time crosses the at-risk threshold or the target. Between those instants
they are constant, so an incident's clocks are a short list of intervals `[from, to)`, each
carrying what the fold (`incident_sla`) answers at any instant inside it, and the counted time
at its start. The intervals are computed by the same fold (`domain.clocks.evaluate`) at each
event instant and each crossing: a lookup equals the fold by construction, and
`tests/unit/test_ledger_properties.py` checks it at random instants.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from slatrail.domain.clocks import Clock, IncidentClocks, Metric, Status, evaluate
from slatrail.domain.clocks import ratio_threshold_us as _threshold_us
from slatrail.domain.contract_version import ContractBook, ContractSource
from slatrail.domain.model import IncidentEvent, Priority, format_instant
from slatrail.domain.timeline import build_timeline, in_occurred_order

_US = 1_000_000
_CROSSINGS = 2  # a clock crosses its at-risk threshold and its target at most once between events

LEDGER_COLUMNS = (
    "incident_id", "customer", "metric", "from", "to", "status", "priority",
    "target_s", "due_at", "counted_s", "contract_version",
)  # fmt: skip


@dataclass(frozen=True)
class LedgerInterval:
    """One clock's status over `[start, end)` (`end` None: until something is recorded)."""

    incident_id: str
    customer: str
    metric: Metric
    start: datetime
    end: datetime | None
    status: Status
    priority: Priority
    target_s: int | None
    due_at: datetime | None
    counted_us: int | None  # counted time at `start`, whole microseconds (None: not counting)
    contract_version: int | None  # the recorded version measuring it (None: a contracts file)

    @property
    def counted_s(self) -> float | None:
        return None if self.counted_us is None else self.counted_us / _US

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)

    def as_row(self) -> dict[str, Any]:
        """The exported row (`LEDGER_COLUMNS`; instants RFC 3339 UTC, durations in seconds)."""
        return {
            "incident_id": self.incident_id,
            "customer": self.customer,
            "metric": str(self.metric),
            "from": format_instant(self.start),
            "to": format_instant(self.end) if self.end else None,
            "status": str(self.status),
            "priority": str(self.priority),
            "target_s": self.target_s,
            "due_at": format_instant(self.due_at) if self.due_at else None,
            "counted_s": self.counted_s,
            "contract_version": self.contract_version,
        }

    def _same_state(self, other: LedgerInterval) -> bool:
        return (self.status, self.priority, self.target_s, self.due_at) == (
            other.status, other.priority, other.target_s, other.due_at,
        )  # fmt: skip


def incident_ledger(
    events: Sequence[IncidentEvent],
    contracts: ContractSource,
    *,
    since: datetime | None = None,
    kept: Sequence[LedgerInterval] = (),
) -> list[LedgerInterval]:
    """Every clock's intervals from the report on, in (metric, start) order; [] if unreported.

    The events may be given in any order: they are folded in occurred order. With `kept`, the
    incident's intervals computed before the events occurring from `since` on were added,
    only the intervals from `since` on are computed again: the fold at an instant sees only
    the events occurred by then, so those before `since` stand (a full computation when
    `kept` does not fit: another contract version, or a clock without an interval)."""
    ordered = in_occurred_order(events)
    instants = sorted({e.occurred_at for e in ordered})
    first = build_timeline(ordered, instants[-1]) if instants else None
    if first is None:
        return []
    instants = [at for at in instants if at >= first.reported_at]
    version = (
        contracts.measuring_version(first.reported_at).version
        if isinstance(contracts, ContractBook)
        else None
    )
    rows = _seeded(kept, since, version, first.reported_at)
    if any(rows.values()):
        assert since is not None
        instants = [at for at in instants if at >= since]

    def clocks_at(moment: datetime) -> IncidentClocks:
        timeline = build_timeline(ordered, moment)
        assert timeline is not None  # moment >= the report
        return evaluate(timeline, contracts)

    for index, at in enumerate(instants):
        end = instants[index + 1] if index + 1 < len(instants) else None
        clocks = clocks_at(at)
        for metric, clock in clocks.clocks.items():
            moment = at
            for _ in range(_CROSSINGS + 1):  # running → at risk → breached: bounded
                _append(rows[metric], clocks, clock, moment, version)
                crossing = next_crossing(clock, moment)
                if crossing is None or (end is not None and crossing >= end):
                    break
                moment = crossing
                clock = clocks_at(moment).clocks[metric]
    return [interval for m in Metric for interval in _closed(rows[m])]


def _seeded(
    kept: Sequence[LedgerInterval], since: datetime | None, version: int | None, reported: datetime
) -> dict[Metric, list[LedgerInterval]]:
    """Each clock's kept intervals starting before `since`, or none at all (compute whole)."""
    rows: dict[Metric, list[LedgerInterval]] = {m: [] for m in Metric}
    if since is None or since <= reported or not kept:
        return rows
    for interval in kept:
        if interval.contract_version != version:
            return {m: [] for m in Metric}
        if interval.start < since:
            rows[interval.metric].append(interval)
    if not all(rows.values()):
        return {m: [] for m in Metric}
    for metric in Metric:
        rows[metric].sort(key=lambda i: i.start)
    return rows


def next_crossing(clock: Clock, moment: datetime) -> datetime | None:
    """When a clock counting at `moment` next changes status with no new event: at the at-risk
    threshold (counted ≥ ratio × target) or the breach (counted > target), in microseconds."""
    if (
        clock.status not in (Status.RUNNING, Status.AT_RISK)
        or clock.stopped_at is not None
        or clock.target_s is None
        or clock.calendar is None
        or clock.elapsed_us is None
    ):
        return None
    breach_us = clock.target_s * _US + 1
    goal = breach_us
    if clock.status is Status.RUNNING:
        goal = min(_threshold_us(clock.target_s, clock.at_risk_threshold), breach_us)
    need = goal - clock.elapsed_us
    if need <= 0:  # cannot happen for a status the fold computed; never loop on it
        return None
    return clock.calendar.instant_after_us(moment, need)


def lookup(
    ledger: Sequence[LedgerInterval], metric: Metric, moment: datetime
) -> LedgerInterval | None:
    """The interval of `metric` covering `moment` (None before the report)."""
    for interval in ledger:
        if interval.metric is metric and interval.covers(moment):
            return interval
    return None


def _append(
    rows: list[LedgerInterval],
    clocks: IncidentClocks,
    clock: Clock,
    moment: datetime,
    version: int | None,
) -> None:
    t = clocks.timeline
    interval = LedgerInterval(
        incident_id=t.incident_id,
        customer=t.customer,
        metric=clock.metric,
        start=moment,
        end=None,
        status=clock.status,
        priority=clock.priority if clock.priority is not None else t.priority,
        target_s=clock.target_s,
        due_at=clock.due_at,
        counted_us=clock.elapsed_us,
        contract_version=version,
    )
    if rows and rows[-1]._same_state(interval):
        return  # the same answer goes on: one interval
    rows.append(interval)


def _closed(rows: list[LedgerInterval]) -> list[LedgerInterval]:
    """Each interval ends where the next one starts."""
    ends = [row.start for row in rows[1:]] + [None]
    return [replace(row, end=end) for row, end in zip(rows, ends, strict=True)]


# -- rows of the materialised ledger (`rm_sla_ledger`; no database code) ---------------------

LEDGER_TABLE = "rm_sla_ledger"
LEDGER_TRACKING = "ledger@store"  # the highest store notification the table has applied
# Every incident event the store recorded up to this notification is applied (the partitions
# of `incidents.events` are consumed side by side, so one can be ahead of another); the ones
# applied above it are listed in LEDGER_APPLIED until the gap below them closes.
LEDGER_CONTIGUOUS = "ledger@contiguous"
LEDGER_APPLIED = "rm_sla_ledger_applied"
LEDGER_CONTRACTS = "ledger@contracts"  # the contract version the whole table is measured by
LEDGER_PREFIX = "ledger@"
TABLE_COLUMNS = (
    "incident_id", "metric", "start_us", "end_us", "customer", "reported_us", "metric_rank",
    "status", "priority", "target_s", "due_us", "counted_us", "contract_version",
)  # fmt: skip
_RANK = {metric: rank for rank, metric in enumerate(Metric)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def contiguous_reach(watermark: int, applied: Iterable[int], recorded: Iterable[int]) -> int:
    """How far the ledger table has applied every incident event of the store: from
    `watermark` (all applied up to it), over `recorded` (the store's incident notifications
    after it, in order) while each one is among `applied` (the ones applied above it)."""
    done = set(applied)
    reach = watermark
    for notification in recorded:
        if notification not in done:
            break
        reach = notification
    return reach


def to_us(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - _EPOCH) // _MICRO


def from_us(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + int(us) * _MICRO


def table_row(interval: LedgerInterval, reported_at: datetime) -> tuple[Any, ...]:
    """The stored row (`TABLE_COLUMNS`): instants as integer microseconds since the epoch."""
    return (
        interval.incident_id, str(interval.metric), to_us(interval.start), to_us(interval.end),
        interval.customer, to_us(reported_at), _RANK[interval.metric], str(interval.status),
        str(interval.priority), interval.target_s, to_us(interval.due_at), interval.counted_us,
        interval.contract_version,
    )  # fmt: skip


def row_interval(row: Sequence[Any]) -> LedgerInterval:
    """Inverse of `table_row` (the report instant is only for ordering)."""
    values = dict(zip(TABLE_COLUMNS, row, strict=True))
    start = from_us(values["start_us"])
    assert start is not None
    return LedgerInterval(
        incident_id=str(values["incident_id"]),
        customer=str(values["customer"]),
        metric=Metric(values["metric"]),
        start=start,
        end=from_us(values["end_us"]),
        status=Status(values["status"]),
        priority=Priority(values["priority"]),
        target_s=None if values["target_s"] is None else int(values["target_s"]),
        due_at=from_us(values["due_us"]),
        counted_us=None if values["counted_us"] is None else int(values["counted_us"]),
        contract_version=(
            None if values["contract_version"] is None else int(values["contract_version"])
        ),
    )


def measuring_segments(book: ContractBook) -> list[tuple[int | None, int]]:
    """The measuring rule as steps over report instants: `(from_us, version)`, each version
    measuring incidents reported from `from_us` (None: since ever) to the next step."""
    starts = sorted({v.effective_from for v in book.versions})
    first = book.measuring_version(starts[0] - _MICRO).version  # before every effective_from
    steps: list[tuple[int | None, int]] = [(None, first)]
    for start in starts:
        version = book.measuring_version(start).version
        if version != steps[-1][1]:
            steps.append((to_us(start), version))
    return steps


# -- how many clocks are in each status at an instant (`slatrail ledger status`) -------------

STATUS_ORDER: tuple[Status, ...] = (
    Status.RUNNING, Status.AT_RISK, Status.BREACHED, Status.PAUSED, Status.PENDING,
    Status.MET, Status.NOT_APPLICABLE,
)  # fmt: skip
StatusKey = tuple[str, Metric]  # (customer, clock)


def clock_statuses(
    events: Sequence[IncidentEvent], contracts: ContractSource, moment: datetime
) -> list[tuple[str, Metric, Status]]:
    """(customer, clock, status) of each of an incident's clocks at `moment`, as the fold
    answers (none before the report); the ledger's interval covering `moment` says the same."""
    timeline = build_timeline(in_occurred_order(events), moment)
    if timeline is None:
        return []
    clocks = evaluate(timeline, contracts)
    return [(timeline.customer, m, clock.status) for m, clock in clocks.clocks.items()]


def status_counts(
    statuses: Iterable[tuple[str, Metric | str, Status | str, int]],
) -> list[tuple[str, Metric, dict[Status, int]]]:
    """`(customer, clock, status, count)` summed into one row per customer and clock (customer,
    then clock order), every status of `STATUS_ORDER` counted (0 if none)."""
    table: dict[StatusKey, dict[Status, int]] = {}
    for customer, metric, status, count in statuses:
        key = (customer, Metric(metric))
        row = table.setdefault(key, dict.fromkeys(STATUS_ORDER, 0))
        row[Status(status)] += count
    ordered = sorted(table, key=lambda k: (k[0], _RANK[k[1]]))
    return [(customer, metric, table[(customer, metric)]) for customer, metric in ordered]
