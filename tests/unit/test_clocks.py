"""SLA clocks (clocks.md) and the SLA JSON (commands.md), every figure computed by hand.

The contract is `tests.builders.CONTRACTS_TOML`, customer `acme` (tier gold):

    P1 24x7        response 15m  workaround 2h   resolution 4h
    P2 24x7        response 1h   -               resolution 8h
    P3 office      response 4h   workaround 8h   resolution 24h
    P4 office      response 8h   -               -
    office = Europe/Berlin Mon-Fri 09:00-12:00 + 13:00-17:30, 2026-03-04 a holiday

and customer `dayco` (tier daily): P1 24x7 30m/-/24h, P3 `mornings` (every day 00:00-12:00
Berlin) 4h/-/48h. March 2026: Berlin is UTC+1 until Sunday 29 March 02:00, UTC+2 after.
Post-mortems are due 120 h after the latest resolution, 24x7; at-risk threshold 0.75.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from slatrail.domain.clocks import Metric, evaluate
from slatrail.domain.contracts import Contracts
from slatrail.domain.model import IncidentEvent
from slatrail.domain.timeline import build_timeline
from slatrail.projections.sla import IncidentSla, incident_sla, sla_view
from tests.builders import CONTRACTS_TOML, contracts_from, record_history, utc

H = 3600
MIN = 60
MON = utc(2026, 3, 2, 9)  # Monday 10:00 Berlin

Fact = tuple[str, datetime, dict[str, Any]]


# -- facts -----------------------------------------------------------------------------------------


def reported(at: datetime, priority: str = "P1", customer: str = "acme", **extra: Any) -> Fact:
    return (
        "reported",
        at,
        {"customer": customer, "title": "calls drop", "priority": priority, **extra},
    )


def triaged(at: datetime, priority: str) -> Fact:
    return ("triaged", at, {"priority": priority})


def changed(at: datetime, priority: str) -> Fact:
    return ("priority_changed", at, {"priority": priority, "reason": "impact changed"})


def ack(at: datetime) -> Fact:
    return ("acknowledged", at, {})


def awaiting(at: datetime) -> Fact:
    return ("awaiting_customer", at, {"reason": "SDK logs"})


def responded(at: datetime) -> Fact:
    return ("customer_responded", at, {})


def workaround(at: datetime) -> Fact:
    return ("workaround_provided", at, {"description": "use the backup cluster"})


def resolved(at: datetime, cause: str | None = None) -> Fact:
    return ("resolved", at, {"resolution": "fixed", **({"cause": cause} if cause else {})})


def reopened(at: datetime) -> Fact:
    return ("reopened", at, {"reason": "came back"})


def postmortem(at: datetime) -> Fact:
    return ("postmortem_published", at, {"summary": "s", "root_cause": "r", "action_items": []})


def after(**delta: float) -> datetime:
    """MON plus a duration: after(minutes=15)."""
    return MON + timedelta(**delta)


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def contracts() -> Contracts:
    return contracts_from()


@pytest.fixture
def history(contracts: Contracts) -> Callable[..., list[IncidentEvent]]:
    """Factory: facts → recorded events, through the Incident aggregate (all rules checked)."""

    def make(*facts: Fact, incident_id: str = "INC-1") -> list[IncidentEvent]:
        return record_history(list(facts), contracts, incident_id=incident_id)

    return make


@pytest.fixture
def sla(
    contracts: Contracts, history: Callable[..., list[IncidentEvent]]
) -> Callable[..., IncidentSla]:
    """Factory: the SLA view of one incident made of `facts`, as of `as_of`."""

    def view(as_of: datetime, *facts: Fact) -> IncidentSla:
        found = incident_sla(history(*facts), contracts, as_of)
        assert found is not None, "not reported by as_of"
        return found

    return view


def clock(view: IncidentSla, metric: str) -> dict[str, Any]:
    return view.as_json()["metrics"][metric]


def z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- counted time (clocks.md#counted-time-and-calendars) -------------------------------------------


def test_counted_time_on_24x7_is_every_second_since_the_report(sla) -> None:
    view = sla(after(minutes=30), reported(MON, "P2"))
    assert clock(view, "response") == {
        "status": "running",
        "target_s": 1 * H,
        "elapsed_s": 30 * MIN,
        "due_at": z(after(hours=1)),
        "stopped_at": None,
    }


def test_business_hours_skip_the_weekend(sla) -> None:
    # Fri 17:00 Berlin → Mon 10:00 Berlin: Fri 17:00-17:30 + Mon 09:00-10:00
    view = sla(utc(2026, 3, 9, 9), reported(utc(2026, 3, 6, 16), "P3"))
    response = clock(view, "response")
    assert response["elapsed_s"] == 90 * MIN
    # 2 h 30 min still to go from Mon 10:00: 10:00-12:00, lunch, 13:00-13:30 Berlin
    assert response["due_at"] == "2026-03-09T12:30:00Z"
    assert response["status"] == "running"


def test_business_hours_skip_a_holiday(sla) -> None:
    # Tue 17:00 Berlin → Thu 09:30 Berlin, Wednesday 4 March is a holiday
    view = sla(utc(2026, 3, 5, 8, 30), reported(utc(2026, 3, 3, 16), "P3"))
    assert clock(view, "response")["elapsed_s"] == 60 * MIN


def test_business_hours_skip_the_lunch_break_between_two_ranges(sla) -> None:
    # 11:00 → 13:30 Berlin: 11:00-12:00 + 13:00-13:30
    view = sla(utc(2026, 3, 2, 12, 30), reported(utc(2026, 3, 2, 10), "P3"))
    assert clock(view, "response")["elapsed_s"] == 90 * MIN


def test_business_hours_follow_the_time_zone_across_the_dst_change(sla) -> None:
    # Fri 27 March 16:30 CET (15:30Z) → Mon 30 March 10:00 CEST (08:00Z): 1 h + 1 h.
    # Read with a fixed +01:00 offset Monday would start at 08:00Z and give 1 h 0 min.
    view = sla(utc(2026, 3, 30, 8), reported(utc(2026, 3, 27, 15, 30), "P3"))
    assert clock(view, "response")["elapsed_s"] == 2 * H


def test_a_working_day_is_an_hour_shorter_on_the_spring_forward_sunday(sla) -> None:
    # dayco P3 counts 00:00-12:00 Berlin every day; on 29 March that is 11 h of real time
    view = sla(utc(2026, 3, 29, 12), reported(utc(2026, 3, 28, 23), "P3", customer="dayco"))
    assert clock(view, "resolution")["elapsed_s"] == 11 * H
    # 37 h to go: three 12 h mornings, then 00:00-01:00 CEST on Thursday 2 April
    assert clock(view, "resolution")["due_at"] == "2026-04-01T23:00:00Z"


def test_a_working_day_is_an_hour_longer_on_the_fall_back_sunday(sla) -> None:
    view = sla(utc(2026, 10, 25, 12), reported(utc(2026, 10, 24, 22), "P3", customer="dayco"))
    assert clock(view, "resolution")["elapsed_s"] == 13 * H


def test_a_due_date_across_the_dst_change_counts_real_seconds(sla) -> None:
    # reported Sun 29 March 00:30 CET (Sat 23:30Z); 4 h of real time later is 03:30Z (05:30 CEST)
    view = sla(utc(2026, 3, 29, 0), reported(utc(2026, 3, 28, 23, 30), "P3", customer="dayco"))
    assert clock(view, "response")["due_at"] == "2026-03-29T03:30:00Z"


# -- pauses (clocks.md#pausing) --------------------------------------------------------------------


def test_response_clock_never_pauses(sla) -> None:
    view = sla(
        after(minutes=50),
        reported(MON, "P2"), awaiting(after(minutes=10)), responded(after(minutes=40)),
    )  # fmt: skip
    assert clock(view, "response")["elapsed_s"] == 50 * MIN
    assert clock(view, "response")["status"] == "at_risk"  # 50 min ≥ 0.75 × 1 h
    assert clock(view, "resolution")["elapsed_s"] == 20 * MIN


def test_workaround_and_resolution_pause_while_awaiting_the_customer(sla) -> None:
    view = sla(
        after(hours=2),
        reported(MON, "P1"), awaiting(after(minutes=30)), responded(after(minutes=90)),
    )  # fmt: skip
    for metric in ("workaround", "resolution"):
        assert clock(view, metric)["elapsed_s"] == 60 * MIN
    assert clock(view, "workaround")["due_at"] == z(after(hours=3))  # 2 h + 1 h paused
    assert clock(view, "resolution")["due_at"] == z(after(hours=5))
    assert clock(view, "response")["elapsed_s"] == 2 * H


def test_a_clock_is_paused_while_the_customer_has_not_answered(sla) -> None:
    view = sla(after(hours=1), reported(MON, "P1"), awaiting(after(minutes=30)))
    for metric in ("workaround", "resolution"):
        assert clock(view, metric) == {
            "status": "paused",
            "target_s": {"workaround": 2 * H, "resolution": 4 * H}[metric],
            "elapsed_s": 30 * MIN,
            "due_at": None,  # a pause still open lasts forever
            "stopped_at": None,
        }
    assert clock(view, "response")["status"] == "breached"


def test_resolution_ends_a_pause(sla) -> None:
    view = sla(
        after(hours=3),
        reported(MON, "P1"), awaiting(after(minutes=20)), resolved(after(hours=1)),
    )  # fmt: skip
    assert clock(view, "resolution") == {
        "status": "met",
        "target_s": 4 * H,
        "elapsed_s": 20 * MIN,
        "due_at": z(after(hours=4, minutes=40)),
        "stopped_at": z(after(hours=1)),
    }


def test_a_pause_does_not_run_on_after_the_incident_is_reopened(sla) -> None:
    view = sla(
        after(hours=2, minutes=30),
        reported(MON, "P1"), awaiting(after(minutes=30)), resolved(after(hours=1)),
        reopened(after(hours=2)),
    )  # fmt: skip
    assert clock(view, "resolution")["elapsed_s"] == 60 * MIN
    assert clock(view, "resolution")["status"] == "running"


def test_a_pause_that_started_after_the_target_was_reached_keeps_the_breach(sla) -> None:
    view = sla(after(hours=3), reported(MON, "P1"), awaiting(after(hours=2, minutes=30)))
    assert clock(view, "workaround") == {
        "status": "breached",
        "target_s": 2 * H,
        "elapsed_s": 150 * MIN,
        "due_at": z(after(hours=2)),
        "stopped_at": None,
    }


# -- workaround and resolution stops ---------------------------------------------------------------


def test_workaround_clock_stops_at_the_first_workaround(sla) -> None:
    view = sla(after(hours=3), reported(MON, "P1"), workaround(after(hours=1)))
    assert clock(view, "workaround") == {
        "status": "met",
        "target_s": 2 * H,
        "elapsed_s": 1 * H,
        "due_at": z(after(hours=2)),
        "stopped_at": z(after(hours=1)),
    }


def test_workaround_clock_stops_at_resolution_when_no_workaround_came_first(sla) -> None:
    view = sla(
        after(hours=4),
        reported(MON, "P1"), resolved(after(minutes=30)), reopened(after(hours=1)),
        workaround(after(hours=2)),
    )  # fmt: skip
    assert clock(view, "workaround")["stopped_at"] == z(after(minutes=30))
    assert clock(view, "workaround")["elapsed_s"] == 30 * MIN
    assert clock(view, "workaround")["status"] == "met"


def test_resolution_clock_resumes_on_reopening_without_the_resolved_gap(sla) -> None:
    facts = [reported(MON, "P1"), resolved(after(hours=1)), reopened(after(hours=3))]
    view = sla(after(hours=4), *facts)
    assert clock(view, "resolution") == {
        "status": "running",
        "target_s": 4 * H,
        "elapsed_s": 2 * H,
        "due_at": z(after(hours=6)),
        "stopped_at": None,
    }
    view = sla(after(hours=5), *facts, resolved(after(hours=4, minutes=30)))
    assert clock(view, "resolution") == {
        "status": "met",
        "target_s": 4 * H,
        "elapsed_s": 150 * MIN,
        "due_at": z(after(hours=6)),
        "stopped_at": z(after(hours=4, minutes=30)),
    }


def test_resolution_clock_can_be_breached_across_two_open_runs(sla) -> None:
    view = sla(
        after(hours=9),
        reported(MON, "P1"), resolved(after(hours=3)), reopened(after(hours=5)),
        resolved(after(hours=6, minutes=30)),
    )  # fmt: skip
    assert clock(view, "resolution")["elapsed_s"] == 270 * MIN
    assert clock(view, "resolution")["status"] == "breached"
    assert clock(view, "resolution")["due_at"] == z(after(hours=6))


# -- postmortem ------------------------------------------------------------------------------------


def test_a_p1_postmortem_is_pending_before_resolution(sla) -> None:
    view = sla(after(hours=1), reported(MON, "P1"))
    assert clock(view, "postmortem") == {
        "status": "pending",
        "target_s": 120 * H,
        "elapsed_s": None,
        "due_at": None,
        "stopped_at": None,
    }


def test_a_p1_postmortem_runs_from_the_resolution_round_the_clock(sla) -> None:
    view = sla(after(hours=25), reported(MON, "P1"), resolved(after(hours=1)))
    assert clock(view, "postmortem") == {
        "status": "running",
        "target_s": 120 * H,
        "elapsed_s": 24 * H,
        "due_at": z(after(hours=121)),
        "stopped_at": None,
    }


def test_a_postmortem_published_in_time_is_met(sla) -> None:
    view = sla(
        after(days=30),
        reported(MON, "P1"), resolved(after(hours=1)), postmortem(after(hours=21)),
    )  # fmt: skip
    assert clock(view, "postmortem")["status"] == "met"
    assert clock(view, "postmortem")["elapsed_s"] == 20 * H
    assert clock(view, "postmortem")["stopped_at"] == z(after(hours=21))


def test_a_postmortem_is_at_risk_at_75_percent_and_breached_after_its_target(sla) -> None:
    facts = [reported(MON, "P1"), resolved(after(hours=1))]
    assert clock(sla(after(hours=90, seconds=3599), *facts), "postmortem")["status"] == "running"
    assert clock(sla(after(hours=91), *facts), "postmortem")["status"] == "at_risk"
    assert clock(sla(after(hours=121), *facts), "postmortem")["status"] == "at_risk"
    late = clock(sla(after(hours=121, seconds=1), *facts), "postmortem")
    assert (late["status"], late["elapsed_s"]) == ("breached", 120 * H + 1)


def test_an_outage_needs_a_postmortem_whatever_the_priority(sla) -> None:
    facts = [reported(MON, "P3", outage=True)]
    assert clock(sla(after(hours=1), *facts), "postmortem")["status"] == "pending"
    view = sla(after(hours=2), *facts, resolved(after(hours=1)))
    assert clock(view, "postmortem")["status"] == "running"


def test_a_postmortem_is_always_24x7_even_on_a_business_calendar(sla) -> None:
    # P3 outage on the office calendar, resolved Friday 17:00 Berlin, three days later
    view = sla(
        utc(2026, 3, 9, 16),
        reported(utc(2026, 3, 6, 9), "P3", outage=True), resolved(utc(2026, 3, 6, 16)),
    )  # fmt: skip
    assert clock(view, "postmortem")["elapsed_s"] == 72 * H
    assert clock(view, "postmortem")["due_at"] == "2026-03-11T16:00:00Z"


def test_no_postmortem_is_needed_below_p1_without_an_outage(sla) -> None:
    for facts in ([reported(MON, "P2")], [reported(MON, "P2"), resolved(after(hours=1))]):
        assert clock(sla(after(hours=2), *facts), "postmortem") == {
            "status": "not_applicable",
            "target_s": None,
            "elapsed_s": None,
            "due_at": None,
            "stopped_at": None,
        }


def test_the_postmortem_follows_the_priority_in_effect_at_resolution(sla) -> None:
    downgraded = [reported(MON, "P1"), triaged(after(minutes=5), "P2"), resolved(after(hours=1))]
    assert clock(sla(after(hours=2), *downgraded), "postmortem")["status"] == "not_applicable"
    upgraded = [reported(MON, "P2"), changed(after(minutes=5), "P1"), resolved(after(hours=1))]
    assert clock(sla(after(hours=2), *upgraded), "postmortem")["status"] == "running"


def test_before_resolution_the_postmortem_follows_the_priority_now(sla) -> None:
    facts = [reported(MON, "P2"), changed(after(minutes=30), "P1")]
    assert clock(sla(after(minutes=15), *facts), "postmortem")["status"] == "not_applicable"
    assert clock(sla(after(minutes=45), *facts), "postmortem")["status"] == "pending"


def test_reopening_returns_the_postmortem_to_pending(sla) -> None:
    view = sla(
        after(hours=4),
        reported(MON, "P1"), resolved(after(hours=1)), postmortem(after(hours=2)),
        reopened(after(hours=3)),
    )  # fmt: skip
    assert clock(view, "postmortem")["status"] == "pending"
    assert clock(view, "postmortem")["stopped_at"] is None


def test_the_postmortem_clock_starts_at_the_latest_resolution(sla) -> None:
    # a post-mortem published before the reopening does not count for the new resolution
    view = sla(
        after(hours=7),
        reported(MON, "P1"), resolved(after(hours=1)), postmortem(after(hours=2)),
        reopened(after(hours=3)), resolved(after(hours=5)),
    )  # fmt: skip
    assert clock(view, "postmortem") == {
        "status": "running",
        "target_s": 120 * H,
        "elapsed_s": 2 * H,
        "due_at": z(after(hours=125)),
        "stopped_at": None,
    }


# -- priority in effect (clocks.md#priority-in-effect) ---------------------------------------------


def test_the_claimed_priority_applies_until_triage(sla) -> None:
    facts = [reported(MON, "P3"), triaged(after(minutes=10), "P2")]
    before = sla(after(minutes=5), *facts)
    assert before.as_json()["priority"] == "P3"
    assert clock(before, "response")["target_s"] == 4 * H
    later = sla(after(minutes=20), *facts)
    assert (later.as_json()["priority"], later.as_json()["claimed_priority"]) == ("P2", "P3")
    assert clock(later, "response")["target_s"] == 1 * H
    assert clock(later, "response")["elapsed_s"] == 20 * MIN  # 24x7 now


def test_the_latest_triage_or_priority_change_wins(sla) -> None:
    facts = [
        reported(MON, "P4"),
        triaged(after(minutes=1), "P2"),
        changed(after(minutes=2), "P1"),
        triaged(after(minutes=3), "P3"),
    ]
    assert sla(after(minutes=2, seconds=30), *facts).as_json()["priority"] == "P1"
    assert sla(after(minutes=3), *facts).as_json()["priority"] == "P3"


def test_an_upgrade_recomputes_a_running_clock_with_the_new_calendar(sla) -> None:
    # P3 on office hours, reported Friday 18:00 Berlin: nothing counted by Monday 07:59 Berlin
    facts = [reported(utc(2026, 3, 6, 17), "P3"), changed(utc(2026, 3, 9, 6, 59), "P1")]
    before = sla(utc(2026, 3, 9, 6, 58), facts[0])
    assert clock(before, "response")["elapsed_s"] == 0
    assert clock(before, "response")["status"] == "running"
    # upgraded to P1 (24x7, 15 min): the whole 62 h since the report count, at once
    view = sla(utc(2026, 3, 9, 7), *facts)
    assert clock(view, "response") == {
        "status": "breached",
        "target_s": 15 * MIN,
        "elapsed_s": 62 * H,
        "due_at": "2026-03-06T17:15:00Z",
        "stopped_at": None,
    }
    assert clock(view, "resolution")["status"] == "breached"


def test_a_downgrade_recomputes_a_running_clock_with_the_new_calendar(sla) -> None:
    # P1 reported Monday 10:00 Berlin, downgraded to P3 (office) at 13:30 Berlin
    view = sla(
        after(hours=3, minutes=30),
        reported(MON, "P1"), changed(after(hours=3, minutes=30), "P3"),
    )  # fmt: skip
    assert clock(view, "response")["elapsed_s"] == 150 * MIN  # 10:00-12:00 + 13:00-13:30
    assert clock(view, "response")["status"] == "running"


def test_a_stopped_clock_keeps_the_priority_in_effect_when_it_stopped(sla) -> None:
    # P3 acknowledged after 2 office hours (met), then upgraded to P1
    view = sla(
        after(hours=3),
        reported(MON, "P3"), ack(after(hours=2)), changed(after(hours=2, minutes=30), "P1"),
    )  # fmt: skip
    assert view.as_json()["priority"] == "P1"
    assert clock(view, "response") == {
        "status": "met",
        "target_s": 4 * H,
        "elapsed_s": 2 * H,
        "due_at": "2026-03-02T14:00:00Z",  # 10:00-12:00 + 13:00-15:00 Berlin
        "stopped_at": z(after(hours=2)),
    }
    # the running resolution clock uses P1: 3 h of 4 h, 24x7 — exactly at risk
    assert clock(view, "resolution")["elapsed_s"] == 3 * H
    assert clock(view, "resolution")["status"] == "at_risk"


def test_a_priority_change_after_as_of_is_ignored(sla) -> None:
    facts = [reported(MON, "P2"), changed(after(hours=2), "P1")]
    view = sla(after(hours=1, minutes=59), *facts)
    assert view.as_json()["priority"] == "P2"
    assert clock(view, "response")["target_s"] == 1 * H


# -- elapsed_s and due_at (clocks.md#figures-elapsed_s-due_at-stopped_at) --------------------------


def test_due_at_is_null_without_a_target(sla) -> None:
    view = sla(after(hours=1), reported(MON, "P2"))
    assert clock(view, "workaround") == {
        "status": "not_applicable",
        "target_s": None,
        "elapsed_s": 1 * H,
        "due_at": None,
        "stopped_at": None,
    }


def test_due_at_on_a_business_calendar_lands_at_the_end_of_the_working_day(sla) -> None:
    # reported Monday 13:30 Berlin: 4 office hours end exactly at 17:30 Berlin, not next morning
    view = sla(utc(2026, 3, 2, 12, 30), reported(utc(2026, 3, 2, 12, 30), "P3"))
    assert clock(view, "response")["due_at"] == "2026-03-02T16:30:00Z"
    at_due = sla(utc(2026, 3, 2, 16, 30), reported(utc(2026, 3, 2, 12, 30), "P3"))
    assert clock(at_due, "response")["elapsed_s"] == 4 * H
    assert clock(at_due, "response")["status"] == "at_risk"


def test_due_at_of_a_report_outside_business_hours_is_counted_from_the_next_opening(sla) -> None:
    # reported Saturday: due Monday 09:00 + 4 h of office time = 14:00 Berlin (lunch skipped)
    view = sla(utc(2026, 3, 7, 12), reported(utc(2026, 3, 7, 10), "P3"))
    assert clock(view, "response")["due_at"] == "2026-03-09T13:00:00Z"
    assert clock(view, "response")["elapsed_s"] == 0


def test_due_at_is_known_while_paused_when_the_target_was_already_reached(sla) -> None:
    view = sla(after(hours=1), reported(MON, "P1"), awaiting(after(minutes=30)))
    assert clock(view, "response")["due_at"] == z(after(minutes=15))  # response never pauses


def test_elapsed_of_a_stopped_clock_ends_at_the_stop(sla) -> None:
    view = sla(after(days=3), reported(MON, "P2"), ack(after(minutes=40)))
    assert clock(view, "response")["elapsed_s"] == 40 * MIN
    assert clock(view, "response")["stopped_at"] == z(after(minutes=40))


def test_elapsed_keeps_fractions_of_a_second(sla) -> None:
    view = sla(after(minutes=1, microseconds=500_000), reported(MON, "P1"))
    assert clock(view, "response")["elapsed_s"] == 60.5


# -- status precedence (clocks.md#statuses) --------------------------------------------------------


def test_a_clock_stopped_exactly_at_its_target_is_met(sla) -> None:
    view = sla(after(hours=1), reported(MON, "P1"), ack(after(minutes=15)))
    response = clock(view, "response")
    assert (response["status"], response["elapsed_s"]) == ("met", 15 * MIN)


def test_a_clock_counted_in_microsecond_pieces_that_add_up_to_its_target_is_met(sla) -> None:
    # 1433.746621 s + 5572.877685 s + 193.375694 s = 7200 s exactly (as floats: 7200.000000000001)
    view = sla(
        after(hours=4),
        reported(MON, "P1"),
        awaiting(after(seconds=1433.746621)),
        responded(after(seconds=3600)),
        awaiting(after(seconds=3600 + 5572.877685)),
        responded(after(seconds=10_000)),
        workaround(after(seconds=10_000 + 193.375694)),
    )
    workaround_clock = clock(view, "workaround")
    assert (workaround_clock["status"], workaround_clock["elapsed_s"]) == ("met", 7200)
    assert workaround_clock["due_at"] == workaround_clock["stopped_at"]


def test_a_clock_stopped_a_second_after_its_target_is_breached(sla) -> None:
    view = sla(after(hours=1), reported(MON, "P1"), ack(after(minutes=15, seconds=1)))
    response = clock(view, "response")
    assert (response["status"], response["elapsed_s"]) == ("breached", 15 * MIN + 1)
    assert response["stopped_at"] == z(after(minutes=15, seconds=1))


def test_a_running_clock_past_its_target_is_breached(sla) -> None:
    view = sla(after(minutes=15, seconds=1), reported(MON, "P1"))
    assert clock(view, "response")["status"] == "breached"
    assert clock(view, "response")["stopped_at"] is None


def test_a_running_clock_exactly_at_its_target_is_at_risk_not_breached(sla) -> None:
    view = sla(after(minutes=15), reported(MON, "P1"))
    assert clock(view, "response")["status"] == "at_risk"


def test_at_risk_starts_exactly_at_the_threshold(sla) -> None:
    # 0.75 × 15 min = 11 min 15 s
    assert (
        clock(sla(after(minutes=11, seconds=14), reported(MON, "P1")), "response")["status"]
        == "running"
    )
    assert (
        clock(sla(after(minutes=11, seconds=15), reported(MON, "P1")), "response")["status"]
        == "at_risk"
    )


def test_paused_comes_before_at_risk(sla) -> None:
    # workaround 2 h: 1 h 45 min counted (≥ 75 %) and now paused
    view = sla(after(hours=2), reported(MON, "P1"), awaiting(after(hours=1, minutes=45)))
    assert clock(view, "workaround")["status"] == "paused"
    assert clock(view, "workaround")["elapsed_s"] == 105 * MIN


def test_the_threshold_comes_from_the_contract(contracts: Contracts, history) -> None:
    strict = contracts_from(
        CONTRACTS_TOML.replace("at_risk_threshold = 0.75", "at_risk_threshold = 0.5")
    )
    events = history(reported(MON, "P1"))
    view = incident_sla(events, strict, after(minutes=7, seconds=30))
    assert view is not None
    assert clock(view, "response")["status"] == "at_risk"
    default = incident_sla(events, contracts, after(minutes=7, seconds=30))
    assert default is not None
    assert clock(default, "response")["status"] == "running"


def test_metrics_without_a_target_are_not_applicable(sla) -> None:
    view = sla(after(hours=1), reported(MON, "P4"))
    assert clock(view, "workaround")["status"] == "not_applicable"
    assert clock(view, "resolution")["status"] == "not_applicable"
    assert clock(view, "response")["status"] == "running"


# -- exclusions (clocks.md#exclusions) -------------------------------------------------------------


@pytest.mark.parametrize("cause", ["customer", "third_party", "force_majeure", "maintenance"])
def test_a_resolution_caused_outside_the_vendor_excludes_the_incident(sla, cause) -> None:
    view = sla(after(hours=8), reported(MON, "P1"), resolved(after(hours=6), cause))
    assert view.as_json()["excluded"] is True
    assert clock(view, "resolution")["status"] == "breached"  # shown, just not counted


@pytest.mark.parametrize("cause", ["vendor", None])
def test_a_vendor_resolution_does_not_exclude_the_incident(sla, cause) -> None:
    view = sla(after(hours=2), reported(MON, "P1"), resolved(after(hours=1), cause))
    assert view.as_json()["excluded"] is False


def test_an_open_incident_is_not_excluded(sla) -> None:
    assert sla(after(hours=1), reported(MON, "P1")).as_json()["excluded"] is False


def test_a_reopened_incident_is_no_longer_excluded(sla) -> None:
    facts = [reported(MON, "P1"), resolved(after(hours=1), "customer"), reopened(after(hours=2))]
    assert sla(after(hours=1, minutes=30), *facts).as_json()["excluded"] is True
    assert sla(after(hours=3), *facts).as_json()["excluded"] is False


# -- as_of -----------------------------------------------------------------------------------------


def test_an_event_after_as_of_is_ignored(sla) -> None:
    facts = [reported(MON, "P1"), ack(after(minutes=10)), resolved(after(hours=1))]
    view = sla(after(minutes=5), *facts)
    assert view.as_json()["state"] == "open"
    assert clock(view, "response") == {
        "status": "running",
        "target_s": 15 * MIN,
        "elapsed_s": 5 * MIN,
        "due_at": z(after(minutes=15)),
        "stopped_at": None,
    }


def test_an_event_exactly_at_as_of_counts(sla) -> None:
    view = sla(after(minutes=10), reported(MON, "P1"), ack(after(minutes=10)))
    assert clock(view, "response")["status"] == "met"


def test_an_incident_reported_after_as_of_does_not_exist_yet(contracts, history) -> None:
    assert incident_sla(history(reported(MON, "P1")), contracts, after(seconds=-1)) is None


def test_a_past_answer_does_not_change_when_history_grows(contracts, history) -> None:
    early = history(reported(MON, "P1"), ack(after(minutes=20)))
    full = history(reported(MON, "P1"), ack(after(minutes=20)), resolved(after(hours=2)))
    as_of = after(hours=1)
    assert (
        incident_sla(early, contracts, as_of).as_json()
        == incident_sla(full, contracts, as_of).as_json()
    )


# -- explanations (clocks.md#explanations) ---------------------------------------------------------


def test_explain_lists_counted_intervals_calendar_and_priority(sla) -> None:
    view = sla(utc(2026, 3, 2, 12, 30), reported(utc(2026, 3, 2, 10), "P3"))
    response = view.explain()["metrics"]["response"]
    assert response["calendar"] == "office"
    assert response["priority"] == "P3"
    assert response["started_at"] == "2026-03-02T10:00:00Z"
    assert response["counted_intervals"] == [
        ["2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"],
        ["2026-03-02T12:00:00Z", "2026-03-02T12:30:00Z"],
    ]
    assert response["pauses"] == []
    assert response["elapsed_s"] == 90 * MIN


def test_explain_lists_the_pauses(sla) -> None:
    view = sla(
        after(hours=3),
        reported(MON, "P1"), awaiting(after(minutes=30)), responded(after(hours=1)),
        awaiting(after(hours=2)),
    )  # fmt: skip
    resolution = view.explain()["metrics"]["resolution"]
    assert resolution["pauses"] == [
        [z(after(minutes=30)), z(after(hours=1))],
        [z(after(hours=2)), None],
    ]
    assert resolution["counted_intervals"] == [
        [z(MON), z(after(minutes=30))],
        [z(after(hours=1)), z(after(hours=2))],
    ]
    assert resolution["calendar"] == "always"
    assert view.explain()["metrics"]["response"]["pauses"] == []


def test_explain_shows_the_priority_changes_in_utc(sla) -> None:
    view = sla(after(hours=1), reported(MON, "P3"), triaged(after(minutes=5), "P2"))
    explained = view.explain()
    assert explained["priority_changes"] == [{"at": z(after(minutes=5)), "priority": "P2"}]
    assert explained["metrics"]["response"]["priority"] == "P2"
    assert explained["metrics"]["response"]["calendar"] == "always"


# -- the JSON shape (commands.md#sla) --------------------------------------------------------------

RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def test_the_sla_json_has_the_documented_shape(sla) -> None:
    view = sla(
        after(hours=2),
        reported(MON, "P1"), triaged(after(minutes=3), "P2"), ack(after(minutes=10)),
        awaiting(after(minutes=30)),
    )  # fmt: skip
    document = json.loads(json.dumps(view.as_json()))
    assert set(document) == {
        "incident_id", "customer", "tier", "priority", "claimed_priority", "state",
        "excluded", "escalation_level", "metrics",
    }  # fmt: skip
    assert document["incident_id"] == "INC-1"
    assert document["customer"] == "acme"
    assert document["tier"] == "gold"
    assert (document["priority"], document["claimed_priority"]) == ("P2", "P1")
    assert document["state"] == "awaiting_customer"
    assert document["excluded"] is False
    assert document["escalation_level"] in (1, 2, 3, 4)
    assert list(document["metrics"]) == ["response", "workaround", "resolution", "postmortem"]
    for metric in document["metrics"].values():
        assert set(metric) == {"status", "target_s", "elapsed_s", "due_at", "stopped_at"}
        for key in ("target_s", "elapsed_s"):
            value = metric[key]
            assert value is None or (type(value) in (int, float)), (key, value)
        for key in ("due_at", "stopped_at"):
            assert metric[key] is None or RFC3339_Z.match(metric[key]), (key, metric[key])
    assert document["metrics"]["response"] == {
        "status": "met",
        "target_s": 3600,
        "elapsed_s": 600,
        "due_at": z(after(hours=1)),
        "stopped_at": z(after(minutes=10)),
    }
    assert document["metrics"]["workaround"]["due_at"] is None
    assert document["metrics"]["postmortem"]["status"] == "not_applicable"


def test_instants_with_fractions_of_a_second_are_rfc3339_utc(sla) -> None:
    view = sla(after(hours=1), reported(MON, "P1"), ack(after(minutes=1, microseconds=250_000)))
    assert clock(view, "response")["stopped_at"] == "2026-03-02T09:01:00.250000Z"


def test_the_sla_view_orders_incidents_by_report_time_and_filters_by_customer(
    contracts, history
) -> None:
    histories = [
        history(reported(after(hours=1), "P2"), incident_id="B"),
        history(reported(MON, "P3", customer="dayco"), incident_id="A"),
        history(reported(after(hours=3), "P1"), incident_id="C"),
    ]
    view = sla_view(histories, contracts, after(hours=2))
    assert [s.incident_id for s in view] == ["A", "B"]
    only = sla_view(histories, contracts, after(hours=4), customer="acme")
    assert [s.incident_id for s in only] == ["B", "C"]


def test_evaluate_gives_all_four_clocks_for_a_timeline(contracts, history) -> None:
    timeline = build_timeline(history(reported(MON, "P1")), after(minutes=1))
    assert timeline is not None
    clocks = evaluate(timeline, contracts)
    assert list(clocks.clocks) == list(Metric)
    assert clocks.tier == "gold"
