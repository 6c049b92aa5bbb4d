"""An outcome's status is a StrEnum whose values are the ones on the wire and in JSON."""

from __future__ import annotations

import json

from slatrail.application.outcomes import IngestCounts, Outcome, Status
from slatrail.domain.errors import AlreadyReportedError


def test_the_statuses_keep_their_wire_values() -> None:
    assert [str(s) for s in Status] == ["accepted", "duplicate", "rejected", "parked"]
    assert Status("duplicate") is Status.DUPLICATE


def test_a_status_is_written_to_json_as_its_plain_value() -> None:
    outcome = Outcome.rejected(AlreadyReportedError("again", incident_id="INC-1"), "m-1")
    assert outcome.status is Status.REJECTED
    assert json.dumps({"status": outcome.status}) == '{"status": "rejected"}'
    assert outcome.status == "rejected"


def test_counts_accept_statuses_and_their_plain_values_alike() -> None:
    counts = IngestCounts()
    for status in (Status.ACCEPTED, "accepted", Status.DUPLICATE, "rejected"):
        counts.add(Outcome(Status(status), code="x" if status == "rejected" else None))
    assert counts.as_json() == {
        "accepted": 2, "duplicate": 1, "rejected": 1, "rejected_by_code": {"x": 1},
    }  # fmt: skip
