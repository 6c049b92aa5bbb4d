"""Monthly service reports (docs/reference/commands.md#report, docs/reports.md)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

import pytest

from slatrail.domain.contracts import Contracts, load_contracts
from slatrail.domain.model import Priority
from slatrail.infra.commands.report import render_csv, render_table
from slatrail.infra.render import to_json
from slatrail.infra.report_html import render_html
from slatrail.projections.availability import Month
from slatrail.projections.report import dispute_outcome, monthly_reports
from tests.builders import REPORT_CONTRACTS, IncidentFactory, instant

OCTOBER = Month(2026, 10)
BERLIN_MONTH_END = "2026-10-31T23:00:00Z"  # Nov 1 00:00 CET


@pytest.fixture
def contracts() -> Contracts:
    return load_contracts(REPORT_CONTRACTS, "<test contracts>")


@pytest.fixture
def incidents(contracts: Contracts) -> IncidentFactory:
    return IncidentFactory(contracts)


def report_of(
    incidents: IncidentFactory,
    contracts: Contracts,
    customer: str = "berlin",
    as_of: str = BERLIN_MONTH_END,
    month: Month = OCTOBER,
    **options: Any,
) -> dict[str, Any]:
    (report,) = monthly_reports(
        incidents.histories(), contracts, [month], instant(as_of), customer=customer, **options
    )
    return report


def scenario(incidents: IncidentFactory) -> IncidentFactory:
    """Seven incidents of the Berlin customer, whose figures are worked out by hand below."""
    f = incidents
    # September: one P2, met and met.
    f.report("B-0", "2026-09-15T10:00:00Z", customer="berlin", priority="P2", title="Login slow")
    f.then("B-0", "triaged", "2026-09-15T10:05:00Z", priority="P2")
    f.then("B-0", "acknowledged", "2026-09-15T10:30:00Z")
    f.then("B-0", "resolved", "2026-09-15T12:00:00Z")
    # B-1 P1 outage, all met; down 07:50–09:20 (90 min) until the restoring workaround.
    f.report("B-1", "2026-10-05T08:00:00Z", customer="berlin", priority="P1", outage=True,
             impact_started_at="2026-10-05T07:50:00Z", title="All calls fail")  # fmt: skip
    f.then("B-1", "triaged", "2026-10-05T08:05:00Z", priority="P1")
    f.then("B-1", "acknowledged", "2026-10-05T08:10:00Z")  # 10 min of 15
    f.then("B-1", "workaround_provided", "2026-10-05T09:20:00Z")  # 80 min of 2 h
    f.then("B-1", "resolved", "2026-10-05T10:30:00Z")  # 2 h 30 of 4 h
    f.then("B-1", "postmortem_published", "2026-10-07T08:00:00Z")  # 45 h 30 of 120 h
    # B-2 claimed P1, triaged P2 (dispute, triage upheld); response breached: 90 min of 1 h.
    f.report("B-2", "2026-10-12T10:00:00Z", customer="berlin", priority="P1", title="Echo")
    f.then("B-2", "triaged", "2026-10-12T10:10:00Z", priority="P2")
    f.then("B-2", "acknowledged", "2026-10-12T11:30:00Z")
    f.then("B-2", "resolved", "2026-10-12T15:00:00Z")  # 5 h of 8 h
    # B-3 P3 on Berlin business hours (09–17, CEST = UTC+2), reported Friday 16:00 local.
    f.report("B-3", "2026-10-16T14:00:00Z", customer="berlin", priority="P3", title="Blurry")
    f.then("B-3", "triaged", "2026-10-16T14:05:00Z", priority="P3")
    f.then("B-3", "acknowledged", "2026-10-19T08:00:00Z")  # Fri 16–17 + Mon 09–10: 2 h of 4 h
    f.then("B-3", "escalated", "2026-10-19T08:30:00Z", level=2, reason="customer asked")
    f.then("B-3", "awaiting_customer", "2026-10-19T09:00:00Z")  # Mon 11:00 local
    f.then("B-3", "customer_responded", "2026-10-20T07:00:00Z")  # Tue 09:00 local
    f.then("B-3", "resolved", "2026-10-20T10:00:00Z")  # 1 h + 2 h + 3 h = 6 h of 24 h
    # B-4 breached twice but resolved with cause "customer": excluded.
    f.report("B-4", "2026-10-20T08:00:00Z", customer="berlin", priority="P2", title="Crash")
    f.then("B-4", "triaged", "2026-10-20T08:05:00Z", priority="P2")
    f.then("B-4", "acknowledged", "2026-10-20T09:50:00Z")
    f.then("B-4", "resolved", "2026-10-20T20:00:00Z", cause="customer")
    # B-5 an outage resolved as maintenance: excluded, its downtime not counted.
    f.report("B-5", "2026-10-22T06:00:00Z", customer="berlin", priority="P2", outage=True,
             title="Planned upgrade ran over")  # fmt: skip
    f.then("B-5", "triaged", "2026-10-22T06:01:00Z", priority="P2")
    f.then("B-5", "acknowledged", "2026-10-22T06:30:00Z")
    f.then("B-5", "resolved", "2026-10-22T07:00:00Z", cause="maintenance",
           service_restored_at="2026-10-22T06:50:00Z")  # fmt: skip
    f.then("B-5", "postmortem_published", "2026-10-23T07:00:00Z")
    # B-6 P4 reported Friday 11:00 CET, never acknowledged: 6 h of 8 h at month end (at risk).
    f.report("B-6", "2026-10-30T10:00:00Z", customer="berlin", priority="P4", title="Question")
    # Another customer's incident stays out of this report.
    f.report("S-1", "2026-10-05T08:00:00Z", customer="shanghai", priority="P1", outage=True)
    return f


EXPECTED_OCTOBER: dict[str, Any] = {
    "customer": "berlin",
    "customer_name": "Berlin Bikes GmbH",
    "tier": "gold",
    "month": "2026-10",
    "timezone": "Europe/Berlin",
    "period": {"start": "2026-09-30T22:00:00Z", "end": "2026-10-31T23:00:00Z"},
    "as_of": "2026-10-31T23:00:00Z",
    "as_known_at": None,
    "final": False,  # B-6's response clock is still running
    "incidents": {
        "total": 6,
        "by_priority": {"P1": 1, "P2": 3, "P3": 1, "P4": 1},
        "open": 1,
        "excluded": 2,
        "outages": 2,
    },
    "metrics": {
        "response": {"met": 2, "breached": 1, "attainment": 0.6667, "running": 1},
        "workaround": {"met": 1, "breached": 0, "attainment": 1.0, "running": 0},
        "resolution": {"met": 3, "breached": 0, "attainment": 1.0, "running": 0},
        "postmortem": {"met": 1, "breached": 0, "attainment": 1.0, "running": 0},
    },
    # B-1, B-2, B-3: wall 600 + 5400 + 237600 (Fri 14:00Z to Mon 08:00Z); counted 600 + 5400 + 7200
    "mtta_s": 81200.0,
    "mtta_counted_s": 4400.0,
    # wall 9000 + 18000 + 331200 (Fri 14:00Z to Tue 10:00Z); counted 9000 + 18000 + 21600
    "mttr_s": 119400.0,
    "mttr_counted_s": 16200.0,
    "mttr_by_priority": {
        "P1": {"resolved": 1, "mttr_s": 9000.0, "mttr_counted_s": 9000.0},
        "P2": {"resolved": 1, "mttr_s": 18000.0, "mttr_counted_s": 18000.0},
        "P3": {"resolved": 1, "mttr_s": 331200.0, "mttr_counted_s": 21600.0},
        "P4": {"resolved": 0, "mttr_s": None, "mttr_counted_s": None},
    },
    "disputes": {
        "total": 1,
        "by_outcome": {"claimed_accepted": 0, "triage_upheld": 1, "changed": 0},
        "items": [
            {
                "incident_id": "B-2",
                "title": "Echo",
                "claimed": "P1",
                "triaged": "P2",
                "final": "P2",
                "outcome": "triage_upheld",
            }
        ],
    },
    "escalations": {
        "by_level": {"1": 2, "2": 2, "3": 2, "4": 0},
        "escalated": 4,
        "manual": 1,
        "items": [
            {"incident_id": "B-2", "level": 3, "reason": "response breached"},
            {"incident_id": "B-3", "level": 2, "reason": "manual escalation: customer asked"},
            {"incident_id": "B-4", "level": 3, "reason": "response breached"},
            {"incident_id": "B-6", "level": 2, "reason": "response at risk"},
        ],
    },
    "postmortems": {
        "required": 1,
        "published": 1,
        "on_time": 1,
        "late": 0,
        "overdue": 0,
        "not_yet_due": 0,
        "compliance": 1.0,
    },
    "availability": {
        "target": 99.9,
        "percent": 99.7986,  # 100 × (1 − 5400 / 2 682 000) = 99.79865…, truncated
        "downtime_s": 5400.0,
        "allowance_s": 2682.0,
        "credit_percent": 10.0,
        "month_s": 2682000.0,  # 745 h: summer time ended on Oct 25
        "timezone": "Europe/Berlin",
        "complete": True,
        "outages": [
            {
                "incident_id": "B-1",
                "title": "All calls fail",
                "start": "2026-10-05T07:50:00Z",
                "end": "2026-10-05T09:20:00Z",
                "ongoing": False,
                "excluded": False,
                "cause": "vendor",
                "seconds_in_month": 5400.0,
            },
            {
                "incident_id": "B-5",
                "title": "Planned upgrade ran over",
                "start": "2026-10-22T06:00:00Z",
                "end": "2026-10-22T06:50:00Z",
                "ongoing": False,
                "excluded": True,
                "cause": "maintenance",
                "seconds_in_month": 3000.0,
            },
        ],
    },
    "breaches": [
        {
            "incident_id": "B-2",
            "title": "Echo",
            "metric": "response",
            "priority": "P2",
            "calendar": "always",
            "target_s": 3600,
            "elapsed_s": 5400.0,
            "overrun_s": 1800.0,
            "due_at": "2026-10-12T11:00:00Z",
            "stopped_at": "2026-10-12T11:30:00Z",
            "explanation": "Response clock at P2 on calendar 'always': 1h30m counted against a "
            "target of 1h, 30m over; it was due at 2026-10-12T11:00:00Z and stopped at "
            "2026-10-12T11:30:00Z.",
        }
    ],
    "excluded": [
        {"incident_id": "B-4", "title": "Crash", "cause": "customer"},
        {"incident_id": "B-5", "title": "Planned upgrade ran over", "cause": "maintenance"},
    ],
    "trend": [
        {
            "month": month,
            "incidents": 0,
            "attainment": {
                "response": None,
                "workaround": None,
                "resolution": None,
                "postmortem": None,
            },
            "breached": 0,
            "mtta_s": None,
            "mttr_s": None,
            "availability_percent": 100.0,
            "downtime_s": 0.0,
            "credit_percent": 0.0,
        }
        for month in ("2026-07", "2026-08")
    ]
    + [
        {
            "month": "2026-09",
            "incidents": 1,
            "attainment": {
                "response": 1.0,
                "workaround": None,
                "resolution": 1.0,
                "postmortem": None,
            },
            "breached": 0,
            "mtta_s": 1800.0,
            "mttr_s": 7200.0,
            "availability_percent": 100.0,
            "downtime_s": 0.0,
            "credit_percent": 0.0,
        }
    ],
}


def test_the_json_report_of_a_hand_computed_month_has_exactly_the_expected_figures(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    report = report_of(scenario(incidents), contracts)
    assert json.loads(to_json(report)) == EXPECTED_OCTOBER


def test_every_contracted_customer_gets_a_report_even_without_incidents(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    reports = monthly_reports(
        scenario(incidents).histories(), contracts, [OCTOBER, Month(2026, 9)],
        instant(BERLIN_MONTH_END),
    )  # fmt: skip
    assert [(r["customer"], r["month"]) for r in reports] == [
        ("berlin", "2026-09"), ("berlin", "2026-10"), ("bizcal", "2026-09"),
        ("bizcal", "2026-10"), ("shanghai", "2026-09"), ("shanghai", "2026-10"),
        ("utc-co", "2026-09"), ("utc-co", "2026-10"),
    ]  # fmt: skip
    bizcal = reports[3]
    assert bizcal["incidents"]["total"] == 0
    assert bizcal["metrics"]["response"] == {
        "met": 0, "breached": 0, "attainment": None, "running": 0,
    }  # fmt: skip
    assert (bizcal["mtta_s"], bizcal["availability"]["percent"]) == (None, 100.0)


def test_attainment_leaves_out_excluded_incidents_and_unbreached_running_clocks(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    f = incidents
    f.report("met", "2026-10-05T08:00:00Z", customer="utc-co", priority="P2")
    f.then("met", "acknowledged", "2026-10-05T08:30:00Z")
    f.report("late", "2026-10-06T08:00:00Z", customer="utc-co", priority="P2")
    f.then("late", "acknowledged", "2026-10-06T10:00:00Z")
    f.report("excused", "2026-10-07T08:00:00Z", customer="utc-co", priority="P2")
    f.then("excused", "acknowledged", "2026-10-07T12:00:00Z")
    f.then("excused", "resolved", "2026-10-07T13:00:00Z", cause="third_party")
    f.report("running", "2026-10-31T23:30:00Z", customer="utc-co", priority="P2")  # 30 min of 1 h
    f.report("overdue", "2026-10-31T20:00:00Z", customer="utc-co", priority="P2")  # 4 h of 1 h

    report = report_of(f, contracts, customer="utc-co", as_of="2026-11-01T00:00:00Z")

    assert report["metrics"]["response"] == {
        "met": 1, "breached": 2, "attainment": 0.3333, "running": 1,
    }  # fmt: skip
    assert report["incidents"]["excluded"] == 1
    response_breaches = [b for b in report["breaches"] if b["metric"] == "response"]
    assert [b["incident_id"] for b in response_breaches] == ["late", "overdue"]
    overdue = response_breaches[-1]
    assert overdue["stopped_at"] is None
    assert overdue["explanation"].endswith("and is still running.")


def test_an_incident_belongs_to_the_month_it_was_reported_in_the_customers_zone(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    # 23:30 UTC on Sep 30 is already October in Berlin (and in Shanghai), still September in UTC.
    for customer in ("berlin", "utc-co"):
        incidents.report(f"{customer}-1", "2026-09-30T23:30:00Z", customer=customer, priority="P2")
    as_of = "2026-11-01T00:00:00Z"
    assert report_of(incidents, contracts, "berlin", as_of)["incidents"]["total"] == 1
    assert report_of(incidents, contracts, "utc-co", as_of)["incidents"]["total"] == 0
    september = report_of(incidents, contracts, "utc-co", as_of, month=Month(2026, 9))
    assert september["incidents"]["total"] == 1


def test_clocks_of_the_month_are_evaluated_as_of_the_report_so_late_resolutions_count(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    incidents.report("L", "2026-10-31T22:00:00Z", customer="utc-co", priority="P2")
    incidents.then("L", "acknowledged", "2026-10-31T22:30:00Z")
    incidents.then("L", "resolved", "2026-11-01T02:00:00Z")

    at_month_end = report_of(incidents, contracts, "utc-co", "2026-11-01T00:00:00Z")
    later = report_of(incidents, contracts, "utc-co", "2026-11-03T00:00:00Z")

    assert at_month_end["metrics"]["resolution"]["running"] == 1
    assert not at_month_end["final"]
    assert later["metrics"]["resolution"] == {
        "met": 1, "breached": 0, "attainment": 1.0, "running": 0,
    }  # fmt: skip
    assert later["final"]
    assert later["mttr_s"] == 4 * 3600


def test_as_known_at_reproduces_the_report_as_it_could_be_issued_then(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    incidents.report("K", "2026-10-10T08:00:00Z", customer="utc-co", priority="P2")
    incidents.then("K", "acknowledged", "2026-10-10T08:30:00Z", recorded_at="2026-11-02T00:00:00Z")

    now = report_of(incidents, contracts, "utc-co", "2026-11-05T00:00:00Z")
    then = report_of(
        incidents, contracts, "utc-co", "2026-11-05T00:00:00Z",
        as_known_at=instant("2026-11-01T00:00:00Z"),
    )  # fmt: skip

    assert now["metrics"]["response"]["met"] == 1
    assert then["metrics"]["response"]["breached"] == 1
    assert then["as_known_at"] == "2026-11-01T00:00:00Z"


def test_incidents_are_counted_under_the_priority_in_effect_at_their_resolution(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    f = incidents
    f.report("up", "2026-10-05T08:00:00Z", customer="utc-co", priority="P2")
    f.then("up", "triaged", "2026-10-05T08:05:00Z", priority="P2")
    f.then("up", "priority_changed", "2026-10-05T09:00:00Z", priority="P1")
    f.then("up", "resolved", "2026-10-05T10:00:00Z")
    f.report("open", "2026-10-06T08:00:00Z", customer="utc-co", priority="P1")
    f.then("open", "triaged", "2026-10-06T08:05:00Z", priority="P2")

    report = report_of(f, contracts, "utc-co", "2026-10-06T09:00:00Z")

    assert report["incidents"]["by_priority"] == {"P1": 1, "P2": 1, "P3": 0, "P4": 0}
    assert report["mttr_by_priority"]["P1"]["resolved"] == 1


def test_a_dispute_ends_with_the_customers_claim_the_triage_or_another_priority() -> None:
    p1, p2, p3 = Priority.P1, Priority.P2, Priority.P3
    assert dispute_outcome(claimed=p1, triaged=p2, final=p1) == "claimed_accepted"
    assert dispute_outcome(claimed=p1, triaged=p2, final=p2) == "triage_upheld"
    assert dispute_outcome(claimed=p1, triaged=p2, final=p3) == "changed"


def test_a_dispute_in_which_the_vendor_came_round_to_the_customers_priority(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    incidents.report("D", "2026-10-05T08:00:00Z", customer="utc-co", priority="P1")
    incidents.then("D", "triaged", "2026-10-05T08:05:00Z", priority="P2")
    incidents.then("D", "priority_changed", "2026-10-05T09:00:00Z", priority="P1")

    disputes = report_of(incidents, contracts, "utc-co", "2026-10-06T00:00:00Z")["disputes"]

    assert disputes["by_outcome"]["claimed_accepted"] == 1
    assert disputes["items"][0]["final"] == "P1"


def test_postmortems_are_counted_on_time_late_overdue_or_not_yet_due(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    f = incidents
    for name, resolved, published in [
        ("on-time", "2026-10-01T10:00:00Z", "2026-10-03T10:00:00Z"),
        ("late", "2026-10-02T10:00:00Z", "2026-10-08T10:00:00Z"),
        ("overdue", "2026-10-03T10:00:00Z", None),
        ("not-yet-due", "2026-10-30T10:00:00Z", None),
    ]:
        f.report(name, instant(resolved).replace(hour=8).isoformat(), customer="utc-co",
                 priority="P1")  # fmt: skip
        f.then(name, "resolved", resolved)
        if published:
            f.then(name, "postmortem_published", published)

    postmortems = report_of(f, contracts, "utc-co", "2026-11-01T00:00:00Z")["postmortems"]

    assert postmortems == {
        "required": 4, "published": 2, "on_time": 1, "late": 1, "overdue": 1,
        "not_yet_due": 1, "compliance": 0.3333,
    }  # fmt: skip


# -- renderings of the same JSON ----------------------------------------------------------------


def test_the_csv_has_one_flat_row_per_customer_month_with_the_json_figures(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    report = report_of(scenario(incidents), contracts)
    (row,) = csv.DictReader(io.StringIO(render_csv([report])))
    assert row["customer"] == "berlin" and row["month"] == "2026-10"
    assert row["response_attainment"] == "0.6667"
    assert row["availability_percent"] == "99.7986"
    assert row["credit_percent"] == "10.0"
    assert row["mtta_s"] == "81200.0"
    assert row["incidents_p2"] == "3"


def test_the_csv_carries_the_contract_versions_the_restated_figures_and_the_signed_note(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    report = report_of(scenario(incidents), contracts)
    (plain,) = csv.DictReader(io.StringIO(render_csv([report])))
    assert (plain["contract_versions"], plain["restated_figures"], plain["restated"]) == ("",) * 3
    note = "slatrail.local/incidents\n12\nAAAA=\n\n\u2014 slatrail.local/incidents sig=\n"
    restated = [{"figure": "response_attainment", "old": 1.0, "new": 0.5,
                 "causes": ["contract version 2 recorded"]}]  # fmt: skip
    report.update(contract_versions=[1, 2], restated=restated, checkpoint={
        "origin": "slatrail.local/incidents", "tree_size": 12, "root": "AAAA=",
        "known_at": None, "note": note,
    })  # fmt: skip
    text = render_csv([report])
    assert text.count("\r\n") == 2  # RFC 4180: CRLF ends each record; the note's LFs are quoted
    (row,) = csv.DictReader(io.StringIO(text, newline=""))
    assert row["contract_versions"] == "1 2"
    assert (row["restated_figures"], json.loads(row["restated"])) == ("1", restated)
    assert row["checkpoint_note"] == note  # the signed note exactly: its signature checks
    assert text.splitlines()[0].endswith(",checkpoint_origin,checkpoint_tree_size,checkpoint_root")
    report["restated"] = []  # asked, nothing restated: 0, not empty
    (row,) = csv.DictReader(io.StringIO(render_csv([report])))
    assert (row["restated_figures"], row["restated"]) == ("0", "[]")


def test_the_table_lists_each_customer_month_and_its_breaches(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    text = render_table([report_of(scenario(incidents), contracts)])
    assert "berlin" in text and "99.7986%" in text and "provisional" in text
    assert "breaches (1):" in text and "B-2" in text


def test_the_html_report_is_self_contained_with_four_svg_charts_per_customer(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    reports = monthly_reports(
        scenario(incidents).histories(), contracts, [OCTOBER], instant(BERLIN_MONTH_END)
    )
    page = render_html(reports, generated_at=datetime(2026, 11, 2), source="<test>")
    assert page.count('<section class="card customer"') == 4
    assert page.count('<figure class="chart"') == page.count("<svg ") == 16
    for external in ("<script", "<link", "@import", "src=", "url(http", 'href="http'):
        assert external not in page
    assert "Berlin Bikes GmbH" in page and "99.7986%" in page
    # pygal's random chart ids are replaced: the same reports give the same page.
    again = render_html(reports, generated_at=datetime(2026, 11, 2), source="<test>")
    assert page == again


HOSTILE = '<script>alert(1)</script> "onload=alert(2) \x1b[2J'


def test_hostile_customer_and_title_text_is_escaped_in_the_html_report(
    incidents: IncidentFactory, contracts: Contracts
) -> None:
    report = monthly_reports(
        scenario(incidents).histories(), contracts, [OCTOBER], instant(BERLIN_MONTH_END)
    )[0]
    assert report["breaches"], "the scenario's first report has a breach whose title is shown"
    report = json.loads(json.dumps(report))
    report["customer"] = report["customer_name"] = report["tier"] = HOSTILE
    for breach in report["breaches"]:
        breach["title"] = breach["explanation"] = HOSTILE
    page = render_html([report], generated_at=datetime(2026, 11, 2), source=HOSTILE)
    assert "<script" not in page and '"onload=' not in page and "\x1b" not in page
    shown = "&lt;script&gt;alert(1)&lt;/script&gt; &#34;onload=alert(2) \\x1b[2J"
    assert page.count(shown) >= 6  # title, customer (name, attribute, meta), tier, breach
    assert f'data-customer="{shown}"' in page


def test_the_html_report_inlines_its_stylesheet_from_package_data() -> None:
    from slatrail.infra.report_charts import FONT
    from slatrail.infra.report_html import stylesheet

    css = str(stylesheet())
    assert "@page { size: A4;" in css and FONT in css  # the charts and the page share a font
    page = render_html([], generated_at=datetime(2026, 11, 2), source="<test>")
    assert f"<style>\n{css}</style>" in page


def test_whole_clocks_are_built_only_for_the_breaches_the_figures_come_from_their_figures(
    incidents: IncidentFactory, contracts: Contracts, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slatrail.projections import report as report_module

    expected = report_of(scenario(incidents), contracts)
    breached = {b["incident_id"] for b in expected["breaches"]}
    assert breached and len(breached) < expected["incidents"]["total"]
    whole = report_module.evaluate
    built: list[str] = []

    def counted(timeline: Any, source: Any) -> Any:
        built.append(timeline.incident_id)
        return whole(timeline, source)

    monkeypatch.setattr(report_module, "evaluate", counted)
    assert report_of(incidents, contracts) == expected
    assert set(built) == breached and len(built) == len(breached)
