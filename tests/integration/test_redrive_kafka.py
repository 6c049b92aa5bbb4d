"""`slatrail redrive` from the real `incidents.rejected` topic on the real broker: dead letters
written by the inbound worker of `slatrail serve`, redriven once the contracts know the
customer (docs/redrive.md)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from slatrail.infra.bootstrap import sample_contracts_text
from slatrail.infra.kafka_envelope import decode_envelope
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.projections.read_models import AUDIT
from tests.kafka_helpers import (
    PipelineEnv,
    event_count,
    incident_stream,
    jsonl_bytes,
    producer,
    publish_messages,
    read_model_count,
    read_topic,
    running,
    wait_until,
)

pytestmark = pytest.mark.integration

NEWCO = '\n[customers.newco]\ntier = "standard"\ntimezone = "Asia/Shanghai"\n'


def newco_stream() -> list[dict[str, Any]]:
    """Two incidents of a customer the contracts do not know yet, three messages each."""
    out = incident_stream(6, per_incident=3, prefix="NEW", width=2)
    for message in out:
        if message["type"] == "reported":
            message["data"]["customer"] = "newco"
    return out


def redrive(pipe: PipelineEnv, contracts: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Record the corrected contracts as a version (unchanged when it already is), redrive."""
    since = ("--effective-from", "1970-01-01T00:00:00Z")
    applied = pipe.cli("contracts", "apply", str(contracts), *since, "--reason", "newco signed")
    assert applied.returncode == 0, applied.stderr.decode()
    done = pipe.cli("--contracts", str(contracts), "redrive", "--format", "json", *args)
    assert done.stdout, done.stderr.decode()
    return done.returncode, json.loads(done.stdout)


def test_redrive_from_the_rejected_topic_after_the_customer_is_added(
    pipeline: PipelineEnv, tmp_path: Path
) -> None:
    good, newco = incident_stream(20), newco_stream()
    not_utf8 = b'{"schema": "slatrail.incident/v1", "title": "\xff\xfe"}'
    stream = jsonl_bytes(good[:10]) + jsonl_bytes(newco) + [not_utf8] + jsonl_bytes(good[10:])
    # newco's later messages are parked behind its refused `reported`, then dead-lettered when
    # the (here short) parking bound runs out.
    serve_newco = pipeline.serve("inbound", "--workers", "inbound", SLATRAIL_PARK_TIMEOUT_S="2")
    with running(serve_newco) as serve:
        publish_messages(pipeline.kafka.bootstrap, pipeline.topics["inbound"], stream)
        letters = read_topic(pipeline.kafka.bootstrap, pipeline.topics["rejected"], expect=7)
        assert wait_until(lambda: event_count(pipeline.store) == 20, 30)
        serve.terminate()
    entries = {(r.partition, r.offset): json.loads(r.value) for r in letters}
    assert sorted(e["code"] for e in entries.values()) == sorted(
        ["unknown_customer"] * 2 + ["first_event_not_reported"] * 4 + ["invalid_encoding"]
    )
    # A dead letter too large for the broker holds only a prefix: it cannot be redriven.
    truncated = {
        "code": "too_large", "reason": "message is 3000000 bytes", "incident_id": None,
        "message_id": None, "rejected_at": "2026-11-30T00:00:00Z", "message": None, "raw": None,
        "truncated": True, "raw_bytes": 3_000_000, "raw_sha256": "ab" * 32,
        "raw_prefix_base64": "", "topic": pipeline.topics["inbound"], "partition": 1,
        "offset": 9, "key": None, "timestamp": None,
    }  # fmt: skip
    client = producer(pipeline.kafka.bootstrap)
    try:
        client.send(pipeline.topics["rejected"], json.dumps(truncated).encode(), partition=0)
        client.flush(30)
    finally:
        client.close()
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(sample_contracts_text() + NEWCO, encoding="utf-8")
    redrive_file = f"{pipeline.topics['rejected']}.redrive.rejected.jsonl"

    code, counts = redrive(pipeline, contracts)
    assert code == 1
    assert counts["source"] == pipeline.topics["rejected"]
    assert (counts["read"], counts["accepted"], counts["duplicate"]) == (8, 6, 0)
    assert counts["still_rejected_by_code"] == {"invalid_encoding": 1}
    [stuck] = counts["not_redrivable_entries"]
    assert stuck["reason"].startswith("truncated dead letter")
    assert (stuck["topic"], stuck["partition"], stuck["offset"]) == (
        pipeline.topics["inbound"], 1, 9
    )  # fmt: skip
    assert stuck["dead_letter"].startswith(f"{pipeline.topics['rejected']}/0/")
    assert counts["rejected_file"] == redrive_file
    [again] = (tmp_path / redrive_file).read_text().splitlines()
    failed = json.loads(again)
    assert failed["code"] == "invalid_encoding" and failed["topic"] == pipeline.topics["inbound"]
    assert base64.b64decode(failed["raw_base64"]) == not_utf8  # the original bytes, exactly
    # Each redriven event names the dead letter (topic/partition/offset) it came from.
    where = {
        e["message_id"]: f"{pipeline.topics['rejected']}/{p}/{o}"
        for (p, o), e in entries.items()
        if e["message_id"]
    }
    for incident in sorted({m["incident_id"] for m in newco}):
        trail = json.loads(pipeline.cli("--contracts", str(contracts), "audit", incident,
                                        "--format", "json").stdout)  # fmt: skip
        assert [e["type"] for e in trail] == ["reported", "triaged", "acknowledged"]
        assert [e["redrive"] for e in trail] == [where[e["message_id"]] for e in trail]
    verified = pipeline.cli("--contracts", str(contracts), "verify", "--skip-read-models")
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()
    assert event_count(pipeline.store) == 26

    # Twice is harmless: everything recorded is a duplicate, nothing is added anywhere.
    code, counts = redrive(pipeline, contracts)
    assert code == 1
    assert (counts["accepted"], counts["duplicate"], counts["still_rejected"]) == (0, 6, 1)
    assert event_count(pipeline.store) == 26
    assert len((tmp_path / redrive_file).read_text().splitlines()) == 1
    assert len(read_topic(pipeline.kafka.bootstrap, pipeline.topics["rejected"])) == 8

    # The relay sends the redriven events with their marker; the projection consumer checks
    # their hashes (marker included) and stores them; verify compares the read models.
    with running(pipeline.serve("relay", "--workers", "relay,projections")) as serve:
        assert wait_until(lambda: read_model_count(pipeline.read_model) == 26, 60)
        serve.terminate()
    records = read_topic(pipeline.kafka.bootstrap, pipeline.topics["events"], expect=26)
    relayed = [decode_envelope(r.value)[1] for r in records]
    assert {e.message_id: e.redrive for e in relayed if e.redrive} == {
        m["message_id"]: where[m["message_id"]] for m in newco
    }
    store = ReadModelStore(pipeline.read_model)
    try:
        copy = store.incident_events(newco[0]["incident_id"], AUDIT)
        assert [e.redrive for e in copy] == [where[e.message_id] for e in copy]
    finally:
        store.close()
    verified = pipeline.cli("--contracts", str(contracts), "verify")
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()
    assert b"read models compared with a rebuild" in verified.stdout

    # Filters.
    first = newco[0]["incident_id"]
    code, counts = redrive(pipeline, contracts, "--incident", first, "--code", "unknown_customer")
    assert code == 0
    assert (counts["duplicate"], counts["skipped_by_filter"]) == (1, 7)
    code, counts = redrive(pipeline, contracts, "--since", "2999-01-01T00:00:00Z")
    assert (code, counts["skipped_by_filter"], counts["not_redrivable"]) == (0, 8, 0)


def test_redrive_of_a_topic_that_does_not_exist_says_so(pipeline: PipelineEnv) -> None:
    done = pipeline.cli("redrive")
    assert done.returncode == 2
    assert b"does not exist" in done.stderr and b"Traceback" not in done.stderr
