"""The board's rows: reusing an incident's row between its events and planned alerts gives the
same board as computing everything again (docs/web.md, "Board")."""

from __future__ import annotations

from datetime import timedelta

from slatrail.infra.bootstrap import read_contracts
from slatrail.infra.web.board import compute_board
from tests.builders import IncidentFactory, instant


def test_reused_rows_equal_fresh_ones_before_and_after_a_planned_alert() -> None:
    contracts = read_contracts(None)
    factory = IncidentFactory(contracts)
    factory.report("A-1", "2026-10-05T09:00:00Z", customer="acme-rtc", priority="P1")
    factory.report("B-1", "2026-10-05T09:05:00Z", customer="brightcall", priority="P2")
    factory.then("B-1", "acknowledged", "2026-10-05T09:06:00Z")
    factory.report("C-1", "2026-10-05T08:00:00Z", customer="chatnest", priority="P3")
    factory.then("C-1", "resolved", "2026-10-05T09:00:00Z")
    histories = [factory.events(i) for i in ("A-1", "B-1", "C-1")]
    start = instant("2026-10-05T09:07:00Z")
    cache: dict = {}  # type: ignore[type-arg]
    first = compute_board(histories, contracts, start, 1, cache)
    assert first.next_change is not None and first.next_change > start
    moments = [start + timedelta(seconds=s) for s in (1, 30, 59)]
    moments += [first.next_change - timedelta(seconds=1), first.next_change,
                first.next_change + timedelta(seconds=5), start + timedelta(hours=30)]  # fmt: skip
    for moment in moments:
        reused = compute_board(histories, contracts, moment, 1, cache)
        fresh = compute_board(histories, contracts, moment, 1)
        assert reused.rows == fresh.rows, moment
        assert reused.next_change == fresh.next_change, moment
    statuses = {c.status for r in compute_board(histories, contracts, moments[-1], 1).rows
                for c in r.clocks}  # fmt: skip
    assert "breached" in statuses
