"""Escalation policy over scripted timelines (reference/clocks.md, docs/escalation.md).

Contract (tests/builders.py): acme is gold — P1 24x7 15m/2h/4h, P2 24x7 1h/-/8h, P3 office
4h/8h/24h, P4 office 8h. `office` is Berlin Mon–Fri 09:00–12:00 + 13:00–17:30, 4 March 2026 off.
In early March 2026 Berlin is UTC+1.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from slatrail.domain.contracts import ContractsError
from slatrail.domain.escalation import CrossingKind
from slatrail.domain.model import IncidentEvent
from slatrail.domain.timeline import build_timeline
from slatrail.projections.escalation import (
    FAR_FUTURE,
    PlannedAlert,
    escalation_level,
    escalation_state,
    escalations_view,
    planned_alerts,
)
from slatrail.projections.sla import sla_view
from tests.builders import CONTRACTS_TOML, contracts_from, record_history, reported_data, utc

CONTRACTS = contracts_from()
MON = utc(2026, 3, 2, 8)  # Monday 09:00 in Berlin
US = timedelta(microseconds=1)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)


def history(
    *facts: tuple[str, datetime, dict[str, Any]], contracts: Any = CONTRACTS
) -> list[IncidentEvent]:
    return record_history(list(facts), contracts, now=max(at for _, at, _ in facts))


def reported(
    at: datetime, priority: str = "P2", **extra: Any
) -> tuple[str, datetime, dict[str, Any]]:
    return ("reported", at, reported_data(priority=priority, **extra))


def level(events: list[IncidentEvent], at: datetime, contracts: Any = CONTRACTS) -> int:
    return escalation_level(events, contracts, at).level


def steps(events: list[IncidentEvent], as_of: datetime) -> list[tuple[datetime, int, str]]:
    state = escalation_state(events, CONTRACTS, as_of)
    assert state is not None
    return [(s.at, s.level, s.why) for s in state.steps]


def plan(events: list[IncidentEvent]) -> list[tuple[str, datetime]]:
    return [(a.key, a.at) for a in alerts(events)]


def alerts(events: list[IncidentEvent], contracts: Any = CONTRACTS) -> list[PlannedAlert]:
    timeline = build_timeline(events, FAR_FUTURE)
    assert timeline is not None
    return planned_alerts(timeline, contracts)


# -- thresholds of a running clock --------------------------------------------------------


def test_a_running_clock_escalates_when_at_risk_breached_and_overrun() -> None:
    events = history(reported(MON, "P2"))  # response 1h, resolution 8h, 24x7
    assert steps(events, MON + 3 * H) == [
        (MON + 45 * MIN, 2, "response at risk"),
        (MON + 1 * H, 3, "response breached"),
        (MON + 2 * H, 4, "response over 2x target"),
    ]


def test_at_risk_holds_at_its_instant_and_a_breach_from_just_after_the_due_time() -> None:
    events = history(reported(MON, "P2"))
    assert level(events, MON + 45 * MIN - US) == 1
    assert level(events, MON + 45 * MIN) == 2  # counted = 75 % of the target: at risk
    assert level(events, MON + 1 * H) == 2  # counted = the target: not yet breached
    assert level(events, MON + 1 * H + US) == 3  # counted > target
    assert level(events, MON + 2 * H) == 4  # counted = 200 %


def test_the_history_says_which_clock_which_threshold_and_which_target() -> None:
    events = history(reported(MON, "P2"))
    state = escalation_state(events, CONTRACTS, MON + 3 * H)
    assert state is not None
    document = state.as_json()
    assert document["level"] == 4 and document["level_name"] == "management"
    assert document["reason"] == "response over 2x target"
    breach = document["history"][1]
    assert breach["at"] == "2026-03-02T09:00:00Z"
    assert breach["cause"]["metric"] == "response" and breach["cause"]["kind"] == "breached"
    assert breach["cause"]["from_just_after"] is True
    assert breach["cause"]["priority"] == "P2" and breach["cause"]["target_s"] == 3600
    assert breach["detail"] == (
        "response clock: counted exceeded the 1h target; P2 target, calendar always"
    )
    assert document["history"][0]["detail"] == (
        "response clock: counted reached 45m (75% of 1h); P2 target, calendar always"
    )


def test_a_met_clock_never_escalates() -> None:
    events = history(
        reported(MON, "P2"),
        ("acknowledged", MON + 30 * MIN, {}),
        ("resolved", MON + 2 * H, {"resolution": "fixed"}),
    )
    assert steps(events, MON + 30 * 24 * H) == []
    assert level(events, MON + 30 * 24 * H) == 1


def test_a_clock_stopped_exactly_at_its_target_is_met_and_not_breached() -> None:
    events = history(reported(MON, "P2"), ("acknowledged", MON + 1 * H, {}))
    assert [(at, lvl) for at, lvl, _ in steps(events, MON + 5 * H)] == [
        (MON + 45 * MIN, 2),
        # the resolution clock (8h) takes over later: at risk at 6h, breached after 8h
    ]


# -- priority changes ---------------------------------------------------------------------


def test_a_priority_upgrade_can_breach_a_running_clock_at_the_instant_of_the_change() -> None:
    events = history(
        reported(MON, "P3"),  # office calendar: 30 min counted of a 4h response target
        ("priority_changed", MON + 30 * MIN, {"priority": "P1", "reason": "all users down"}),
    )
    assert level(events, MON + 30 * MIN - US) == 1
    state = escalation_state(events, CONTRACTS, MON + 31 * MIN)
    assert state is not None
    first = state.steps[0]
    assert (first.at, first.inclusive, first.level, first.why) == (
        MON + 30 * MIN, True, 4, "P1 response breached",
    )  # fmt: skip
    assert first.crossing is not None and first.crossing.kind is CrossingKind.BREACHED
    # The breach alert is due at the change itself: no at-risk alert, the clock skipped it.
    keys = dict(plan(events))
    assert keys["INC-1/response/breached/0"] == MON + 30 * MIN
    assert "INC-1/response/at_risk/0" not in keys
    assert keys["INC-1/escalated/4"] == MON + 30 * MIN


def test_an_upgrade_short_of_the_target_puts_the_clock_at_risk_at_once() -> None:
    events = history(
        reported(MON, "P3"),
        ("priority_changed", MON + 12 * MIN, {"priority": "P1", "reason": "worse"}),
    )
    assert steps(events, MON + 20 * MIN) == [
        (MON + 12 * MIN, 2, "response at risk"),  # 12 min ≥ 75 % of 15 min
        (MON + 15 * MIN, 4, "P1 response breached"),
    ]


def test_a_downgrade_never_lowers_the_level() -> None:
    events = history(
        reported(MON, "P2"),
        ("priority_changed", MON + 70 * MIN, {"priority": "P4", "reason": "minor after all"}),
    )
    assert level(events, MON + 69 * MIN) == 3
    # P4: 8h on the office calendar; counted since Monday 09:00 Berlin: 70 min + … < 8h
    assert level(events, MON + 71 * MIN) == 3
    assert level(events, MON + 8 * H) == 3


def test_a_stopped_clock_keeps_the_priority_it_stopped_with() -> None:
    events = history(
        reported(MON, "P3"),
        ("acknowledged", MON + 20 * MIN, {}),
        ("priority_changed", MON + 30 * MIN, {"priority": "P1", "reason": "worse"}),
    )
    # The response clock stopped at 20 min under P3 (met); P1 from 08:30 does not breach it.
    assert all(
        c.metric != "response" for c in escalation_state(events, CONTRACTS, MON + H).crossings
    )  # type: ignore[union-attr]


# -- pauses ---------------------------------------------------------------------------------


def test_a_pause_cancels_an_at_risk_alert_and_resuming_reschedules_it() -> None:
    opened = [
        reported(MON, "P1"),
        ("acknowledged", MON + 5 * MIN, {}),
    ]
    before = dict(plan(history(*opened)))
    assert before["INC-1/workaround/at_risk/0"] == MON + 90 * MIN  # 75 % of 2h
    paused = [*opened, ("awaiting_customer", MON + 80 * MIN, {"reason": "logs"})]
    assert "INC-1/workaround/at_risk/0" not in dict(plan(history(*paused)))
    resumed = [*paused, ("customer_responded", MON + 3 * H, {})]
    after = dict(plan(history(*resumed)))
    assert after["INC-1/workaround/at_risk/0"] == MON + 3 * H + 10 * MIN
    assert after["INC-1/workaround/breached/0"] == MON + 3 * H + 40 * MIN


def test_a_priority_change_during_a_pause_puts_the_clock_at_risk_when_it_resumes() -> None:
    events = history(
        reported(MON, "P2"),  # resolution 8h
        ("acknowledged", MON + 5 * MIN, {}),
        ("awaiting_customer", MON + 3 * H + 10 * MIN, {"reason": "logs"}),
        ("priority_changed", MON + 4 * H, {"priority": "P1", "reason": "worse"}),  # 4h target
        ("customer_responded", MON + 5 * H, {}),
    )
    keys = dict(plan(events))
    # 3h10 counted ≥ 75 % of 4h, but paused: at risk only once the clock runs again.
    assert keys["INC-1/resolution/at_risk/0"] == MON + 5 * H
    assert keys["INC-1/resolution/breached/0"] == MON + 5 * H + 50 * MIN


def test_a_breach_stays_a_breach_while_paused() -> None:
    events = history(
        reported(MON, "P2"),
        ("acknowledged", MON + 5 * MIN, {}),
        ("awaiting_customer", MON + 7 * H, {"reason": "logs"}),
        ("priority_changed", MON + 8 * H, {"priority": "P1", "reason": "worse"}),
    )
    # 7h counted > the P1 4h target: breached at the change, even though paused (and the
    # workaround clock, 7h of P1's 2h, too).
    assert steps(events, MON + 9 * H)[-1][:2] == (MON + 8 * H, 4)
    state = escalation_state(events, CONTRACTS, MON + 9 * H)
    assert state is not None
    assert {
        (c.metric, c.kind, c.at, c.inclusive) for c in state.crossings if c.at == MON + 8 * H
    } == {
        ("resolution", CrossingKind.BREACHED, MON + 8 * H, True),
        ("workaround", CrossingKind.BREACHED, MON + 8 * H, True),
        ("workaround", CrossingKind.OVERRUN, MON + 8 * H, True),
    }


# -- resolution, reopening, post-mortem -------------------------------------------------------


def test_a_reopened_incident_keeps_its_level_and_alerts_again_for_the_new_cycle() -> None:
    events = history(
        reported(MON, "P2"),
        ("acknowledged", MON + 10 * MIN, {}),
        ("resolved", MON + 9 * H, {"resolution": "fixed"}),
        ("reopened", MON + 10 * H, {"reason": "back again"}),
    )
    assert level(events, MON + 9 * H + 30 * MIN) == 3  # resolved: the level stays on record
    assert level(events, MON + 10 * H + 30 * MIN) == 3
    assert plan(events) == [
        ("INC-1/resolution/at_risk/0", MON + 6 * H),
        ("INC-1/escalated/2", MON + 6 * H),
        ("INC-1/resolution/breached/0", MON + 8 * H),
        ("INC-1/escalated/3", MON + 8 * H),
        # reopened with the clock already breached: alerted again, under cycle 1
        ("INC-1/resolution/breached/1", MON + 10 * H),
        # 9h counted before the resolution, 7h more after reopening: 16h = 200 %
        ("INC-1/escalated/4", MON + 17 * H),
    ]


def test_time_while_resolved_never_escalates_even_if_a_clock_runs_on() -> None:
    events = history(
        reported(MON, "P2"),
        ("resolved", MON + 20 * MIN, {"resolution": "fixed"}),  # never acknowledged
    )
    # The response clock keeps running (docs/decisions.md) but the incident is resolved.
    assert level(events, MON + 5 * H) == 1
    reopened = history(
        reported(MON, "P2"),
        ("resolved", MON + 20 * MIN, {"resolution": "fixed"}),
        ("reopened", MON + 5 * H, {"reason": "not fixed"}),
    )
    assert steps(reopened, MON + 5 * H) == [(MON + 5 * H, 4, "response over 2x target")]


def test_an_overdue_postmortem_escalates_a_resolved_incident() -> None:
    events = history(
        reported(MON, "P3", outage=True),
        ("acknowledged", MON + 30 * MIN, {}),
        ("resolved", MON + 2 * H, {"resolution": "fixed"}),
    )
    resolved = MON + 2 * H
    assert steps(events, resolved + 300 * H) == [
        (resolved + 90 * H, 2, "postmortem at risk"),
        (resolved + 120 * H, 3, "postmortem breached"),
        (resolved + 240 * H, 4, "postmortem over 2x target"),
    ]
    published = history(
        reported(MON, "P3", outage=True),
        ("acknowledged", MON + 30 * MIN, {}),
        ("resolved", MON + 2 * H, {"resolution": "fixed"}),
        (
            "postmortem_published",
            MON + 50 * H,
            {"summary": "s", "root_cause": "r", "action_items": []},
        ),
    )
    assert level(published, resolved + 300 * H) == 1


# -- manual escalation ----------------------------------------------------------------------


def test_a_manual_escalation_raises_the_level_to_at_least_its_level() -> None:
    events = history(
        reported(MON, "P2"),
        ("escalated", MON + 5 * MIN, {"level": 3, "reason": "customer asked"}),
        ("escalated", MON + 6 * MIN, {"level": 2, "reason": "less urgent"}),
    )
    assert steps(events, MON + 3 * H) == [
        (MON + 5 * MIN, 3, "manual escalation: customer asked"),
        (MON + 2 * H, 4, "response over 2x target"),
    ]
    state = escalation_state(events, CONTRACTS, MON + 10 * MIN)
    assert state is not None
    cause = state.as_json()["history"][0]["cause"]
    assert cause == {"manual": True, "position": 2, "level": 3, "reason": "customer asked"}
    assert dict(plan(events))["INC-1/escalated/3"] == MON + 5 * MIN


def test_manual_escalations_can_be_switched_off_in_the_contracts() -> None:
    contracts = contracts_from(CONTRACTS_TOML + "\n[escalation]\nmanual_override = false\n")
    events = history(
        reported(MON, "P2"),
        ("escalated", MON + 5 * MIN, {"level": 4, "reason": "customer asked"}),
        contracts=contracts,
    )
    assert level(events, MON + 10 * MIN, contracts) == 1


# -- business hours -------------------------------------------------------------------------


def test_an_alert_due_outside_working_hours_fires_when_the_clock_runs_again() -> None:
    # P3 on the office calendar, reported Monday 16:00 Berlin: 1.5h counted on Monday, then
    # the clock stands still until Tuesday 09:00; 75 % of 4h is reached Tuesday 10:30 Berlin.
    reported_at = utc(2026, 3, 2, 15)
    events = history(reported(reported_at, "P3"))
    keys = dict(plan(events))
    assert keys["INC-1/response/at_risk/0"] == utc(2026, 3, 3, 9, 30)
    assert level(events, utc(2026, 3, 3, 7, 59)) == 1  # nothing happens overnight


def test_a_holiday_moves_an_alert_to_the_next_working_day() -> None:
    events = history(reported(utc(2026, 3, 3, 15), "P3"))  # Tuesday 16:00; Wednesday is off
    assert dict(plan(events))["INC-1/response/at_risk/0"] == utc(2026, 3, 5, 9, 30)


def test_a_target_reached_at_closing_time_is_breached_when_work_resumes() -> None:
    # Monday 13:30 Berlin + 4h = 17:30, closing time: due_at, but counted = target all night.
    events = history(reported(utc(2026, 3, 2, 12, 30), "P3"))
    due = utc(2026, 3, 2, 16, 30)
    sla = sla_view([events], CONTRACTS, due + 3 * H)[0]
    assert sla.clocks.clocks["response"].due_at == due  # type: ignore[index]
    assert str(sla.clocks.clocks["response"].status) == "at_risk"  # type: ignore[index]
    assert level(events, due + 3 * H) == 2
    morning = utc(2026, 3, 3, 8)  # Tuesday 09:00 Berlin
    assert level(events, morning) == 2
    assert level(events, morning + US) == 3
    assert dict(plan(events))["INC-1/response/breached/0"] == morning


# -- the contracts' policy --------------------------------------------------------------------


def test_levels_and_clocks_are_configurable() -> None:
    contracts = contracts_from(
        CONTRACTS_TOML
        + "\n[escalation]\nat_risk_level = 1\nbreached_level = 2\noverrun_level = 3\n"
        'p1_breached_level = 3\noverrun_ratio = 3.0\nmetrics = ["resolution"]\n'
    )
    events = history(reported(MON, "P2"), contracts=contracts)
    state = escalation_state(events, contracts, MON + 30 * H)
    assert state is not None
    assert [(s.at, s.level, s.why) for s in state.steps] == [
        (MON + 8 * H, 2, "resolution breached"),
        (MON + 24 * H, 3, "resolution over 3x target"),
    ]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("breached_level = 1", "breached_level (1) must not be below at_risk_level (2)"),
        ("overrun_level = 2", "overrun_level (2) must not be below breached_level (3)"),
        ("p1_breached_level = 2", "p1_breached_level (2) must not be below breached_level (3)"),
        ("at_risk_level = 5", "escalation.at_risk_level: Input should be less than or equal to 4"),
        ("overrun_ratio = 1.0", "escalation.overrun_ratio: Input should be greater than 1"),
        ('metrics = ["uptime"]', "escalation.metrics.0: Input should be 'response'"),
        ('metrics = ["response", "response"]', "metrics lists a clock twice"),
        ("manual = true", "escalation.manual: Extra inputs are not permitted"),
        ('level_names = ["a", "b"]', "escalation.level_names: List should have at least 4 items"),
    ],
)
def test_an_invalid_policy_is_refused_with_a_clear_error(section: str, message: str) -> None:
    with pytest.raises(ContractsError) as error:
        contracts_from(CONTRACTS_TOML + f"\n[escalation]\n{section}\n", "c.toml")
    assert message in str(error.value)
    assert str(error.value).startswith("c.toml: escalation")


def test_the_shipped_sample_states_the_spec_defaults() -> None:
    from slatrail.infra.bootstrap import read_contracts

    policy = read_contracts(None).escalation
    assert (policy.at_risk_level, policy.breached_level, policy.overrun_level) == (2, 3, 4)
    assert (policy.overrun_ratio, policy.p1_breached_level, policy.manual_override) == (
        2.0,
        4,
        True,
    )
    assert policy.metrics == ["response", "workaround", "resolution", "postmortem"]


# -- views ---------------------------------------------------------------------------------


def test_sla_json_carries_the_escalation_level() -> None:
    events = history(reported(MON, "P2"))
    document = sla_view([events], CONTRACTS, MON + 70 * MIN)[0].as_json()
    assert document["escalation_level"] == 3


def test_the_escalations_view_lists_open_incidents_by_level_then_by_how_long() -> None:
    a = record_history([reported(MON, "P2")], CONTRACTS, incident_id="A")
    b = record_history([reported(MON + 10 * MIN, "P2")], CONTRACTS, incident_id="B")
    c = record_history([reported(MON - 5 * MIN, "P2")], CONTRACTS, incident_id="C")
    done = record_history(
        [reported(MON, "P2"), ("resolved", MON + 80 * MIN, {"resolution": "fixed"})],
        CONTRACTS,
        incident_id="D",
        now=MON + 80 * MIN,
    )
    as_of = MON + 65 * MIN
    view = escalations_view([a, b, c, done], CONTRACTS, as_of)
    # D is still open at 09:05; A and D reached level 3 at the same instant
    assert [(s.incident_id, s.level) for s in view] == [("C", 3), ("A", 3), ("D", 3), ("B", 2)]
    assert [s.incident_id for s in escalations_view([a, b, c], CONTRACTS, as_of, level=2)] == ["B"]
    later = MON + 3 * H
    assert [s.incident_id for s in escalations_view([a, done], CONTRACTS, later)] == ["A"]
    everything = escalations_view([a, done], CONTRACTS, later, include_resolved=True)
    assert [(s.incident_id, s.level) for s in everything] == [("A", 4), ("D", 3)]


def test_alert_keys_are_stable_when_unrelated_events_arrive() -> None:
    base = [reported(MON, "P2")]
    first = {a.key: a.at for a in alerts(history(*base))}
    more = {
        a.key: a.at
        for a in alerts(
            history(*base, ("escalated", MON + 10 * MIN, {"level": 1, "reason": "fyi"}))
        )
    }
    assert first == more
