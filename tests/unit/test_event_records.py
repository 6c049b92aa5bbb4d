"""New events' stored records encoded by orjson (application/event_records.py) are byte for byte
what eventsourcing's mapper writes, for any incident event; other values go to the mapper, and
a mapper that could write other bytes is not bypassed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from eventsourcing.application import Application
from eventsourcing.persistence import Cipher, Mapper
from eventsourcing.utils import get_topic
from hypothesis import given, settings
from hypothesis import strategies as st

from slatrail.application.event_records import EventRecords
from slatrail.domain.incident import EVENT_CLASSES, Incident
from slatrail.domain.model import EventType, incident_uuid
from tests.hypothesis_profiles import examples

# any text but a lone surrogate (a record of one cannot be written at all)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
instants = st.datetimes(
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=45)), ZoneInfo("America/St_Johns")]
    )
)
data_values = st.recursive(
    texts | st.booleans() | st.integers(-(2**70), 2**70) | st.none(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


def library_mapper(**env: str) -> Any:
    return Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo", **env}).mapper


def event_of(kind: EventType, fields: dict[str, Any], version: int) -> Any:
    extra = {"originator_topic": get_topic(Incident)} if kind is EventType.REPORTED else {}
    return EVENT_CLASSES[kind](
        originator_id=incident_uuid(fields["incident_id"]), originator_version=version,
        **extra, **fields,
    )  # fmt: skip


@settings(max_examples=examples(300), deadline=None)
@given(
    kind=st.sampled_from(list(EventType)),
    version=st.integers(1, 2**40),
    text=st.tuples(texts, texts, texts, texts),
    source=st.none() | texts,
    data=st.dictionaries(texts, data_values, max_size=5),
    at=st.tuples(instants, instants),
    redrive=st.none() | texts,
    traceparent=st.none() | texts,
)
def test_an_event_record_is_the_librarys_record_of_the_event(
    kind: EventType, version: int, text: tuple[str, str, str, str], source: str | None,
    data: dict[str, Any], at: tuple[datetime, datetime], redrive: str | None,
    traceparent: str | None,
) -> None:  # fmt: skip
    mapper = library_mapper()
    records = EventRecords(mapper)
    assert records.enabled
    incident_id, actor, message_id, prev = text
    event = event_of(
        kind,
        {"timestamp": at[0], "incident_id": incident_id, "occurred_at": at[1], "actor": actor,
         "source": source, "message_id": message_id, "data": data, "prev_hash": prev,
         "hash": "f" * 64, "redrive": redrive, "traceparent": traceparent},
        version,
    )  # fmt: skip
    assert records.record(event) == mapper.to_stored_event(event)


def test_a_value_orjson_would_write_otherwise_goes_to_the_mapper() -> None:
    mapper = library_mapper()
    records = EventRecords(mapper)
    at = datetime(2026, 12, 2, tzinfo=UTC)
    for data in ({"ratio": 1e16}, {"ratio": 0.1}, {"big": 2**64}, {"kind": EventType.RESOLVED}):
        event = event_of(
            EventType.ESCALATED,
            {"timestamp": at, "incident_id": "I-1", "occurred_at": at, "actor": "a",
             "source": None, "message_id": "m", "data": data, "prev_hash": "0", "hash": "1"},
            3,
        )  # fmt: skip
        assert records.record(event) == mapper.to_stored_event(event)


class _Reversing(Cipher):
    """A stand-in cipher: what matters is that one is set."""

    def __init__(self, environment: Any = None) -> None:
        pass

    def encrypt(self, plaintext: bytes) -> bytes:
        return plaintext[::-1]

    def decrypt(self, ciphertext: bytes) -> bytes:
        return ciphertext[::-1]


def test_a_mapper_that_compresses_or_encrypts_is_not_bypassed() -> None:
    assert not EventRecords(
        library_mapper(COMPRESSOR_TOPIC="eventsourcing.compressor:ZlibCompressor")
    ).enabled
    plain = library_mapper()
    assert not EventRecords(Mapper(plain.transcoder, cipher=_Reversing())).enabled
    assert EventRecords(Mapper(plain.transcoder)).enabled
