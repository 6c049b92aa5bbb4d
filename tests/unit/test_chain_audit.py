"""The audit trail's derived annotations (`slatrail audit`): what each event caused."""

from __future__ import annotations

from datetime import timedelta

from slatrail.domain.model import IncidentEvent
from slatrail.projections.audit import annotated_trail, derive_annotations
from tests.builders import contracts_from, record_history, reported_data, utc

T0 = utc(2026, 3, 2, 9)
MIN = timedelta(minutes=1)
CONTRACTS = contracts_from()  # acme: gold tier, P1 response 15m / workaround 2h / resolution 4h


def history() -> list[IncidentEvent]:
    return record_history(
        [
            ("reported", T0, reported_data(priority="P2")),
            ("triaged", T0 + 2 * MIN, {"priority": "P1"}),
            ("acknowledged", T0 + 10 * MIN, {}),
            ("escalated", T0 + 20 * MIN, {"level": 3, "reason": "customer asked"}),
            ("awaiting_customer", T0 + 30 * MIN, {"reason": "logs"}),
            ("customer_responded", T0 + 90 * MIN, {}),
            ("resolved", T0 + 360 * MIN, {"resolution": "fixed", "cause": "customer"}),
        ],
        CONTRACTS,
        now=T0 + 7 * 60 * MIN,
    )


def texts(position: int) -> list[str]:
    notes = derive_annotations(history(), CONTRACTS, T0 + 8 * 60 * MIN)
    return [note.text for note in notes[position - 1]]


def test_a_first_triage_other_than_claimed_is_annotated_as_a_priority_dispute() -> None:
    assert "priority dispute: claimed P2, triaged P1" in texts(2)


def test_a_stopping_event_says_which_clock_stopped_with_its_status_and_figures() -> None:
    assert texts(3)[0].startswith("response clock stopped: met 10m/15m")


def test_a_stop_recorded_after_the_due_time_says_it_looked_breached_as_known_then() -> None:
    assert "after the due time 2026-03-02T09:15:00Z: as known then, it was breached" in texts(3)[0]


def test_breaches_between_events_are_annotated_at_their_instant() -> None:
    after_pause = texts(6)
    assert "clocks resumed after 1h paused" in after_pause
    # 1h paused: the 2h workaround target is reached at 12:00, the 4h resolution one at 14:00.
    assert "workaround breached at 2026-03-02T12:00:00Z (target 2h)" in after_pause
    assert "resolution breached at 2026-03-02T14:00:00Z (target 4h)" in after_pause
    assert "resolution clock at risk at 2026-03-02T13:00:00Z (75% of 4h)" in after_pause


def test_escalation_changes_are_annotated_with_their_reason() -> None:
    assert texts(4) == ["escalation level 1 → 3: manual escalation: customer asked"]
    assert "escalation level 3 → 4: P1 workaround breached" in texts(6)


def test_resolution_notes_stops_exclusion_and_the_postmortem_clock() -> None:
    assert texts(7) == [
        "excluded from attainment: cause customer",
        "workaround clock stopped: breached 5h/2h",
        "resolution clock stopped: breached 5h/4h",
        "postmortem clock started, due 2026-03-07T15:00:00Z",
    ]


def test_annotations_are_limited_to_what_was_known_and_to_event_time() -> None:
    events = history()
    # As known at 09:30 only the first events had been recorded (all were recorded at 16:00).
    assert annotated_trail(events, CONTRACTS, T0 + 30 * MIN, as_known_at=T0 + 30 * MIN) == []
    trail = annotated_trail(events, CONTRACTS, T0 + 12 * MIN)
    assert [entry["position"] for entry in trail] == [1, 2, 3]
    assert trail[2]["annotations"][0]["kind"] == "clock_stopped"
    assert trail[2]["annotations"][0]["metric"] == "response"
