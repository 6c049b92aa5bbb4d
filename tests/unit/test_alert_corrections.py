"""Corrections on `incidents.alerts`: a late fact that removes or moves a crossing already
alerted publishes a `correction` naming the original `alert_key`."""

from __future__ import annotations

from datetime import timedelta

from slatrail.consumers.alert_scheduler import AlertTimer
from slatrail.infra.stream_models import AlertCorrection
from tests.builders import IncidentFactory, contracts_from, utc

CONTRACTS = contracts_from()
MON = utc(2026, 3, 2, 8)
MIN = timedelta(minutes=1)


def test_a_late_acknowledged_corrects_the_response_alerts_already_fired() -> None:
    # P2 (response 1h, 24x7): at risk at 08:45, breached at 09:00; the acknowledged of 08:30
    # arrives at 09:10 (a publisher replaying its outbox)
    incidents = IncidentFactory(CONTRACTS)
    incidents.report("INC-1", MON, customer="acme", priority="P2")
    incidents.then("INC-1", "acknowledged", MON + 30 * MIN, recorded_at=MON + 70 * MIN)
    reported, late = incidents.events("INC-1")
    timer = AlertTimer(CONTRACTS)
    timer.apply(reported, now=MON)
    fired = {a["alert_key"] for a in timer.due(MON + 65 * MIN)}
    assert {"INC-1/response/at_risk/0", "INC-1/response/breached/0"} <= fired
    assert timer.take_corrections() == []

    timer.apply(late, now=MON + 70 * MIN)
    corrections = {c["corrects"]: c for c in timer.take_corrections()}
    assert {"INC-1/response/at_risk/0", "INC-1/response/breached/0"} <= set(corrections)
    breach = corrections["INC-1/response/breached/0"]
    assert breach["kind"] == "correction" and breach["change"] == "removed"
    AlertCorrection.model_validate(breach)  # the documented schema
    assert breach["alert_key"] == "INC-1/response/breached/0/corrected/removed"
    assert breach["was_crossed_at"] == "2026-03-02T09:00:00Z" and breach["crossed_at"] is None
    assert breach["cause"] == {
        "type": "acknowledged", "occurred_at": "2026-03-02T08:30:00Z", "position": 2,
    }  # fmt: skip
    # nothing twice: the same event again, or a later one, corrects nothing more
    timer.apply(late, now=MON + 71 * MIN)
    assert timer.take_corrections() == []
    later = timer.due(MON + 10 * 60 * MIN)
    assert not [a for a in later if a["alert_key"].startswith("INC-1/response")]


def test_a_late_triage_moves_a_breach_already_fired() -> None:
    # reported P2 (response 1h): breached at 09:00; a triage to P1 (15m) at 08:05 recorded at
    # 09:05 moves the breach to 08:15
    incidents = IncidentFactory(CONTRACTS)
    incidents.report("INC-1", MON, customer="acme", priority="P2")
    incidents.then("INC-1", "triaged", MON + 5 * MIN, recorded_at=MON + 65 * MIN, priority="P1")
    reported, triaged = incidents.events("INC-1")
    timer = AlertTimer(CONTRACTS)
    timer.apply(reported, now=MON)
    timer.due(MON + 61 * MIN)
    timer.apply(triaged, now=MON + 65 * MIN)
    corrections = {c["corrects"]: c for c in timer.take_corrections()}
    breach = corrections["INC-1/response/breached/0"]
    assert breach["change"] == "moved"
    assert (breach["was_crossed_at"], breach["crossed_at"]) == (
        "2026-03-02T09:00:00Z", "2026-03-02T08:15:00Z",
    )  # fmt: skip
    assert breach["alert_key"] == "INC-1/response/breached/0/corrected/2026-03-02T08:15:00Z"
    # the moved alert is not fired again
    assert "INC-1/response/breached/0" not in {
        a["alert_key"] for a in timer.due(MON + 2 * 60 * MIN)
    }
