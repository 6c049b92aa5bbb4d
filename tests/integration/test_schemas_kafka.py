"""Real output against the checked-in contracts (schemas/): what `serve`, `ingest` and `redrive`
actually write on a real broker and to files validates against its JSON Schema, headers and
keys included.

One `serve` (all workers, threads) gets valid incidents reported two days ago (so the alert timer
publishes their past crossings at once, marked late), bad messages of several codes, and an
orphan `triaged` (parked on incidents.retry, then dead-lettered with its parking history after
a 3 s bound). Then every record of incidents.events, incidents.rejected, incidents.alerts and
incidents.retry is checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from slatrail.infra import schemas
from tests.kafka_helpers import (
    PipelineEnv,
    event_count,
    incident_stream,
    jsonl_bytes,
    publish_messages,
    read_topic,
    running,
    wait_until,
)

pytestmark = pytest.mark.integration

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def validator(name: str) -> jsonschema.Draft202012Validator:
    document = json.loads((SCHEMA_DIR / schemas.path_of(name)).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(
        document, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def assert_valid(name: str, documents: Iterable[Any]) -> int:
    check = validator(name)
    count = 0
    for document in documents:
        found = [f"{list(e.absolute_path)}: {e.message}" for e in check.iter_errors(document)]
        assert found == [], f"{name}: {document}"
        count += 1
    return count


def headers(record: Any) -> dict[str, bytes]:
    return {name: value for name, value in record.headers}


def cloudevents(id_: str, source: str, type_: str, time: str, subject: str) -> dict[str, bytes]:
    """The CloudEvents binary-mode headers (docs/reference/topics.md) a record must carry."""
    return {
        "ce_specversion": b"1.0", "ce_id": id_.encode(), "ce_source": source.encode(),
        "ce_type": type_.encode(), "ce_time": time.encode(), "ce_subject": subject.encode(),
        "content-type": b"application/json",
    }  # fmt: skip


BAD = {
    b"\x80\x81 not utf-8": "invalid_encoding",
    b"{not json": "invalid_json",
    b'{"a": 1, "a": 2}': "duplicate_field",
    b'"just a string"': "not_an_object",
}


def bad_messages(good: list[dict[str, Any]]) -> dict[bytes, str]:
    first = good[0]
    return {
        **BAD,
        json.dumps({**first, "message_id": "extra", "extra": 1}).encode(): "unknown_field",
        json.dumps({**first, "message_id": "naive", "occurred_at": "2026-01-01T00:00:00"})
        .encode(): "naive_timestamp",
        json.dumps({**first, "message_id": "nodata", "data": {}}).encode(): "missing_field",
    }  # fmt: skip


def test_events_dead_letters_alerts_and_parked_messages_on_the_broker_match_their_schemas(
    pipeline: PipelineEnv,
) -> None:
    good = incident_stream(60, per_incident=3)
    bad = bad_messages(good)
    triaged = next(m for m in good if m["type"] == "triaged")
    orphan = {**triaged, "incident_id": "ORPHAN-1", "message_id": "orphan-1"}
    stream = [*jsonl_bytes(good[:30]), *bad, json.dumps(orphan).encode(), *jsonl_bytes(good[30:])]
    with running(pipeline.serve("all", "--threads", SLATRAIL_PARK_TIMEOUT_S="3")) as serve:
        publish_messages(pipeline.kafka.bootstrap, pipeline.topics["inbound"], stream)
        assert wait_until(lambda: event_count(pipeline.store) == len(good), 90)
        events = read_topic(pipeline.kafka.bootstrap, pipeline.topics["events"], expect=len(good))
        rejected = read_topic(
            pipeline.kafka.bootstrap, pipeline.topics["rejected"], expect=len(bad) + 1
        )
        assert wait_until(
            lambda: len(read_topic(pipeline.kafka.bootstrap, pipeline.topics["alerts"])) >= 3, 60
        ), serve.log_text()[-3000:]
        alerts = read_topic(pipeline.kafka.bootstrap, pipeline.topics["alerts"])
        parked = read_topic(pipeline.kafka.bootstrap, pipeline.topics["retry"], expect=1)
        assert serve.terminate() == 0

    # incidents.events: the envelope, its key and headers.
    bodies = [json.loads(r.value) for r in events]
    assert assert_valid("envelope", bodies) >= len(good)
    for record, body in zip(events, bodies, strict=True):
        assert record.key == body["incident_id"].encode()
        assert headers(record) == {
            "slatrail-notification-id": str(body["notification_id"]).encode(),
            "slatrail-schema": b"slatrail.event/v1",
            **cloudevents(body["hash"], "/slatrail/incidents", f"slatrail.incident.{body['type']}",
                          body["recorded_at"], body["incident_id"]),
        }  # fmt: skip

    # incidents.rejected: the Kafka dead letter, header slatrail-code, the parking report.
    letters = [json.loads(r.value) for r in rejected]
    assert assert_valid("dead-letter.kafka", letters) == len(bad) + 1
    assert sorted(d["code"] for d in letters) == sorted([*bad.values(), "first_event_not_reported"])
    for record, letter in zip(rejected, letters, strict=True):
        assert headers(record)["slatrail-code"] == letter["code"].encode()
        if letter["incident_id"] is not None:
            assert record.key == letter["incident_id"].encode()
    expired = next(d for d in letters if d["code"] == "first_event_not_reported")
    assert expired["parking"]["attempts"] >= 1 and expired["incident_id"] == "ORPHAN-1"

    # incidents.alerts: late alerts of the incidents reported two days ago.
    documents = [json.loads(r.value) for r in alerts]
    assert assert_valid("alert", documents) >= 3
    assert {a["kind"] for a in documents} >= {"breached"}
    for record, document in zip(alerts, documents, strict=True):
        assert record.key == document["incident_id"].encode()
        assert headers(record) == {
            "slatrail-schema": b"slatrail.alert/v1",
            **cloudevents(document["alert_key"], "/slatrail/alerts",
                          f"slatrail.alert.{document['kind']}", document["fired_at"],
                          document["incident_id"]),
        }  # fmt: skip

    # incidents.retry: every parked copy of the orphan.
    copies = [json.loads(r.value) for r in parked]
    assert assert_valid("parked", copies) >= 1
    assert {c["incident_id"] for c in copies} == {"ORPHAN-1"}
    assert all(headers(r) == {"slatrail-schema": b"slatrail.parked/v1"} for r in parked)

    # `slatrail redrive` from the topic: what it still refuses is a file dead letter that keeps
    # the Kafka origin and names the letter it redrove.
    done = pipeline.cli("redrive", "--format", "json")
    assert done.returncode in (0, 1), done.stderr.decode()
    still = pipeline.workdir / f"{pipeline.topics['rejected']}.redrive.rejected.jsonl"
    entries = [json.loads(text) for text in still.read_text(encoding="utf-8").splitlines()]
    assert assert_valid("dead-letter.file", entries) >= len(BAD)
    assert all(e["redrive_of"].startswith(pipeline.topics["rejected"] + "/") for e in entries)
    assert all(e["topic"] == pipeline.topics["inbound"] for e in entries)


def test_the_file_dead_letters_of_ingest_and_redrive_match_the_file_schema(
    pipeline: PipelineEnv, tmp_path: Path
) -> None:
    good = incident_stream(20, per_incident=2)
    bad = bad_messages(good)
    source = tmp_path / "batch.jsonl"
    lines = [*jsonl_bytes(good[:10]), *bad, *jsonl_bytes(good[10:])]
    source.write_bytes(b"\n".join(lines) + b"\r\n")
    done = pipeline.cli("ingest", str(source), "--format", "json")
    assert done.returncode == 1, done.stderr.decode()
    assert json.loads(done.stdout)["rejected"] == len(bad)
    rejected = tmp_path / "batch.rejected.jsonl"
    entries = [json.loads(text) for text in rejected.read_text(encoding="utf-8").splitlines()]
    assert assert_valid("dead-letter.file", entries) == len(bad)
    assert assert_valid("dead-letter", entries) == len(bad)
    assert sorted(e["code"] for e in entries) == sorted(bad.values())
    assert {e["line"] for e in entries} == set(range(11, 11 + len(bad)))

    again = pipeline.cli("redrive", "--file", str(rejected), "--format", "json")
    assert again.returncode in (0, 1), again.stderr.decode()
    still = tmp_path / "batch.redrive.rejected.jsonl"
    redriven = [json.loads(text) for text in still.read_text(encoding="utf-8").splitlines()]
    assert assert_valid("dead-letter.file", redriven) == len(bad)  # all refused again
    assert all(e["redrive_of"].startswith("file:batch.rejected.jsonl:") for e in redriven)
