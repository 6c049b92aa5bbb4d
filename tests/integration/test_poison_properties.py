"""Issue 9 §1, property-based: any byte sequence gets exactly one outcome, and work goes on.

Streams interleave valid messages (some repeated), arbitrary bytes and near-valid JSON (valid
messages mutated with a lone surrogate, a timestamp that overflows UTC, NaN/Infinity, a control
character, truncation, a repeated key). Through `ingest_lines` on a real SQLite store and
through the inbound consumer on the real broker: every valid message is recorded exactly once,
every repeat is a duplicate, every invalid one is dead-lettered exactly once with a specific
code and its original kept losslessly, nothing crashes, and (broker) the committed offset of
every partition reaches the end.
"""

from __future__ import annotations

import base64
import io
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from slatrail.infra.deadletters import DEAD_LETTER_FORMAT
from slatrail.infra.ingest import ingest_lines
from slatrail.infra.rejections import KafkaDeadLetters
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import contracts_from, reported_data, utc, wire
from tests.hypothesis_profiles import examples

EDGE = {"decode": decode, "dead_letters": KafkaDeadLetters()}
"""The edge's codecs, injected into the inbound consumer as the composition root does."""

pytestmark = pytest.mark.integration

T0 = utc(2026, 3, 2, 9)
NOW = utc(2026, 3, 3)
TEXT_FIELDS = ("actor", "message_id", "source", "data.title", "data.customer", "data.description")
CONTROLS = [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0x85)]
OVERFLOWS = ("0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")
SPECIFIC = {
    "too_large", "invalid_encoding", "invalid_json", "duplicate_field", "not_an_object",
    "unsupported_schema", "unknown_type", "unknown_field", "missing_field", "naive_timestamp",
    "invalid_field",
}  # fmt: skip


KINDS = ("valid", "valid", "repeat", "bytes", "surrogate", "overflow", "nan", "control",
         "truncate", "dupkey")  # fmt: skip


@dataclass(frozen=True)
class Item:
    body: bytes
    kind: str  # valid | repeat | invalid
    codes: frozenset[str] = frozenset()  # the codes an invalid item may get
    message_id: str | None = None


def valid_message(prefix: str, n: int) -> dict[str, Any]:
    data = reported_data(description=f"line {n} — ünïcödé", outage=n % 2 == 0)
    message = wire("reported", T0, data, incident_id=f"{prefix}-{n}", message_id=f"{prefix}-{n}")
    message["source"] = "portal"
    return message


def _set(message: dict[str, Any], path: str, value: Any) -> None:
    target = message
    *parents, last = path.split(".")
    for part in parents:
        target = target[part]
    target[last] = value


def _line(message: dict[str, Any], *, ascii: bool = False) -> bytes:
    return json.dumps(message, ensure_ascii=ascii).encode("utf-8")


@st.composite
def items(draw: st.DrawFn, prefix: str, n: int, earlier: list[Item]) -> Item:
    kind = draw(st.sampled_from(KINDS))
    message = valid_message(prefix, n)
    valid_before = [i for i in earlier if i.kind == "valid"]
    if kind == "repeat" and valid_before:
        chosen = draw(st.sampled_from(valid_before))
        return Item(chosen.body, "repeat", message_id=chosen.message_id)
    if kind in ("valid", "repeat"):
        return Item(_line(message), "valid", message_id=message["message_id"])
    if kind == "bytes":
        # One line of a file: no LF inside, and a trailing CR would be read as CRLF's.
        body = draw(st.binary(min_size=1, max_size=300).filter(lambda b: b"\n" not in b))
        body = body if body.strip() and not body.endswith(b"\r") else body + b"x"
        return Item(body, "invalid", frozenset(SPECIFIC))
    if kind == "surrogate":
        lone = draw(st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"]))
        _set(message, draw(st.sampled_from(TEXT_FIELDS)), f"a{lone}b")
        return Item(_line(message, ascii=True), "invalid", frozenset({"invalid_encoding"}))
    if kind == "overflow":
        field = draw(st.sampled_from(["occurred_at", "data.impact_started_at"]))
        _set(message, field, draw(st.sampled_from(OVERFLOWS)))
        return Item(_line(message), "invalid", frozenset({"invalid_field"}))
    if kind == "nan":
        literal = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999"]))
        body = _line(message).replace(b'"outage": ', b'"outage": ' + literal + b', "x": ')
        return Item(body, "invalid", frozenset({"invalid_json"}))
    if kind == "control":
        control = draw(st.sampled_from(CONTROLS))
        _set(message, draw(st.sampled_from(TEXT_FIELDS)), f"a{control}b")
        return Item(_line(message), "invalid", frozenset({"invalid_field"}))
    if kind == "truncate":
        body = _line(message)
        cut = draw(st.integers(1, len(body) - 1))
        # Cutting inside a multi-byte character leaves bytes that are not UTF-8.
        return Item(body[:cut], "invalid", frozenset({"invalid_json", "invalid_encoding"}))
    body = _line(message)[:-1] + b', "actor": "someone-else"}'
    return Item(body, "invalid", frozenset({"duplicate_field"}))


@st.composite
def streams(draw: st.DrawFn, max_size: int) -> list[Item]:
    prefix = f"P{uuid.uuid4().hex[:8]}"
    out: list[Item] = []
    for n in range(draw(st.integers(1, max_size))):
        out.append(draw(items(prefix, n, out)))
    return out


def every_kind() -> list[Item]:
    """A fixed stream holding each kind of poison pill between valid messages (explicit
    example: the random ones may miss a kind)."""
    message = valid_message("E", 0)
    out = [Item(_line(message), "valid", message_id="E-0")]
    for n, field, value in (
        (1, "data.title", "\ud800"),
        (2, "actor", "\ud800"),
        (3, "data.impact_started_at", OVERFLOWS[0]),
        (4, "occurred_at", OVERFLOWS[0]),
        (5, "actor", "\x00"),
        (6, "data.description", "\x1b[2J"),
    ):
        bad = valid_message("E", n)
        _set(bad, field, value)
        code = "invalid_encoding" if "\ud800" in value else "invalid_field"
        out.append(Item(_line(bad, ascii=True), "invalid", frozenset({code})))
        out.append(Item(_line(valid_message("E", 100 + n)), "valid", message_id=f"E-{100 + n}"))
    nan = _line(valid_message("E", 7)).replace(b'"outage": ', b'"outage": NaN, "x": ')
    truncated = _line(valid_message("E", 8))[:40]
    repeated = _line(valid_message("E", 9))[:-1] + b', "actor": "x"}'
    out += [
        Item(nan, "invalid", frozenset({"invalid_json"})),
        Item(truncated, "invalid", frozenset({"invalid_json"})),
        Item(repeated, "invalid", frozenset({"duplicate_field"})),
        Item(b"\x80\x81 not utf-8", "invalid", frozenset({"invalid_encoding"})),
        Item(out[0].body, "repeat", message_id="E-0"),
        Item(_line(valid_message("E", 10)), "valid", message_id="E-10"),
    ]
    return out


def strict_json(text: str | bytes) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"a dead letter holds the non-JSON literal {name}")

    return json.loads(text, parse_constant=refuse)


def check_dead_letter(letter: dict[str, Any], item: Item) -> None:
    assert letter["dead_letter"] == DEAD_LETTER_FORMAT
    assert letter["code"] in item.codes, (letter, item)
    held = [k for k in ("message", "raw", "raw_base64") if letter[k] is not None]
    assert len(held) == 1, letter
    if held == ["raw_base64"]:
        assert base64.b64decode(letter["raw_base64"]) == item.body
    elif held == ["raw"]:
        assert letter["raw"].encode("utf-8") == item.body
    else:
        assert letter["message"] == json.loads(item.body)


def stored_message_ids(store_url: str) -> list[str]:
    app = open_application(store_url, contracts_from())
    try:
        return [event.message_id for _, event in app.all_events()]
    finally:
        app.close()


# -- file ingest on a real SQLite store ----------------------------------------------------------


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(max_size=25))
@example(stream=every_kind())
def test_ingest_gives_every_line_exactly_one_outcome(stream: list[Item]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store_url = f"sqlite:///{Path(folder) / 'store.db'}"
        app = open_application(store_url, contracts_from())
        dead = io.StringIO()
        try:
            counts = ingest_lines([i.body + b"\n" for i in stream], app, lambda: NOW, dead)
        finally:
            app.close()
        valid = [i for i in stream if i.kind == "valid"]
        invalid = [(n, i) for n, i in enumerate(stream, start=1) if i.kind == "invalid"]
        assert counts.accepted == len(valid)
        assert counts.duplicate == sum(1 for i in stream if i.kind == "repeat")
        assert counts.rejected == len(invalid)
        letters = [strict_json(text) for text in dead.getvalue().splitlines()]
        assert [letter["line"] for letter in letters] == [n for n, _ in invalid]
        for letter, (_, item) in zip(letters, invalid, strict=True):
            check_dead_letter(letter, item)
        assert sorted(stored_message_ids(store_url)) == sorted(i.message_id for i in valid)


# -- the inbound consumer on the real broker -----------------------------------------------------


def _run_until_committed(
    inbound: Any, ends: dict[Any, int], timeout: float = 30.0
) -> dict[Any, int | None]:
    from kafka import TopicPartition

    stop = threading.Event()
    deadline = time.monotonic() + timeout
    committed: dict[Any, int | None] = {}
    while time.monotonic() < deadline:
        inbound.step(stop)
        consumer = inbound.source.consumer
        committed = {tp: consumer.committed(TopicPartition(*tp)) for tp in ends}
        if all(committed[tp] == end for tp, end in ends.items()):
            break
    return committed


@settings(
    max_examples=examples(8),
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # a broker example is slow to shrink
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(stream=streams(max_size=14))
@example(stream=every_kind())
def test_the_inbound_consumer_gives_every_message_exactly_one_outcome(
    stream: list[Item], kafka_bootstrap: str, kafka_server: Any
) -> None:
    from slatrail.consumers.inbound import InboundConsumer
    from slatrail.infra.commands.publish import incident_key
    from slatrail.infra.kafka import KafkaClients
    from slatrail.infra.settings import Settings
    from tests.kafka_helpers import producer, read_topic

    tag = uuid.uuid4().hex[:8]
    inbound_topic, rejected_topic = f"p{tag}.inbound", f"p{tag}.rejected"
    group = kafka_server.consumer_group_settings
    kafka = KafkaClients(
        Settings(
            kafka_bootstrap=kafka_bootstrap,
            topic_partitions=2,
            kafka_session_timeout_ms=group["session_timeout_ms"],
            kafka_heartbeat_interval_ms=group["heartbeat_interval_ms"],
        )
    )
    kafka.ensure_topics([inbound_topic, rejected_topic])
    client = producer(kafka_bootstrap)
    try:
        sent = [client.send(inbound_topic, value=i.body, key=incident_key(i.body)) for i in stream]
        client.flush(timeout=60)
        placed = [future.get(timeout=30) for future in sent]
    finally:
        client.close()
    ends: dict[tuple[str, int], int] = {}
    for meta in placed:
        tp = (meta.topic, meta.partition)
        ends[tp] = max(ends.get(tp, 0), meta.offset + 1)
    with tempfile.TemporaryDirectory() as folder:
        store_url = f"sqlite:///{Path(folder) / 'store.db'}"
        app = open_application(store_url, contracts_from())
        # Assigned, not subscribed: every partition at once, no group join to wait for;
        # offsets are still committed under the group.
        source_factory: Callable[[], Any] = lambda: kafka.assigned_source(  # noqa: E731
            [inbound_topic], f"g{tag}", 500
        )
        inbound = InboundConsumer(
            app, source_factory, kafka.sink, **EDGE, rejected_topic=rejected_topic,
            clock=lambda: NOW,
            poll_timeout_s=0.2,
        )  # fmt: skip
        inbound.open()
        try:
            committed = _run_until_committed(inbound, ends)
            counts = inbound.counts
        finally:
            inbound.close()
            app.close()
        assert committed == ends, f"a partition is stuck: committed {committed}, ends {ends}"
        valid = [i for i in stream if i.kind == "valid"]
        invalid = {
            (meta.partition, meta.offset): item
            for meta, item in zip(placed, stream, strict=True)
            if item.kind == "invalid"
        }
        assert (counts.accepted, counts.rejected) == (len(valid), len(invalid))
        assert counts.duplicate == sum(1 for i in stream if i.kind == "repeat")
        letters = [strict_json(r.value) for r in read_topic(
            kafka_bootstrap, rejected_topic, expect=len(invalid), timeout=30
        )] if invalid else []  # fmt: skip
        origins = [(letter["partition"], letter["offset"]) for letter in letters]
        assert sorted(origins) == sorted(invalid), "each invalid message: exactly one dead letter"
        for letter in letters:
            assert letter["topic"] == inbound_topic
            check_dead_letter(letter, invalid[(letter["partition"], letter["offset"])])
        assert sorted(stored_message_ids(store_url)) == sorted(i.message_id for i in valid)
