"""The live SLA board's rows (docs/web.md, "Board"): open incidents ordered by time left.

Rows are computed from the open-incident read model as of now, once per second and store
generation at most, off the request path, and shared by every request and by the open-incident
metrics; a request then keeps the rows its token and filters allow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from slatrail.domain.clocks import Status
from slatrail.domain.contract_version import ContractSource
from slatrail.domain.model import IncidentEvent, format_instant
from slatrail.infra.web.open_incidents import OpenIncidents
from slatrail.projections.sla import incident_sla_and_next

COUNTING = (Status.RUNNING, Status.AT_RISK, Status.BREACHED)
_URGENCY = {Status.BREACHED: 0, Status.AT_RISK: 1, Status.RUNNING: 2, Status.PAUSED: 3}


@dataclass(frozen=True)
class ClockCell:
    metric: str
    status: str
    due_at: str | None
    left_s: float | None  # time left until due, as of the board's instant (negative: overdue)


@dataclass(frozen=True)
class Row:
    incident_id: str
    customer: str
    priority: str
    state: str
    title: str
    level: int
    reason: str
    clocks: tuple[ClockCell, ...]
    left_s: float | None  # the least time left of its counting clocks
    status: str  # the worst status of its clocks: breached, at_risk, running, paused, …

    @property
    def urgency(self) -> tuple[int, float, str]:
        rank = _URGENCY.get(Status(self.status), 4)
        return (rank, self.left_s if self.left_s is not None else float("inf"), self.incident_id)


@dataclass(frozen=True)
class Board:
    at: datetime
    generation: int
    rows: tuple[Row, ...]
    next_change: datetime | None  # the first planned alert (at-risk, breach) still to come

    def keep(
        self,
        customers: Iterable[str] | None,
        *,
        priority: str | None = None,
        status: str | None = None,
    ) -> list[Row]:
        allowed = None if customers is None else set(customers)
        return [
            r for r in self.rows
            if (allowed is None or r.customer in allowed)
            and (priority is None or r.priority == priority)
            and (status is None or r.status == status or any(c.status == status for c in r.clocks))
        ]  # fmt: skip


@dataclass(frozen=True)
class _Computed:
    """One incident's row as computed at `at`, valid until its next planned alert or its next
    event (`position`): between the two only the time left moves, and that is arithmetic."""

    position: int
    at: datetime
    valid_until: datetime | None
    row: Row
    dues: tuple[datetime | None, ...]  # each cell's due instant when it counts


MAX_REUSE = timedelta(seconds=60)  # recompute every incident at least once a minute anyway


def _compute_row(
    events: list[IncidentEvent], contracts: ContractSource, now: datetime
) -> _Computed | None:
    found = incident_sla_and_next(events, contracts, now)
    if found is None:
        return None
    sla, coming = found
    t = sla.clocks.timeline
    cells, dues = [], []
    for metric, clock in sla.clocks.clocks.items():
        due = clock.due_at if clock.status in COUNTING and clock.due_at is not None else None
        dues.append(due)
        cells.append(ClockCell(
            str(metric), str(clock.status),
            format_instant(clock.due_at) if clock.due_at else None,
            None if due is None else (due - now).total_seconds(),
        ))  # fmt: skip
    lefts = [c.left_s for c in cells if c.left_s is not None]
    worst = min((c.status for c in cells), key=lambda s: _URGENCY.get(Status(s), 4))
    row = Row(
        t.incident_id, t.customer, str(t.priority), str(t.state), t.title,
        sla.escalation.level, sla.escalation.why, tuple(cells),
        min(lefts) if lefts else None, worst,
    )  # fmt: skip
    return _Computed(events[-1].position, now, coming.at if coming else None, row, tuple(dues))


def _moved_on(computed: _Computed, now: datetime) -> Row:
    """The row with its time left as of `now`."""
    cells = tuple(
        cell if due is None else replace(cell, left_s=(due - now).total_seconds())
        for cell, due in zip(computed.row.clocks, computed.dues, strict=True)
    )
    lefts = [c.left_s for c in cells if c.left_s is not None]
    return replace(computed.row, clocks=cells, left_s=min(lefts) if lefts else None)


def compute_board(
    histories: list[list[IncidentEvent]],
    contracts: ContractSource,
    now: datetime,
    generation: int,
    cache: dict[str, _Computed] | None = None,
) -> Board:
    """The board as of `now`; with `cache`, an incident is computed again only when it has a
    new event or its next planned alert has come (or a minute passed)."""
    known = {} if cache is None else cache
    fresh: dict[str, _Computed] = {}
    rows: list[Row] = []
    next_change: datetime | None = None
    for events in histories:
        if not events:
            continue
        incident_id = events[0].incident_id
        computed = known.get(incident_id)
        if (
            computed is None
            or computed.position != events[-1].position
            or (computed.valid_until is not None and now >= computed.valid_until)
            or now - computed.at >= MAX_REUSE
            or now < computed.at
        ):
            computed = _compute_row(events, contracts, now)
            if computed is None:  # reported after now (occurred_at in the future)
                continue
            row = computed.row
        else:
            row = _moved_on(computed, now)
        fresh[incident_id] = computed
        rows.append(row)
        due = computed.valid_until
        if due is not None and (next_change is None or due < next_change):
            next_change = due
    if cache is not None:
        cache.clear()
        cache.update(fresh)
    rows.sort(key=lambda r: r.urgency)
    return Board(now, generation, tuple(rows), next_change)


class BoardCache:
    """The board as of now, recomputed off the request path (`update`, called by the web
    server's refresh loop) when the store moved or a second passed: a request only filters
    the latest rows, which are at most about a second old (the page counts down itself)."""

    def __init__(
        self,
        incidents: OpenIncidents,
        contracts: Callable[[], ContractSource],
        clock: Callable[[], datetime],
        resolution: timedelta = timedelta(seconds=1),
    ) -> None:
        self.incidents = incidents
        self.contracts = contracts
        self.clock = clock
        self.resolution = resolution
        self._board: Board | None = None
        self._rows: dict[str, _Computed] = {}
        self._measured_by: ContractSource | None = None
        self._lock = threading.Lock()

    def update(self) -> Board:
        """Recompute if the store moved or `resolution` passed since the last computation."""
        now = self.clock()
        with self._lock:
            board = self._board
            contracts = self.contracts()
            if contracts is not self._measured_by:  # a newly recorded contract version
                self._rows.clear()  # every row measured again, none reused
                self._measured_by, board = contracts, None
            if (
                board is None
                or board.generation != self.incidents.generation
                or now - board.at >= self.resolution
            ):
                board = compute_board(
                    self.incidents.histories(), contracts, now,
                    self.incidents.generation, self._rows,
                )  # fmt: skip
                self._board = board
            return board

    def board(self) -> Board:
        """The latest board (computed now only if there is none yet)."""
        board = self._board
        return board if board is not None else self.update()
