"""`slatrail publish` + `slatrail serve` against a real broker: the pipeline end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from slatrail.domain.messages import MAX_MESSAGE_BYTES
from tests.kafka_helpers import (
    PipelineEnv,
    assert_ledger_kept,
    assert_pipeline_consistent,
    incident_stream,
    jsonl_bytes,
    publish_messages,
    read_model_count,
    read_topic,
    running,
    wait_until,
)

pytestmark = pytest.mark.integration

AS_OF = "2030-01-01T00:00:00Z"


def test_published_messages_reach_store_events_topic_and_read_models(
    pipeline: PipelineEnv, tmp_path: Path
) -> None:
    messages = incident_stream(600)
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(jsonl_bytes(messages)) + b"\n")
    with running(pipeline.serve()) as serve:
        done = pipeline.cli("publish", str(source))
        assert done.returncode == 0, done.stderr.decode()
        assert b"published 600 messages" in done.stdout
        figures = assert_pipeline_consistent(pipeline, {m["message_id"] for m in messages})
        assert figures["events"] == 600
        assert serve.terminate() == 0
    events = [e["event"] for e in serve.log_events()]
    assert "health" in events and events[-1] == "serve_stopped"
    for command in (["sla", "--as-of", AS_OF], ["audit", messages[0]["incident_id"]]):
        from_store = pipeline.cli(*command, "--format", "json")
        from_read_model = pipeline.cli(*command, "--format", "json", "--from-read-model")
        assert from_store.returncode == 0, from_store.stderr.decode()
        assert json.loads(from_store.stdout) == json.loads(from_read_model.stdout)
    customer = pipeline.cli("sla", "--as-of", AS_OF, "--customer", "brightcall", "--format", "json",
                            "--from-read-model")  # fmt: skip
    assert {s["customer"] for s in json.loads(customer.stdout)} == {"brightcall"}
    assert_ledger_kept(pipeline)


def test_deleted_read_model_is_rebuilt_from_the_events_topic(pipeline: PipelineEnv) -> None:
    messages = incident_stream(300)
    with running(pipeline.serve()) as serve:
        publish_messages(
            pipeline.kafka.bootstrap, pipeline.topics["inbound"], jsonl_bytes(messages)
        )
        assert_pipeline_consistent(pipeline, {m["message_id"] for m in messages})
        serve.terminate()
    path = Path(pipeline.read_model.removeprefix("sqlite:///"))
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    with running(pipeline.serve("rebuild", "--workers", "projections")) as serve:
        assert wait_until(lambda: read_model_count(pipeline.read_model) == 300, 60)
        assert_pipeline_consistent(pipeline, {m["message_id"] for m in messages})
        serve.terminate()


def test_bad_messages_are_dead_lettered_with_codes_and_the_consumer_keeps_going(
    pipeline: PipelineEnv,
) -> None:
    good = incident_stream(40)
    valid = jsonl_bytes(good)
    oversize = json.dumps(
        {
            **good[0],
            "message_id": "big",
            "data": {**good[0]["data"], "description": "x" * MAX_MESSAGE_BYTES},
        }
    ).encode()
    old_schema = {"schema": "slatrail.incident/v0", "incident_id": good[0]["incident_id"]}
    no_actor = {k: v for k, v in good[1].items() if k != "actor"} | {"message_id": "noactor"}
    bad = {
        b"\x80\x81 not utf-8": "invalid_encoding",
        b"{not json": "invalid_json",
        b'"just a string"': "not_an_object",
        json.dumps(old_schema).encode(): "unsupported_schema",
        json.dumps({**good[1], "message_id": "extra", "extra": 1}).encode(): "unknown_field",
        json.dumps(no_actor).encode(): "missing_field",
        oversize: "too_large",
    }
    stream = valid[:20] + list(bad) + valid[20:]
    with running(pipeline.serve("inbound", "--workers", "inbound")) as serve:
        publish_messages(pipeline.kafka.bootstrap, pipeline.topics["inbound"], stream)
        rejected = read_topic(
            pipeline.kafka.bootstrap, pipeline.topics["rejected"], expect=len(bad)
        )
        letters = [json.loads(r.value) for r in rejected]
        assert sorted(d["code"] for d in letters) == sorted(bad.values())
        for record, letter in zip(rejected, letters, strict=True):
            assert letter["reason"] and letter["rejected_at"].endswith("Z")
            assert letter["topic"] == pipeline.topics["inbound"]
            assert (letter["message"], letter["raw"], letter.get("raw_base64")) != (
                None,
                None,
                None,
            )
            if letter["incident_id"]:
                assert record.key == letter["incident_id"].encode()
        too_large = next(d for d in letters if d["code"] == "too_large")
        assert len(too_large["message"]["data"]["description"]) == MAX_MESSAGE_BYTES
        from tests.kafka_helpers import event_count

        assert wait_until(lambda: event_count(pipeline.store) == 40, 30)
        assert serve.proc.poll() is None
        serve.terminate()


def test_publish_refuses_nothing_it_can_key_and_reports_counts(
    pipeline_factory: Callable[..., PipelineEnv], tmp_path: Path
) -> None:
    pipe = pipeline_factory()
    source = tmp_path / "mixed.jsonl"
    source.write_bytes(b'{"incident_id":"K-1","oops"\n\nnot json\n{"incident_id":"K-2"}\n')
    done = pipe.cli("publish", str(source), "--topic", pipe.topics["inbound"], "--format", "json")
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout)
    assert summary["published"] == 3 and summary["without_key"] == 1
    records = read_topic(pipe.kafka.bootstrap, pipe.topics["inbound"], expect=3)
    assert sorted(r.key or b"" for r in records) == [b"", b"K-1", b"K-2"]
