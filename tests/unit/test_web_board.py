"""The board's rows: reusing an incident's row between its events and planned alerts gives the
same board as computing everything again (docs/web.md, "Board")."""

from __future__ import annotations

from datetime import timedelta

from slatrail.domain.contracts import load_contracts
from slatrail.infra.bootstrap import read_contracts, read_contracts_text
from slatrail.infra.web.board import BoardCache, compute_board
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


class _Open:
    def __init__(self, histories: list) -> None:  # type: ignore[type-arg]
        self.generation = 1
        self._histories = histories

    def histories(self) -> list:  # type: ignore[type-arg]
        return self._histories


def test_a_new_contract_version_is_on_the_board_at_its_next_update() -> None:
    contracts = read_contracts(None)
    factory = IncidentFactory(contracts)
    factory.report("A-1", "2026-10-05T09:00:00Z", customer="acme-rtc", priority="P3")
    text, _ = read_contracts_text(None)
    moved = text.replace('tier = "enterprise"\nname = "Acme RTC Cloud"',
                         'tier = "standard"\nname = "Acme RTC Cloud"')  # fmt: skip
    assert moved != text
    current = [contracts]
    now = instant("2026-10-05T09:07:00Z")
    cache = BoardCache(_Open([factory.events("A-1")]), lambda: current[0], lambda: now,
                       resolution=timedelta(hours=1))  # fmt: skip
    before = cache.update()
    current[0] = load_contracts(moved, "v2.toml")  # what `contracts apply` recorded
    after = cache.update()  # within the resolution, same generation: still measured again
    assert after.rows != before.rows
    assert after.rows == compute_board([factory.events("A-1")], current[0], now, 1).rows
