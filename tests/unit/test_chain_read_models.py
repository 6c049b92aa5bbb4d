"""`slatrail verify`'s read-model comparison: rows (as a real read model stores them) against
the recorded events — a consistent prefix of each chain, ending on the store's hash."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from slatrail.domain.model import IncidentEvent, format_instant
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.projections.read_models import AUDIT, TrackedEvent
from slatrail.projections.verification import Anchor, compare_read_model, summarise_rows
from tests.builders import contracts_from, record_history, reported_data, utc

T0 = utc(2026, 3, 2, 9)
MIN = timedelta(minutes=1)


def history(incident_id: str) -> list[IncidentEvent]:
    return record_history(
        [
            ("reported", T0, reported_data(priority="P1")),
            ("acknowledged", T0 + 10 * MIN, {}),
            ("resolved", T0 + 60 * MIN, {"resolution": "fixed"}),
        ],
        contracts_from(),
        incident_id=incident_id,
        now=T0 + 2 * 60 * MIN,
    )


STORE = {"A": history("A"), "B": history("B")}
HEADS = {i: Anchor(len(events), events[-1].hash) for i, events in STORE.items()}
INDEX = {i: ("acme", format_instant(T0)) for i in STORE}


@pytest.fixture
def model() -> Iterator[ReadModelStore]:
    store = ReadModelStore("sqlite:///:memory:")
    yield store
    store.close()


def compare(
    model: ReadModelStore,
    rows: dict[str, list[IncidentEvent]],
    *,
    tracked_last: dict[str, int] | None = None,
    index: dict[str, tuple[str, str]] | None = None,
) -> tuple[list[tuple[str | None, int | None, str]], int]:
    events = [e for incident in sorted(rows) for e in rows[incident]]
    model.apply([TrackedEvent("test", n, e) for n, e in enumerate(events)], read_models=[AUDIT])
    [summary] = summarise_rows([(AUDIT, model.iter_rows(AUDIT, page=2), index)])
    differences, lagging = compare_read_model(
        summary,
        store_heads=HEADS,
        hash_at=lambda i, k: STORE[i][k - 1].hash,
        rows_of=lambda i: model.incident_events(i, AUDIT),
        events_of=lambda i: STORE.get(i, []),
        tracked_store=6 if tracked_last else None,
        tracked_last=tracked_last,
    )
    return [(d.incident_id, d.position, d.detail) for d in differences], lagging


def test_an_exact_copy_has_no_differences(model: ReadModelStore) -> None:
    assert compare(model, STORE, tracked_last={"A": 3, "B": 3}, index=INDEX) == ([], 0)


def test_a_read_model_behind_kafka_is_lagging_not_different(model: ReadModelStore) -> None:
    assert compare(model, {"A": STORE["A"][:2], "B": STORE["B"][:1]}) == ([], 3)


def test_a_row_missing_below_the_tracked_store_position_is_a_difference(
    model: ReadModelStore,
) -> None:
    found, _ = compare(model, {"A": STORE["A"], "B": STORE["B"][:2]}, tracked_last={"B": 3})
    assert found == [
        ("B", 3, "read model audit: missing, although the read model's tracking says it "
         "applied the store up to notification 6 (position 3 is at or before it)"),
    ]  # fmt: skip


def test_a_changed_value_is_reported_with_the_field(model: ReadModelStore) -> None:
    rows = {"A": [STORE["A"][0], replace(STORE["A"][1], actor="mallory"), STORE["A"][2]],
            "B": STORE["B"]}  # fmt: skip
    assert compare(model, rows)[0] == [
        ("A", 2, "read model audit: actor is 'mallory', the store has 'li.wei'")
    ]


def test_a_consistently_rewritten_copy_differs_from_the_store_at_its_head(
    model: ReadModelStore,
) -> None:
    forged = replace(STORE["B"][2], actor="mallory")
    forged = replace(forged, hash=forged.computed_hash())
    found, _ = compare(model, {"A": STORE["A"], "B": [*STORE["B"][:2], forged]})
    assert found == [
        ("B", 3, f"read model audit: actor is 'mallory', the store has 'li.wei'; hash is "
         f"{forged.hash!r}, the store has {STORE['B'][2].hash!r}"),
    ]  # fmt: skip


def test_a_hole_and_a_row_beyond_the_store_are_reported(model: ReadModelStore) -> None:
    extra = replace(STORE["B"][2], position=4)
    found, _ = compare(model, {"A": [STORE["A"][0], STORE["A"][2]], "B": [*STORE["B"], extra]})
    assert [(i, p) for i, p, _ in found] == [("A", 2), ("B", 4)]
    assert found[1][2] == "read model audit: holds position 4; the store's chain ends at 3"


def test_an_incident_the_store_does_not_have_is_reported(model: ReadModelStore) -> None:
    found, _ = compare(model, {**STORE, "GHOST": history("GHOST")})
    assert found == [("GHOST", None, "read model audit: incident is not in the store")]


def test_the_customer_index_must_match_the_reported_events(model: ReadModelStore) -> None:
    index = {"A": ("globex", format_instant(T0)), "GHOST": ("acme", format_instant(T0))}
    found, _ = compare(model, STORE, index=index)
    assert [d for _, _, d in found] == [
        "read model audit: customer index says 'globex' reported at 2026-03-02T09:00:00Z, "
        "the events say 'acme' at 2026-03-02T09:00:00Z",
        "read model audit: incident is missing from the customer index",
        "read model audit: customer index lists an incident with no events",
    ]
