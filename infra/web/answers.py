"""The API's answers, built by the CLI's own JSON builders over the same read side, so that a
route answers exactly what the matching command prints with `--format json`
(docs/web.md, "API"): `/v1/incidents` is `sla`, `/v1/incidents/{id}` is
`sla --incident ID --explain`, `/v1/incidents/{id}/audit` is `audit ID`, `/v1/escalations` is
`escalations`, `/v1/reports/{customer}/{month}` is `report --month M --customer C`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slatrail.application.queries import (
    answer_as_of,
    histories_for,
    read_model_histories,
    reports_for,
    trail_events,
)
from slatrail.application.selection import (
    histories_after,
    listing_query,
    merged_histories,
    sla_page,
)
from slatrail.domain.clocks import Status
from slatrail.domain.model import IncidentEvent, State
from slatrail.infra.bootstrap import Container
from slatrail.infra.commands import escalations as escalations_command
from slatrail.infra.commands import report as report_command
from slatrail.infra.commands import sla as sla_command
from slatrail.infra.web.problems import Problem
from slatrail.infra.web.tokens import Principal
from slatrail.projections.audit import annotated_trail
from slatrail.projections.availability import Month
from slatrail.projections.sla import IncidentSla, sla_view

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class Filters:
    customer: str | None = None
    state: str | None = None
    status: str | None = None
    priority: str | None = None
    since: datetime | None = None  # reported at or after
    until: datetime | None = None  # reported before

    def keeps(self, sla: IncidentSla) -> bool:
        t = sla.clocks.timeline
        if self.state is not None and str(t.state) != self.state:
            return False
        if self.priority is not None and str(t.priority) != self.priority:
            return False
        if (self.since is not None and t.reported_at < self.since) or (
            self.until is not None and t.reported_at >= self.until
        ):
            return False
        return self.status is None or any(
            str(clock.status) == self.status for clock in sla.clocks.clocks.values()
        )

    def fingerprint(self, *extra: object) -> str:
        text = json.dumps([self.customer, self.state, self.status, self.priority,
                           *map(str, (self.since, self.until, *extra))])  # fmt: skip
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(sla: IncidentSla, fingerprint: str) -> str:
    key = [sla.clocks.timeline.reported_at.isoformat(), sla.incident_id, fingerprint]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> tuple[datetime, str]:
    """The report-order key (reported_at, incident_id) a page ended at."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        reported_at, incident_id, seen = json.loads(base64.urlsafe_b64decode(padded))
        if not (isinstance(reported_at, str) and isinstance(incident_id, str)):
            raise ValueError
        reported = datetime.fromisoformat(reported_at)
        if reported.tzinfo is None:
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Problem("usage", "cursor: not a cursor this API gave") from None
    if seen != fingerprint:
        raise Problem("usage", "cursor: it belongs to a query with other filters or instants")
    return reported, incident_id


def customers_asked(principal: Principal, customer: str | None) -> Sequence[str | None]:
    """The customers a query covers: one (404 if the token may not see it), or all a viewer
    may see, or everyone (None)."""
    if customer is not None:
        if not principal.sees(customer):
            raise Problem("not_found", f"no customer {customer!r}")
        return [customer]
    if principal.all_customers:
        return [None]
    return list(sorted(principal.customers))


def incidents_page(
    container: Container,
    principal: Principal,
    filters: Filters,
    *,
    as_of: datetime | None,
    as_known_at: datetime | None,
    limit: int,
    cursor: str | None,
    from_read_model: bool,
) -> dict[str, Any]:
    """One page of `sla --format json`: the incidents the filters may admit are selected (the
    store's incident index, or the read model's incident table) from the cursor on, in report
    order, and folded one at a time until the page is full (docs/web.md, "API")."""
    moment = answer_as_of(as_of, as_known_at, container.clock)
    # No as_of given means "now": the cursor does not pin it, every page answers as of now.
    fingerprint = filters.fingerprint(as_of, as_known_at)
    after = decode_cursor(cursor, fingerprint) if cursor else None
    customers = customers_asked(principal, filters.customer)
    histories: Iterable[list[IncidentEvent]]
    if from_read_model:
        histories = read_model_histories(
            container.read_models, customers, reported_by=moment, since=filters.since,
            until=filters.until, after=after,
        )  # fmt: skip
    else:
        queries = [
            listing_query(
                as_of=moment,
                as_known_at=as_known_at,
                customer=customer,
                state=filters.state,
                since=filters.since,
                until=filters.until,
                after=after,
            )
            for customer in customers
        ]
        histories = histories_after(merged_histories(container.app, queries), after)
    page, more = sla_page(
        histories, container.contracts_known_at(as_known_at), moment,
        as_known_at=as_known_at, keep=filters.keeps, limit=limit,
    )  # fmt: skip
    return {
        "items": sla_command.documents(page),
        "next_cursor": encode_cursor(page[-1], fingerprint) if more and page else None,
    }


def visible_events(
    events: list[IncidentEvent], principal: Principal, incident_id: str
) -> list[IncidentEvent]:
    """The events of an incident this token may see; 404 alike for unknown and not visible."""
    if not events or not principal.sees(events[0].data.get("customer")):
        raise Problem("not_found", f"no incident {incident_id!r}")
    return events


STOPPED = frozenset({Status.MET, Status.BREACHED, Status.NOT_APPLICABLE})
AnswerKey = tuple[str, int, str, int, str]


class SettledAnswers:
    """Answers of `/v1/incidents/{id}` as of now for incidents whose clocks have all stopped
    (resolved, every clock met, breached or not applicable): such an answer changes only with a
    new event or a new contract version, which are in the key. Bounded, least recently used
    out first; shared by the server's threads."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._answers: OrderedDict[AnswerKey, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: AnswerKey) -> dict[str, Any] | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def put(self, key: AnswerKey, answer: dict[str, Any]) -> None:
        with self._lock:
            self._answers[key] = answer
            self._answers.move_to_end(key)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)

    def __len__(self) -> int:
        return len(self._answers)


def _settled(sla: IncidentSla) -> bool:
    clocks = sla.clocks
    return clocks.timeline.state is State.RESOLVED and all(
        c.status in STOPPED for c in clocks.clocks.values()
    )


def incident(
    container: Container,
    principal: Principal,
    incident_id: str,
    *,
    as_of: datetime | None,
    as_known_at: datetime | None,
    from_read_model: bool,
    cache: SettledAnswers | None = None,
) -> dict[str, Any]:
    histories = histories_for(container, incident_id, from_read_model=from_read_model)
    events = visible_events(histories[0] if histories else [], principal, incident_id)
    key: AnswerKey | None = None
    if cache is not None and as_of is None and as_known_at is None:
        book = container.contract_book
        last = events[-1]
        key = (incident_id, last.position, last.hash, book.latest.version, book.latest.sha256)
        cached = cache.get(key)
        if cached is not None:
            return cached
    moment = answer_as_of(as_of, as_known_at, container.clock)
    view = sla_view(
        histories, container.contracts_known_at(as_known_at), moment, as_known_at=as_known_at
    )
    if not view:  # reported after as_of / recorded after as_known_at
        raise Problem("not_found", f"no incident {incident_id!r} as of that instant")
    answer = sla_command.documents(view, explain=True)[0]
    if key is not None and cache is not None and _settled(view[0]):
        cache.put(key, answer)
    return answer


def audit(
    container: Container,
    principal: Principal,
    incident_id: str,
    *,
    as_of: datetime | None,
    as_known_at: datetime | None,
    from_read_model: bool,
) -> list[dict[str, Any]]:
    events = trail_events(container, incident_id, from_read_model=from_read_model)
    visible_events(events, principal, incident_id)
    moment = answer_as_of(as_of, as_known_at, container.clock)
    return annotated_trail(
        events, container.contracts_known_at(as_known_at), moment, as_known_at=as_known_at
    )


def escalations(
    container: Container,
    principal: Principal,
    *,
    customer: str | None,
    level: int | None,
    include_resolved: bool,
    as_of: datetime | None,
    as_known_at: datetime | None,
    from_read_model: bool,
) -> list[dict[str, Any]]:
    moment = answer_as_of(as_of, as_known_at, container.clock)
    out: list[dict[str, Any]] = []
    for one in customers_asked(principal, customer):
        answer = escalations_command.escalations_answer(
            container, moment, as_known_at=as_known_at, customer=one, level=level,
            include_resolved=include_resolved, from_read_model=from_read_model,
        )  # fmt: skip
        assert answer is not None  # no incident asked: never None
        out += escalations_command.documents(*answer)
    if len(out) > 1 and customer is None and not principal.all_customers:
        out.sort(key=lambda d: (-d["level"], d["since"] or "", d["incident_id"]))
    return out


def reports(
    container: Container,
    principal: Principal,
    customer: str,
    month: Month,
    *,
    as_of: datetime | None,
    as_known_at: datetime | None,
) -> list[dict[str, Any]]:
    if (
        not principal.sees(customer)
        or customer not in container.contracts_known_at(as_known_at).customers()
    ):
        raise Problem("not_found", f"no customer {customer!r}")
    moment = answer_as_of(as_of, as_known_at, container.clock)
    documents = reports_for(
        container, [month], as_of=moment, as_known_at=as_known_at, customer=customer
    )
    # As `slatrail report`: the checkpoint made right after the figures (docs/reports.md).
    checkpoint = report_command.report_checkpoint(container)
    for document in documents:
        document["checkpoint"] = checkpoint
    return documents
