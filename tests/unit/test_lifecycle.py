"""Lifecycle rules (reference/wire.md), through the Incident aggregate and through the application.

Rules the aggregate owns run both ways (`way` is parametrized); rules of the store (first event,
idempotency, batches) run through `SlatrailApplication.record` on an in-memory SQLite store.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from slatrail.application.outcomes import Outcome
from slatrail.application.service import SlatrailApplication
from slatrail.domain.contracts import Contracts
from slatrail.domain.errors import Rejection
from slatrail.domain.incident import Incident
from slatrail.domain.messages import to_fact
from slatrail.domain.model import IncidentEvent, State, incident_uuid
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import contracts_from, line, minimal_data, reported_data, utc, wire

T0 = utc(2026, 3, 2, 9)  # a Monday
NOW = utc(2026, 3, 20, 12)  # the receiver's clock, well after every event below
MIN = timedelta(minutes=1)

Message = dict[str, Any]


# -- two ways to record a message ------------------------------------------------------------------


class AggregateWay:
    """Drives `Incident.report` / `Incident.record` directly."""

    name = "aggregate"

    def __init__(self, contracts: Contracts) -> None:
        self.contracts = contracts
        self.incidents: dict[str, Incident] = {}
        self.recorded: dict[str, list[IncidentEvent]] = {}

    def send(self, message: Message, *, now: datetime = NOW) -> Outcome:
        fact = to_fact(decode(line(message))[0])
        incident = self.incidents.get(fact.incident_id)
        try:
            if incident is None:
                incident = Incident.report(fact, contracts=self.contracts, now=now)
                self.incidents[fact.incident_id] = incident
            else:
                incident.record(fact, now=now)
        except Rejection as error:
            return Outcome.rejected(error, fact.message_id)
        self.recorded.setdefault(fact.incident_id, []).extend(
            event.to_record() for event in incident.collect_events()
        )
        return Outcome("accepted", fact.message_id, fact.incident_id, position=incident.version)

    def events(self, incident_id: str) -> list[IncidentEvent]:
        return list(self.recorded.get(incident_id, []))

    def state(self, incident_id: str) -> tuple[State, int]:
        incident = self.incidents[incident_id]
        assert not incident.collect_events(), "a refused fact left a pending event"
        return incident.state, incident.version


class ApplicationWay:
    """Drives `SlatrailApplication.record` with one-message batches."""

    name = "application"

    def __init__(self, app: SlatrailApplication) -> None:
        self.app = app

    def send(self, message: Message, *, now: datetime = NOW) -> Outcome:
        return self.app.record([decode(line(message))], now=now)[0]

    def events(self, incident_id: str) -> list[IncidentEvent]:
        return self.app.incident_events(incident_id)

    def state(self, incident_id: str) -> tuple[State, int]:
        stored: Incident = self.app.repository.get(incident_uuid(incident_id))
        return stored.state, stored.version


@pytest.fixture
def contracts() -> Contracts:
    return contracts_from()


@pytest.fixture
def app(contracts: Contracts) -> Iterator[SlatrailApplication]:
    application = open_application("sqlite:///:memory:", contracts)
    yield application
    application.close()


@pytest.fixture(params=["aggregate", "application"])
def way(request: pytest.FixtureRequest, contracts: Contracts) -> AggregateWay | ApplicationWay:
    if request.param == "aggregate":
        return AggregateWay(contracts)
    return ApplicationWay(request.getfixturevalue("app"))


@pytest.fixture
def msg() -> Callable[..., Message]:
    """Factory: a message of `type` at `T0 + minutes`, with the data its type needs."""

    def make(type: str, minutes: float = 0, **overrides: Any) -> Message:
        data = overrides.pop("data", minimal_data(type))
        at = overrides.pop("occurred_at", T0 + minutes * MIN)
        return wire(type, at, data, **overrides)

    return make


def send_all(way: AggregateWay | ApplicationWay, *messages: Message) -> list[Outcome]:
    outcomes = [way.send(m) for m in messages]
    assert [o.status for o in outcomes] == ["accepted"] * len(messages), outcomes
    return outcomes


def assert_rejected(outcome: Outcome, code: str, *words: str) -> None:
    assert outcome.status == "rejected", outcome
    assert outcome.code == code, outcome
    for word in words:
        assert word in (outcome.reason or ""), (word, outcome.reason)


# -- allowed paths ---------------------------------------------------------------------------------


def test_a_full_lifecycle_is_recorded_in_order_with_positions(way, msg) -> None:
    outcomes = send_all(
        way,
        msg("reported", 0),
        msg("triaged", 1),
        msg("acknowledged", 2),
        msg("awaiting_customer", 3),
        msg("priority_changed", 4),
        msg("customer_responded", 5),
        msg("workaround_provided", 6),
        msg("escalated", 7),
        msg("resolved", 8),
        msg("postmortem_published", 9),
        msg("reopened", 10),
        msg("awaiting_customer", 11),
        msg("resolved", 12),
        msg("postmortem_published", 13),
    )
    assert [o.position for o in outcomes] == list(range(1, 15))
    events = way.events("INC-1")
    assert [e.position for e in events] == list(range(1, 15))
    assert [str(e.type) for e in events][:3] == ["reported", "triaged", "acknowledged"]
    assert way.state("INC-1") == (State.RESOLVED, 14)


def test_the_state_follows_awaiting_customer_and_back(way, msg) -> None:
    send_all(way, msg("reported"), msg("awaiting_customer", 1))
    assert way.state("INC-1")[0] is State.AWAITING_CUSTOMER
    send_all(way, msg("customer_responded", 2))
    assert way.state("INC-1")[0] is State.OPEN


@pytest.mark.parametrize(
    "type", ["triaged", "priority_changed", "acknowledged", "workaround_provided", "escalated"]
)
def test_work_goes_on_while_awaiting_the_customer(way, msg, type) -> None:
    send_all(way, msg("reported"), msg("awaiting_customer", 1), msg(type, 2))
    assert way.state("INC-1") == (State.AWAITING_CUSTOMER, 3)


def test_an_incident_awaiting_the_customer_may_be_resolved(way, msg) -> None:
    send_all(way, msg("reported"), msg("awaiting_customer", 1), msg("resolved", 2))
    assert way.state("INC-1") == (State.RESOLVED, 3)


def test_events_with_equal_timestamps_are_in_order(way, msg) -> None:
    send_all(way, msg("reported", 5), msg("triaged", 5), msg("acknowledged", 5))
    assert way.state("INC-1")[1] == 3


def test_an_event_exactly_five_minutes_ahead_of_the_receiver_is_accepted(way, msg) -> None:
    now = T0 + 10 * MIN
    assert way.send(msg("reported", 15), now=now).status == "accepted"
    assert way.send(msg("triaged", 15), now=now).status == "accepted"


# -- refusals of the aggregate ---------------------------------------------------------------------


def test_reported_for_an_existing_incident_is_already_reported(way, msg) -> None:
    send_all(way, msg("reported"))
    outcome = way.send(msg("reported", 1, message_id="again"))
    assert_rejected(outcome, "already_reported", "INC-1", "already reported")


def test_a_late_fact_that_fits_the_lifecycle_in_occurred_order_is_accepted(way, msg) -> None:
    send_all(way, msg("reported", 0), msg("triaged", 10))
    (late,) = send_all(way, msg("acknowledged", 9))
    assert late.position == 3  # the chain keeps recording order


def test_a_late_acknowledged_before_the_recorded_one_is_out_of_order(way, msg) -> None:
    send_all(way, msg("reported", 0), msg("acknowledged", 10), msg("triaged", 20))
    outcome = way.send(msg("acknowledged", 5, message_id="ack-again"))
    assert_rejected(outcome, "out_of_order", "earlier", "already acknowledged")


def test_a_late_customer_responded_while_not_awaiting_is_out_of_order(way, msg) -> None:
    send_all(
        way, msg("reported", 0), msg("awaiting_customer", 30), msg("customer_responded", 40),
        msg("triaged", 50),
    )  # fmt: skip
    outcome = way.send(msg("customer_responded", 20, message_id="early-answer"))
    assert_rejected(outcome, "out_of_order", "customer_responded", "while the incident is open")
    # inside the wait it is a second answer: the first one closed the wait
    outcome = way.send(msg("customer_responded", 35, message_id="in-wait"))
    assert_rejected(outcome, "out_of_order", "customer_responded", "while the incident is open")


def test_a_late_fact_changes_the_state_it_leads_to(way, msg) -> None:
    send_all(way, msg("reported", 0), msg("triaged", 10), msg("resolved", 60))
    send_all(way, msg("awaiting_customer", 20))  # late: the incident waited from 20 to 60
    # resolved stays the latest: the incident is resolved, so a reopening is allowed
    send_all(way, msg("reopened", 70))
    assert_rejected(way.send(msg("customer_responded", 80)), "transition_not_allowed")


def test_an_event_earlier_than_the_report_is_out_of_order(way, msg) -> None:
    send_all(way, msg("reported", 10))
    assert_rejected(way.send(msg("acknowledged", 9.99)), "out_of_order", "occurred_at")


def test_an_event_more_than_five_minutes_ahead_of_the_receiver_is_refused(way, msg) -> None:
    now = T0 + 10 * MIN
    send_all(way, msg("reported", 0))
    later = msg("triaged", 15, occurred_at="2026-03-02T09:15:00.001Z")
    assert_rejected(way.send(later, now=now), "future_timestamp", "occurred_at", "5 minutes")


def test_a_report_from_the_future_is_refused(way, msg) -> None:
    outcome = way.send(msg("reported", 16), now=T0 + 10 * MIN)
    assert_rejected(outcome, "future_timestamp", "occurred_at")


def test_a_second_acknowledgement_is_not_allowed(way, msg) -> None:
    send_all(way, msg("reported"), msg("acknowledged", 1))
    assert_rejected(way.send(msg("acknowledged", 2)), "transition_not_allowed", "acknowledged")


def test_a_second_acknowledgement_after_reopening_is_still_not_allowed(way, msg) -> None:
    send_all(way, msg("reported"), msg("acknowledged", 1), msg("resolved", 2), msg("reopened", 3))
    assert_rejected(way.send(msg("acknowledged", 4)), "transition_not_allowed", "acknowledged")


def test_customer_responded_when_not_awaiting_is_not_allowed(way, msg) -> None:
    send_all(way, msg("reported"))
    outcome = way.send(msg("customer_responded", 1))
    assert_rejected(outcome, "transition_not_allowed", "customer_responded", "open")


def test_awaiting_customer_twice_is_not_allowed(way, msg) -> None:
    send_all(way, msg("reported"), msg("awaiting_customer", 1))
    outcome = way.send(msg("awaiting_customer", 2, data={"reason": "more logs"}))
    assert_rejected(outcome, "transition_not_allowed", "awaiting_customer")


@pytest.mark.parametrize(
    "type",
    [
        "triaged",
        "priority_changed",
        "acknowledged",
        "awaiting_customer",
        "customer_responded",
        "workaround_provided",
        "escalated",
        "resolved",
    ],
)
def test_after_resolution_only_reopened_or_postmortem_is_allowed(way, msg, type) -> None:
    send_all(way, msg("reported"), msg("resolved", 1))
    outcome = way.send(msg(type, 2))
    assert_rejected(outcome, "transition_not_allowed", type, "resolved")


@pytest.mark.parametrize("before", [[], ["awaiting_customer"]])
def test_a_postmortem_before_resolution_is_not_allowed(way, msg, before) -> None:
    send_all(way, msg("reported"), *(msg(t, 1) for t in before))
    outcome = way.send(msg("postmortem_published", 2))
    assert_rejected(outcome, "transition_not_allowed", "postmortem_published")


def test_a_postmortem_after_reopening_is_not_allowed(way, msg) -> None:
    send_all(way, msg("reported"), msg("resolved", 1), msg("reopened", 2))
    outcome = way.send(msg("postmortem_published", 3))
    assert_rejected(outcome, "transition_not_allowed", "postmortem_published", "open")


@pytest.mark.parametrize("before", [[], ["awaiting_customer"]])
def test_reopening_an_unresolved_incident_is_not_allowed(way, msg, before) -> None:
    send_all(way, msg("reported"), *(msg(t, 1) for t in before))
    assert_rejected(way.send(msg("reopened", 2)), "transition_not_allowed", "reopened")


def test_a_report_for_an_unknown_customer_is_refused(way, msg) -> None:
    outcome = way.send(msg("reported", data=reported_data(customer="globex")))
    assert_rejected(outcome, "unknown_customer", "globex", "test-contracts.toml")
    assert way.events("INC-1") == []


def test_a_refusal_carries_the_incident_id(way, msg) -> None:
    send_all(way, msg("reported"))
    assert way.send(msg("reopened", 1)).incident_id == "INC-1"


@pytest.mark.parametrize(
    ("type", "minutes", "code"),
    [
        ("acknowledged", -1, "out_of_order"),
        ("acknowledged", 60 * 24 * 30, "future_timestamp"),
        ("customer_responded", 2, "transition_not_allowed"),
        ("reopened", 2, "transition_not_allowed"),
        ("reported", 2, "already_reported"),
    ],
)
def test_a_refused_message_leaves_no_trace(way, msg, type, minutes, code) -> None:
    send_all(way, msg("reported"), msg("triaged", 1))
    before = (way.state("INC-1"), way.events("INC-1"))
    assert way.send(msg(type, minutes, message_id="refused")).code == code
    assert (way.state("INC-1"), way.events("INC-1")) == before
    # and it did not poison the incident: the next good message gets the next position
    assert way.send(msg("acknowledged", 3)).position == 3


# -- rules of the store: first event, idempotency, batches -----------------------------------------


@pytest.fixture
def record(app: SlatrailApplication) -> Callable[..., list[Outcome]]:
    def send(*messages: Message, now: datetime = NOW) -> list[Outcome]:
        return app.record([decode(line(m)) for m in messages], now=now)

    return send


@pytest.mark.parametrize("type", ["triaged", "acknowledged", "resolved", "postmortem_published"])
def test_the_first_message_of_an_incident_must_be_reported(app, record, msg, type) -> None:
    [outcome] = record(msg(type))
    assert_rejected(outcome, "first_event_not_reported", "INC-1", "reported", type)
    assert outcome.incident_id == "INC-1"
    assert app.incident_events("INC-1") == []


def test_the_same_message_again_is_a_duplicate_and_changes_nothing(app, record, msg) -> None:
    record(msg("reported"), msg("acknowledged", 1))
    events = app.incident_events("INC-1")
    [outcome] = record(msg("acknowledged", 1))
    assert outcome.status == "duplicate"
    assert outcome.position == 2
    assert outcome.code is None
    assert app.incident_events("INC-1") == events


def test_a_duplicate_is_recognised_even_when_it_would_now_break_a_rule(app, record, msg) -> None:
    record(msg("reported"), msg("acknowledged", 1), msg("resolved", 5))
    assert [o.status for o in record(msg("acknowledged", 1), msg("reported"))] == [
        "duplicate",
        "duplicate",
    ]


def test_the_same_message_twice_in_one_batch_is_recorded_once(app, record, msg) -> None:
    outcomes = record(msg("reported"), msg("triaged", 1), msg("triaged", 1))
    assert [o.status for o in outcomes] == ["accepted", "accepted", "duplicate"]
    assert outcomes[2].position == 2
    assert len(app.incident_events("INC-1")) == 2


def test_key_order_and_whitespace_do_not_make_a_message_different(app, msg) -> None:
    original = msg("reported")
    app.record([decode(line(original))], now=NOW)
    reordered = dict(reversed(list(original.items())))
    [outcome] = app.record([decode(line(reordered).replace(b",", b" , "))], now=NOW)
    assert outcome.status == "duplicate"


def test_the_same_message_id_with_other_content_is_a_conflict(app, record, msg) -> None:
    record(msg("reported"), msg("acknowledged", 1, message_id="m-ack"))
    events = app.incident_events("INC-1")
    [outcome] = record(msg("acknowledged", 1, message_id="m-ack", actor="someone-else"))
    assert_rejected(outcome, "message_id_conflict", "m-ack", "different content")
    assert outcome.message_id == "m-ack"
    assert app.incident_events("INC-1") == events


def test_a_message_id_conflicts_across_incidents(app, record, msg) -> None:
    record(msg("reported", message_id="shared-id"))
    [outcome] = record(msg("reported", incident_id="INC-2", message_id="shared-id"))
    assert_rejected(outcome, "message_id_conflict", "shared-id", "INC-1")
    assert outcome.incident_id == "INC-2"
    assert app.incident_events("INC-2") == []


def test_a_message_id_conflicts_within_one_batch(app, record, msg) -> None:
    outcomes = record(
        msg("reported"),
        msg("triaged", 1, message_id="m-2"),
        msg("acknowledged", 2, message_id="m-2"),
    )
    assert [o.status for o in outcomes] == ["accepted", "accepted", "rejected"]
    assert outcomes[2].code == "message_id_conflict"
    assert [str(e.type) for e in app.incident_events("INC-1")] == ["reported", "triaged"]


def test_a_refused_message_leaves_no_receipt_so_a_corrected_resend_is_accepted(
    app, record, msg
) -> None:
    record(msg("reported", 10))
    [refused] = record(msg("acknowledged", 5, message_id="m-ack"))
    assert refused.code == "out_of_order"
    [corrected] = record(msg("acknowledged", 11, message_id="m-ack"))
    assert corrected.status == "accepted"
    assert corrected.position == 2


def test_a_refused_report_leaves_no_incident(app, record, msg) -> None:
    [refused] = record(msg("reported", data=reported_data(customer="globex")))
    assert refused.code == "unknown_customer"
    [then] = record(msg("triaged", 1))
    assert then.code == "first_event_not_reported"
    [fixed] = record(msg("reported", 2, message_id="fixed"))
    assert fixed.status == "accepted"
    assert fixed.position == 1


def test_a_batch_with_a_refused_message_in_the_middle_records_the_others(app, record, msg) -> None:
    outcomes = record(
        msg("reported", 0),
        msg("triaged", 1),
        msg("customer_responded", 2),  # not awaiting: refused
        msg("acknowledged", 3),
        msg("reported", 0, incident_id="INC-2"),
        msg("reopened", 1, incident_id="INC-2"),  # not resolved: refused
        msg("acknowledged", 2, incident_id="INC-2"),
    )
    assert [o.status for o in outcomes] == [
        "accepted",
        "accepted",
        "rejected",
        "accepted",
        "accepted",
        "rejected",
        "accepted",
    ]
    assert [o.position for o in outcomes] == [1, 2, None, 3, 1, None, 2]
    assert [str(e.type) for e in app.incident_events("INC-1")] == [
        "reported",
        "triaged",
        "acknowledged",
    ]
    assert [str(e.type) for e in app.incident_events("INC-2")] == ["reported", "acknowledged"]


def test_a_batch_can_open_an_incident_and_go_on_with_it(app, record, msg) -> None:
    outcomes = record(msg("reported"), msg("acknowledged", 1), msg("resolved", 2))
    assert [o.position for o in outcomes] == [1, 2, 3]
    stored: Incident = app.repository.get(incident_uuid("INC-1"))
    assert stored.state is State.RESOLVED


def test_recorded_events_chain_their_hashes(app, record, msg) -> None:
    record(msg("reported"), msg("triaged", 1), msg("acknowledged", 2))
    events = app.incident_events("INC-1")
    assert events[0].prev_hash == "0" * 64
    for previous, event in itertools.pairwise(events):
        assert event.prev_hash == previous.hash
    assert all(e.hash == e.computed_hash() for e in events)


def test_recorded_events_keep_receiver_time_and_normalised_event_time(app, record, msg) -> None:
    record(msg("reported", occurred_at="2026-03-02T17:00:00+08:00"))
    [event] = app.incident_events("INC-1")
    assert event.occurred_at == T0
    assert event.recorded_at == NOW
    assert event.data["channel"] == "ticket"
