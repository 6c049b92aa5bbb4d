"""Stored topics are names in the record, not import paths: a store recorded by any version of
slatrail reads back, wherever the code lives (domain/topics.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from eventsourcing.utils import get_topic, resolve_topic

from slatrail.domain.contract_version import ContractHistory
from slatrail.domain.incident import EVENT_CLASSES, Incident
from slatrail.domain.receipt import MessageReceipt

STORED = {
    "domain.incident:Incident": Incident,
    "domain.incident:Incident.Reported": Incident.Reported,
    "domain.incident:Incident.Triaged": Incident.Triaged,
    "domain.incident:Incident.PriorityChanged": Incident.PriorityChanged,
    "domain.incident:Incident.Acknowledged": Incident.Acknowledged,
    "domain.incident:Incident.AwaitingCustomer": Incident.AwaitingCustomer,
    "domain.incident:Incident.CustomerResponded": Incident.CustomerResponded,
    "domain.incident:Incident.WorkaroundProvided": Incident.WorkaroundProvided,
    "domain.incident:Incident.Escalated": Incident.Escalated,
    "domain.incident:Incident.Resolved": Incident.Resolved,
    "domain.incident:Incident.Reopened": Incident.Reopened,
    "domain.incident:Incident.PostmortemPublished": Incident.PostmortemPublished,
    "domain.receipt:MessageReceipt": MessageReceipt,
    "domain.receipt:MessageReceipt.Received": MessageReceipt.Received,
    "domain.contract_version:ContractHistory": ContractHistory,
    "domain.contract_version:ContractHistory.Created": ContractHistory.Created,
    "domain.contract_version:ContractHistory.Started": ContractHistory.Started,
    "domain.contract_version:ContractHistory.VersionRecorded": ContractHistory.VersionRecorded,
}


def test_every_stored_class_keeps_the_topic_the_first_stores_recorded() -> None:
    assert {get_topic(cls): cls for cls in STORED.values()} == STORED
    assert set(EVENT_CLASSES.values()) <= set(STORED.values())


def test_a_stored_topic_resolves_to_the_class_wherever_its_module_lives() -> None:
    for topic, cls in STORED.items():
        assert resolve_topic(topic) is cls
    assert Incident.__module__ == "slatrail.domain.incident"


def test_a_receipt_records_its_pinned_topics() -> None:
    receipt = MessageReceipt.issue(
        message_id="m-1", incident_id="INC-1", fingerprint="f", position=1,
        now=datetime(2026, 10, 1, tzinfo=UTC),
    )  # fmt: skip
    (event,) = receipt.collect_events()
    assert get_topic(type(event)) == "domain.receipt:MessageReceipt.Received"
    assert event.originator_topic == "domain.receipt:MessageReceipt"
