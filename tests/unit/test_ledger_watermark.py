"""The SLA ledger's contiguous watermark (projections/ledger.py:contiguous_reach): how far every
incident event of the store is applied, when partitions of the event stream are applied side by
side and one may be behind another."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from slatrail.projections.ledger import contiguous_reach


def _slow_reach(watermark: int, applied: set[int], recorded: list[int]) -> int:
    """The highest notification n (at least the watermark) such that every recorded
    notification in (watermark, n] is applied; only recorded ones can be it."""
    best = watermark
    for n in recorded:
        if all(m in applied for m in recorded if watermark < m <= n):
            best = max(best, n)
    return best


@given(
    watermark=st.integers(0, 20),
    recorded=st.sets(st.integers(1, 60)),
    missing=st.sets(st.integers(1, 60)),
)
def test_the_reach_is_the_end_of_the_applied_run_after_the_watermark(
    watermark: int, recorded: set[int], missing: set[int]
) -> None:
    after = sorted(n for n in recorded if n > watermark)
    applied = {n for n in after if n not in missing}
    assert contiguous_reach(watermark, applied, after) == _slow_reach(watermark, applied, after)


def test_a_gap_stops_the_reach_and_its_closing_moves_it_on() -> None:
    assert contiguous_reach(10, {12, 15}, [12, 13, 15]) == 12  # 13 not applied yet
    assert contiguous_reach(10, {12, 13, 15}, [12, 13, 15]) == 15
    assert contiguous_reach(10, set(), [11]) == 10
    assert contiguous_reach(10, {11}, []) == 10  # nothing recorded past it: it stays
