"""The hash chain (docs/audit.md §2): canonical encoding, chaining, and the streaming
verifier's findings on every kind of damage, without a store."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from slatrail.domain.model import (
    GENESIS_HASH,
    EventType,
    IncidentEvent,
    canonical_json,
    incident_uuid,
    receipt_uuid,
)
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
CONTRACTS = contracts_from()


def history(incident_id: str = "INC-1", *, now: Any = None) -> list[IncidentEvent]:
    return record_history(
        [
            ("reported", T0, reported_data(priority="P1", description='日志 "quoted"\n')),
            ("triaged", T0 + 2 * MIN, {"priority": "P2"}),
            ("acknowledged", T0 + 10 * MIN, {}),
            ("resolved", T0 + 60 * MIN, {"resolution": "fixed"}),
        ],
        CONTRACTS,
        incident_id=incident_id,
        now=now or T0 + 2 * 60 * MIN,
    )


def independent_hash(prev_hash: str, event: IncidentEvent) -> str:
    """The documented rule, written again from docs/audit.md without slatrail's helpers."""
    body = {
        "incident_id": event.incident_id,
        "position": event.position,
        "type": str(event.type),
        "occurred_at": event.occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "recorded_at": event.recorded_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "actor": event.actor,
        "source": event.source,
        "message_id": event.message_id,
        "data": dict(event.data),
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(prev_hash.encode("ascii") + text.encode("utf-8")).hexdigest()


# -- the chain as recorded ---------------------------------------------------------------------


def test_each_recorded_hash_is_sha256_of_the_previous_hash_and_the_canonical_fields() -> None:
    events = history()
    prev = GENESIS_HASH
    for event in events:
        assert event.prev_hash == prev
        assert event.hash == independent_hash(prev, event) == event.computed_hash()
        prev = event.hash


def test_the_first_event_chains_to_the_genesis_hash_of_64_zeros() -> None:
    assert GENESIS_HASH == "0" * 64
    assert history()[0].prev_hash == GENESIS_HASH


def test_the_chain_is_reproducible_and_covers_recorded_at() -> None:
    assert [e.hash for e in history()] == [e.hash for e in history()]
    later = history(now=T0 + 3 * 60 * MIN)
    assert later[0].hash != history()[0].hash


def test_a_known_event_hashes_to_a_fixed_value_so_the_encoding_cannot_drift() -> None:
    event = IncidentEvent(
        incident_id="INC-7", position=1, type=EventType.REPORTED, occurred_at=T0,
        recorded_at=T0 + MIN, actor="王芳", source=None, message_id="m-1",
        data={"title": "Ünïcode \"q\"\n", "priority": "P1", "customer": "acme", "outage": True},
        prev_hash=GENESIS_HASH, hash="",
    )  # fmt: skip
    assert (
        canonical_json(event.canonical_fields())
        == (
            '{"actor":"王芳","data":{"customer":"acme","outage":true,"priority":"P1",'
            '"title":"Ünïcode \\"q\\"\\n"},"incident_id":"INC-7","message_id":"m-1",'
            '"occurred_at":"2026-03-02T09:00:00Z","position":1,"recorded_at":"2026-03-02T09:01:00Z",'
            '"source":null,"type":"reported"}'
        ).encode()
    )
    assert event.computed_hash() == (
        hashlib.sha256(GENESIS_HASH.encode() + canonical_json(event.canonical_fields())).hexdigest()
    )


def test_canonical_json_sorts_keys_by_code_point_at_every_level_and_has_no_whitespace() -> None:
    assert canonical_json({"b": 1, "a": {"z": [1, 2], "é": None, "Z": True}}) == (
        '{"a":{"Z":true,"z":[1,2],"é":null},"b":1}'.encode()
    )


def test_canonical_json_escapes_only_quotes_backslashes_and_control_characters() -> None:
    text = '"\\\n\t\x01é\u2028/'
    assert canonical_json(text) == '"\\"\\\\\\n\\t\\u0001é\u2028/"'.encode()


def test_fractional_seconds_appear_only_when_present() -> None:
    event = replace(history()[0], occurred_at=T0.replace(microsecond=120))
    assert event.canonical_fields()["occurred_at"] == "2026-03-02T09:00:00.000120Z"
    assert history()[0].canonical_fields()["occurred_at"] == "2026-03-02T09:00:00Z"


# -- verifying a chain, pure -----------------------------------------------------------------


def feed(
    verifier: ChainVerifier, events: list[IncidentEvent], *, receipts: bool = True, start: int = 1
) -> None:
    for n, event in enumerate(events, start=start):
        verifier.incident_event(
            incident_uuid(event.incident_id), event.position, event, notification_id=2 * n
        )
        if receipts:
            verifier.receipt(
                receipt_uuid(event.message_id), 1,
                ReceiptRecord(event.message_id, event.incident_id, event.position),
                notification_id=2 * n + 1,
            )  # fmt: skip


def kinds(verifier: ChainVerifier) -> list[tuple[DifferenceKind, int | None]]:
    return [(d.kind, d.position) for d in verifier.differences]


def test_an_untouched_history_verifies_clean() -> None:
    verifier = ChainVerifier()
    feed(verifier, history("A") + history("B"))
    summary = verifier.finish()
    assert verifier.differences == []
    assert (summary.incidents, summary.events, summary.receipts) == (2, 8, 8)
    assert summary.heads["A"] == Anchor(4, history("A")[-1].hash)


def test_an_altered_field_is_a_hash_mismatch_at_that_position_only() -> None:
    events = history()
    events[2] = replace(events[2], actor="someone.else")
    differences = verify_chain(events)
    assert [(d.kind, d.position, d.incident_id) for d in differences] == [
        (DifferenceKind.HASH_MISMATCH, 3, "INC-1")
    ]
    assert events[2].hash in differences[0].detail


def test_a_rewritten_hash_breaks_the_link_to_the_next_event() -> None:
    events = history()
    forged = replace(events[1], actor="someone.else")
    events[1] = replace(forged, hash=forged.computed_hash())
    assert [(d.kind, d.position) for d in verify_chain(events)] == [(DifferenceKind.BROKEN_LINK, 3)]


def test_a_deleted_event_is_a_missing_position_and_its_receipt_is_an_orphan() -> None:
    events = history()
    verifier = ChainVerifier()
    for n, event in enumerate(events):
        if event.position != 2:
            verifier.incident_event(
                incident_uuid(event.incident_id), event.position, event, notification_id=n
            )
        verifier.receipt(
            receipt_uuid(event.message_id), 1,
            ReceiptRecord(event.message_id, event.incident_id, event.position), notification_id=n,
        )  # fmt: skip
    verifier.finish()
    assert kinds(verifier) == [
        (DifferenceKind.MISSING_POSITION, 2),
        (DifferenceKind.RECEIPT_ORPHAN, 2),
    ]
    assert (
        "position 2 missing: the chain jumps from position 1 to 3" in verifier.differences[0].detail
    )


def test_a_deleted_last_event_is_found_through_its_receipt() -> None:
    events = history()
    verifier = ChainVerifier()
    feed(verifier, events[:-1])
    last = events[-1]
    verifier.receipt(
        receipt_uuid(last.message_id), 1,
        ReceiptRecord(last.message_id, last.incident_id, last.position), notification_id=99,
    )  # fmt: skip
    verifier.finish()
    assert kinds(verifier) == [(DifferenceKind.RECEIPT_ORPHAN, 4)]


def test_events_stored_out_of_chain_order_are_reported_as_such() -> None:
    events = history()
    verifier = ChainVerifier()
    feed(verifier, [events[0], events[2], events[1], events[3]])
    verifier.finish()
    assert kinds(verifier) == [(DifferenceKind.OUT_OF_ORDER, 3)]


def test_swapped_contents_of_two_positions_break_hashes_links_and_receipts() -> None:
    events = history()
    swapped = [events[0], replace(events[2], position=2), replace(events[1], position=3), events[3]]
    verifier = ChainVerifier()
    feed(verifier, swapped, receipts=False)
    for event in events:
        verifier.receipt(
            receipt_uuid(event.message_id), 1,
            ReceiptRecord(event.message_id, event.incident_id, event.position), notification_id=0,
        )  # fmt: skip
    verifier.finish()
    found = set(kinds(verifier))
    assert {
        (DifferenceKind.HASH_MISMATCH, 2),
        (DifferenceKind.HASH_MISMATCH, 3),
        (DifferenceKind.BROKEN_LINK, 2),
    } <= found
    assert {(DifferenceKind.BROKEN_LINK, 3), (DifferenceKind.BROKEN_LINK, 4)} <= found
    assert {(DifferenceKind.RECEIPT_MISMATCH, 2), (DifferenceKind.RECEIPT_MISMATCH, 3)} <= found


def test_an_undecodable_event_is_reported_and_the_link_after_it_is_not_guessed() -> None:
    events = history()
    verifier = ChainVerifier()
    aggregate = incident_uuid("INC-1")
    verifier.incident_event(aggregate, 1, events[0], notification_id=1)
    verifier.incident_event(aggregate, 2, None, notification_id=2, error="JSONDecodeError: x")
    verifier.incident_event(aggregate, 3, events[2], notification_id=3)
    verifier.finish()
    assert [(d.kind, d.position, d.incident_id) for d in verifier.differences] == [
        (DifferenceKind.UNDECODABLE, 2, "INC-1"),
        (DifferenceKind.RECEIPT_MISSING, 1, "INC-1"),
        (DifferenceKind.RECEIPT_MISSING, 3, "INC-1"),
    ]


def test_an_event_in_the_wrong_aggregate_is_reported() -> None:
    verifier = ChainVerifier()
    event = history()[0]
    verifier.incident_event(incident_uuid("OTHER"), 1, event, notification_id=1)
    verifier.finish()
    assert (DifferenceKind.WRONG_AGGREGATE, 1) in kinds(verifier)


def test_a_history_must_start_with_reported() -> None:
    events = history()
    differences = verify_chain([replace(events[0], type=EventType.TRIAGED)])
    assert {d.kind for d in differences} == {
        DifferenceKind.FIRST_NOT_REPORTED,
        DifferenceKind.HASH_MISMATCH,
    }


def test_a_receipt_pointing_elsewhere_is_a_mismatch() -> None:
    event = history()[0]
    verifier = ChainVerifier()
    verifier.receipt(
        receipt_uuid(event.message_id), 1, ReceiptRecord(event.message_id, "INC-1", 5),
        notification_id=1,
    )  # fmt: skip
    verifier.incident_event(incident_uuid("INC-1"), 1, event, notification_id=2)
    verifier.finish()
    assert kinds(verifier) == [(DifferenceKind.RECEIPT_MISMATCH, 1)]


def test_anchors_catch_a_history_rewritten_consistently_to_its_end() -> None:
    events = history()
    rewritten: list[IncidentEvent] = []
    prev = GENESIS_HASH
    for event in events:
        changed = replace(event, actor="forger", prev_hash=prev)
        changed = replace(changed, hash=changed.computed_hash())
        rewritten.append(changed)
        prev = changed.hash
    assert verify_chain(rewritten) == []
    verifier = ChainVerifier({"INC-1": Anchor(4, events[-1].hash), "GONE": Anchor(1, "0" * 64)})
    feed(verifier, rewritten)
    verifier.finish()
    assert kinds(verifier) == [
        (DifferenceKind.ANCHOR_MISMATCH, 4),
        (DifferenceKind.ANCHOR_MISSING, 1),
    ]


@pytest.mark.parametrize("bad", [{"data": float("nan")}, {"hash": "XYZ"}])
def test_content_that_cannot_be_hashed_is_a_mismatch_not_a_crash(bad: dict[str, Any]) -> None:
    event = history()[0]
    data = dict(event.data, **bad) if "data" in bad else event.data
    broken = replace(event, data=data, hash=bad.get("hash", event.hash))
    assert [d.kind for d in verify_chain([broken])] == [DifferenceKind.HASH_MISMATCH]
