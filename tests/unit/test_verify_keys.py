"""What `verify` keeps and computes per record, against the slow, obvious forms it replaces:
aggregate ids as UUID integers (uuid5 without building the UUID), the RFC 3339 form of a UTC
instant, and the chain verifier's small per-incident state (heads read from it, the incident
index folded into it and dropped once compared)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import slatrail.domain.model as model
from slatrail.domain.model import (
    GENESIS_HASH,
    IncidentEvent,
    format_instant,
    incident_key,
    incident_uuid,
    receipt_key,
    receipt_uuid,
)
from slatrail.projections.incident_index import entry_of
from slatrail.projections.verification import (
    Anchor,
    ChainVerifier,
    DifferenceKind,
    ReceiptRecord,
    verify_chain,
)
from tests.builders import contracts_from, record_history, reported_data, utc

T0 = utc(2026, 3, 2, 9)
MIN = timedelta(minutes=1)


@given(st.text())
@example("\ud800")  # a lone surrogate (not Unicode text)
def test_the_ids_and_keys_are_the_uuid5_of_incident_and_message_ids(name: str) -> None:
    try:
        want_incident = uuid.uuid5(model._INCIDENT_NAMESPACE, name)
        want_receipt = uuid.uuid5(model._MESSAGE_NAMESPACE, name)
    except UnicodeEncodeError:  # a lone surrogate: neither is defined for it
        for made in (incident_key, receipt_key, incident_uuid, receipt_uuid):
            with pytest.raises(UnicodeEncodeError):
                made(name)
        return
    assert incident_uuid(name) == want_incident and receipt_uuid(name) == want_receipt
    assert incident_key(name) == want_incident.int
    assert receipt_key(name) == want_receipt.int
    assert incident_uuid(name).version == 5


def _slow_format(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


OFFSETS = [UTC, timezone(timedelta(0)), timezone(timedelta(hours=5, minutes=30)),
           timezone(timedelta(hours=-8))]  # fmt: skip
INSTANTS = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30),
    timezones=st.sampled_from(OFFSETS),
)  # fmt: skip


@given(INSTANTS)
def test_an_instant_is_formatted_as_its_utc_time_whatever_its_offset(moment: datetime) -> None:
    text = format_instant(moment)
    assert text == _slow_format(moment)
    assert text.endswith("Z") and "+" not in text
    assert datetime.fromisoformat(text.replace("Z", "+00:00")) == moment


def history(incident_id: str) -> list[IncidentEvent]:
    return record_history(
        [
            ("reported", T0, reported_data(priority="P2")),
            ("acknowledged", T0 + 10 * MIN, {}),
            ("priority_changed", T0 + 20 * MIN, {"priority": "P1", "reason": "spreading"}),
            ("resolved", T0 + 60 * MIN, {"resolution": "fixed"}),
        ],
        contracts_from(),
        incident_id=incident_id,
        now=T0 + 2 * 60 * MIN,
    )


def feed(verifier: ChainVerifier, events: list[IncidentEvent], *, as_int: bool = False) -> None:
    for n, event in enumerate(events):
        aggregate = incident_uuid(event.incident_id)
        verifier.incident_event(
            aggregate.int if as_int else aggregate, event.position, event, notification_id=2 * n
        )
        verifier.receipt(
            receipt_key(event.message_id) if as_int else receipt_uuid(event.message_id), 1,
            ReceiptRecord(event.message_id, event.incident_id, event.position),
            notification_id=2 * n + 1,
        )  # fmt: skip


def found(verifier: ChainVerifier) -> list[tuple[str, str | None, int | None, str | None]]:
    return [
        (str(d.kind), d.incident_id, d.position, str(d.aggregate_id) if d.aggregate_id else None)
        for d in verifier.differences
    ]


def test_an_aggregate_named_by_its_integer_is_verified_as_by_its_uuid() -> None:
    damaged = history("A")
    damaged[2] = replace(damaged[2], actor="someone.else")  # a hash mismatch at 3
    events = [damaged[0], damaged[2], damaged[1], damaged[3], *history("B")]  # 3 before 2
    by_uuid, by_int = ChainVerifier(), ChainVerifier()
    feed(by_uuid, events)
    feed(by_int, events, as_int=True)
    by_uuid.finish()
    by_int.finish()
    assert found(by_int) == found(by_uuid)
    assert {(kind, position) for kind, _, position, _ in found(by_int)} == {
        ("out_of_order", 3),
        ("hash_mismatch", 3),
    }
    assert {aggregate for *_, aggregate in found(by_int)} == {str(incident_uuid("A"))}


def test_a_chain_keeps_checking_after_a_gap_closes() -> None:
    """Events held across a gap are dropped once linked: damage after it is still found."""
    events = history("A")
    forged = replace(events[3], prev_hash=GENESIS_HASH)
    verifier = ChainVerifier(receipts=False)
    for n, event in enumerate([events[0], events[2], events[1], forged]):
        verifier.incident_event(
            incident_uuid("A"), event.position, event, notification_id=n
        )  # fmt: skip
    summary = verifier.finish()
    assert [(d.kind, d.position) for d in verifier.differences] == [
        (DifferenceKind.OUT_OF_ORDER, 3),
        (DifferenceKind.BROKEN_LINK, 4),
        (DifferenceKind.HASH_MISMATCH, 4),
    ]
    assert summary.heads["A"] == Anchor(4, forged.hash)


def test_the_heads_are_read_from_the_chains_one_per_incident() -> None:
    """Also for a chain stored in another incident's aggregate: named by its own aggregate
    when that holds the incident, else by the one it was found in."""
    a, b, c = history("A"), history("B"), history("C")
    verifier = ChainVerifier(receipts=False)
    feed_events = [(incident_uuid("A"), e) for e in a] + [(incident_uuid("B"), e) for e in b]
    feed_events += [(incident_uuid("elsewhere"), e) for e in c]  # all of C, misplaced
    feed_events += [(incident_uuid("copy-of-a"), a[0])]  # A's report copied elsewhere
    for n, (aggregate, event) in enumerate(feed_events):
        verifier.incident_event(aggregate, event.position, event, notification_id=n)
    summary = verifier.finish()
    heads = summary.heads
    assert sorted(heads) == ["A", "B", "C"] and len(heads) == 3
    assert heads["A"] == Anchor(4, a[-1].hash)  # its own aggregate's chain, not the copy
    assert heads["C"] == Anchor(4, c[-1].hash)
    assert heads.get("elsewhere") is None and "D" not in heads
    assert dict(heads.items()) == {
        "A": Anchor(4, a[-1].hash), "B": Anchor(4, b[-1].hash), "C": Anchor(4, c[-1].hash),
    }  # fmt: skip
    wrong = {
        (d.incident_id, d.position) for d in verifier.differences if d.kind == "wrong_aggregate"
    }
    assert wrong == {("C", 1), ("A", 1)}


def test_the_index_row_is_folded_per_incident_and_dropped_once_compared() -> None:
    a, b = history("A"), history("B")[:2]
    verifier = ChainVerifier(index=True)
    feed(verifier, [a[0], b[0], a[1], b[1], a[2], a[3]], as_int=True)
    verifier.finish()
    assert verifier.differences == []
    assert sorted(verifier.unindexed()) == ["A", "B"]
    assert verifier.index_entry("A") == entry_of(a)
    assert verifier.index_entry("A") is None  # asked once: then dropped
    assert list(verifier.unindexed()) == ["B"]
    assert verifier.index_entry("nobody") is None
    assert verifier.index_entry("B") == entry_of(b)
    assert list(verifier.unindexed()) == []
    assert ChainVerifier().index_entry("A") is None  # built without the index


def test_a_hash_is_kept_as_bytes_but_compared_as_the_text_it_was() -> None:
    """A chain keeps its head hash as 32 bytes; a hash that is not 64 lower-case hex digits
    is kept as text, so the link after it is checked against exactly what was stored: an
    upper-cased hash is not the lower-case one it spells."""
    events = history("A")
    shouted = replace(events[1], hash=events[1].hash.upper())
    assert verify_chain_kinds([events[0], shouted, *events[2:]]) == [
        (DifferenceKind.HASH_MISMATCH, 2),
        (DifferenceKind.BROKEN_LINK, 3),
    ]
    short = replace(events[1], hash=events[1].hash[:-2])
    assert verify_chain_kinds([events[0], short, *events[2:]]) == [
        (DifferenceKind.HASH_MISMATCH, 2),
        (DifferenceKind.BROKEN_LINK, 3),
    ]
    verifier = ChainVerifier(receipts=False)
    for event in [*events[:3], shouted := replace(events[3], hash=events[3].hash.upper())]:
        verifier.incident_event(incident_uuid("A"), event.position, event, notification_id=0)
    assert verifier.finish().heads["A"] == Anchor(4, shouted.hash)
    assert verify_chain_kinds(events) == []


def verify_chain_kinds(events: list[IncidentEvent]) -> list[tuple[DifferenceKind, int | None]]:
    return [(d.kind, d.position) for d in verify_chain(events)]
