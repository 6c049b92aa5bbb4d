"""Real publishers on the real broker: every codec, partitions that cannot be decoded, messages
of one incident spread over partitions (parking), keys that are not the incident_id.

`slatrail serve --threads --workers inbound` runs as a subprocess; publishers are kafka-python
producers with `compression_type=` and explicit partitions (what a foreign partitioner does).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kafka_helpers import (
    PipelineEnv,
    ServeProcess,
    event_count,
    incident_stream,
    open_store,
    producer,
    read_topic,
    running,
    wait_until,
)

pytestmark = pytest.mark.integration

CODECS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}  # Kafka's codec ids


def inbound_serve(pipe: PipelineEnv, name: str = "inbound", **env: str) -> ServeProcess:
    serve = pipe.serve(name, "--threads", "--workers", "inbound", **env)
    topic = pipe.topics["inbound"]
    assert wait_until(lambda: _holds(serve, topic), 40), serve.log_text()[-3000:]
    return serve


def _holds(serve: ServeProcess, topic: str) -> bool:
    return any(
        e["event"] == "partitions_assigned"
        and any(p.startswith(topic + ":") for p in e["partitions"])
        for e in serve.log_events()
    )


def health(serve: ServeProcess, worker: str = "inbound") -> list[dict[str, Any]]:
    return [e for e in serve.log_events() if e["event"] == "health" and e["worker"] == worker]


def send(
    bootstrap: str,
    topic: str,
    messages: list[dict[str, Any]],
    *,
    partition: int | None = None,
    key: Any = "incident",
    **config: Any,
) -> None:
    client = producer(bootstrap, linger_ms=200, **config)
    try:
        for message in messages:
            body = json.dumps(message, separators=(",", ":")).encode()
            k = message["incident_id"].encode() if key == "incident" else key
            client.send(topic, value=body, key=k, partition=partition)
        client.flush(timeout=60)
    finally:
        client.close()


def batch_codecs(bootstrap: str, topic: str, expect: int) -> set[int]:
    """The compression of every batch stored in `topic` (read raw; observation only)."""
    import kafka.record.default_records as records

    seen: set[int] = set()
    original = records.DefaultRecordBatch._maybe_uncompress

    def spy(self: Any) -> Any:
        seen.add(self.compression_type)
        return original(self)

    records.DefaultRecordBatch._maybe_uncompress = spy  # type: ignore[method-assign]
    try:
        read_topic(bootstrap, topic, expect=expect)
    finally:
        records.DefaultRecordBatch._maybe_uncompress = original  # type: ignore[method-assign]
    return seen


def recorded_ids(store: str) -> list[str]:
    app = open_store(store)
    try:
        return [event.message_id for _, event in app.all_events()]
    finally:
        app.close()


def histories(store: str) -> dict[str, list[str]]:
    app = open_store(store)
    try:
        return {i: [e.type.value for e in h] for i, h in app.histories().items()}
    finally:
        app.close()


# -- codecs -----------------------------------------------------------------------------------


def test_batches_in_every_codec_are_recorded(pipeline: PipelineEnv) -> None:
    by_codec = {codec: incident_stream(100, prefix=f"C{codec}") for codec in CODECS}
    everything = [m for messages in by_codec.values() for m in messages]
    topic = pipeline.topics["inbound"]
    with running(inbound_serve(pipeline)) as serve:
        for codec, messages in by_codec.items():
            send(pipeline.kafka.bootstrap, topic, messages, compression_type=codec)
        assert wait_until(lambda: event_count(pipeline.store) >= len(everything), 60), (
            serve.log_text()[-3000:]
        )
        time.sleep(2.5)  # one more health line
        assert serve.terminate() == 0
    ids = recorded_ids(pipeline.store)
    assert sorted(ids) == sorted(m["message_id"] for m in everything)
    # The publishers really sent batches in each codec.
    assert set(CODECS.values()) <= batch_codecs(pipeline.kafka.bootstrap, topic, len(everything))
    last = health(serve)[-1]
    assert last["stalled_partitions"] == [] and last["rejected"] == 0
    assert not [
        e for e in serve.log_events() if e["event"] in ("worker_failed", "partition_stalled")
    ]


# -- a batch that cannot be decoded -----------------------------------------------------------


@pytest.fixture
def without_zstd(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a process in which the zstd codec is not installed."""
    hide = tmp_path / "no-zstd"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['zstandard'] = None\n")
    yield {"PYTHONPATH": os.pathsep.join([str(hide), os.environ.get("PYTHONPATH", "")])}


def test_a_batch_that_cannot_be_decoded_stalls_its_partition_loudly_and_the_others_go_on(
    pipeline: PipelineEnv, without_zstd: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import kafka.record.default_records as records

    bootstrap, topic = pipeline.kafka.bootstrap, pipeline.topics["inbound"]
    plain = {p: incident_stream(10, per_incident=1, prefix=f"P{p}") for p in range(4)}
    zstd = incident_stream(30, per_incident=1, prefix="Z")
    corrupt = incident_stream(30, per_incident=1, prefix="X")
    serve = inbound_serve(pipeline, "no-zstd", **without_zstd)
    with running(serve):
        for p in range(4):
            send(bootstrap, topic, plain[p][:5], partition=p)
        send(bootstrap, topic, zstd, partition=1, compression_type="zstd")  # offsets 5..34
        with monkeypatch.context() as patch:  # a gzip batch whose payload is not gzip
            patch.setattr(records, "gzip_encode", lambda data, *a, **k: b"\x1f\x8b\x08\x00junk")
            send(bootstrap, topic, corrupt, partition=2, compression_type="gzip")
        for p in range(4):
            send(bootstrap, topic, plain[p][5:], partition=p)
        # partitions 0 and 3 whole, 1 and 2 up to their bad batch: 10 + 10 + 5 + 5
        assert wait_until(lambda: event_count(pipeline.store) >= 30, 60)

        def stalled() -> list[dict[str, Any]]:
            lines = health(serve)
            return lines[-1]["stalled_partitions"] if lines else []

        assert wait_until(lambda: len(stalled()) == 2, 30), serve.log_text()[-3000:]
        time.sleep(1)
        assert event_count(pipeline.store) == 30
        last = health(serve)[-1]
        assert serve.proc.poll() is None
    assert last["state"] == "stalled"
    assert f"{topic}:1 stopped at offset 5" in last["reason"]
    assert f"{topic}:2 stopped at offset 5" in last["reason"]
    by_partition = {s["partition"]: s for s in last["stalled_partitions"]}
    assert by_partition[1]["offset"] == 5 and "zstd" in by_partition[1]["error"]
    assert by_partition[2]["offset"] == 5 and "error" in by_partition[2]["error"].lower()
    assert last["lag"] >= 30 + 30  # at least the stalled batches
    assert last["restarts"] == 0  # the worker did not crash-loop: only two partitions stopped
    assert {(e["partition"], e["offset"]) for e in serve.log_events()
            if e["event"] == "partition_stalled"} == {(1, 5), (2, 5)}  # fmt: skip
    assert read_topic(bootstrap, pipeline.topics["rejected"], timeout=5) == []  # nothing skipped
    # With the codec installed the zstd batch and what follows are read; the corrupt batch
    # still holds its partition (and only it).
    with running(inbound_serve(pipeline, "with-zstd")) as serve:
        assert wait_until(lambda: event_count(pipeline.store) >= 30 + 35, 60)
        time.sleep(3)
        assert event_count(pipeline.store) == 65
        last = health(serve)[-1]
        assert [s["partition"] for s in last["stalled_partitions"]] == [2]
    ids = set(recorded_ids(pipeline.store))
    assert {m["message_id"] for m in zstd} <= ids
    assert not {m["message_id"] for m in corrupt} & ids


# -- parking ----------------------------------------------------------------------------------


def spread(pipe: PipelineEnv, messages: list[dict[str, Any]], reported: bool) -> None:
    """Each incident's `reported` on partition i % 4, its other messages on (i + 1) % 4."""
    by_partition: dict[int, list[dict[str, Any]]] = {}
    for message in messages:
        if (message["type"] == "reported") != reported:
            continue
        number = int(message["incident_id"].rsplit("-", 1)[1])
        partition = (number + (0 if reported else 1)) % pipe.partitions
        by_partition.setdefault(partition, []).append(message)
    for partition, chunk in by_partition.items():
        send(pipe.kafka.bootstrap, pipe.topics["inbound"], chunk, partition=partition)


def expected_types(messages: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for message in messages:
        out.setdefault(message["incident_id"], []).append(message["type"])
    return out


def parked_count(serve: ServeProcess) -> int:
    return sum(1 for e in serve.log_events() if e["event"] == "message_parked")


def test_messages_of_one_incident_spread_over_partitions_are_all_recorded_in_order(
    pipeline: PipelineEnv,
) -> None:
    messages = incident_stream(120, per_incident=4, width=30)  # 30 incidents
    with running(inbound_serve(pipeline)) as serve:
        spread(pipeline, messages, reported=False)  # triaged & co. first: their incident is unknown
        assert wait_until(lambda: parked_count(serve) >= 90, 30), serve.log_text()[-3000:]
        assert event_count(pipeline.store) == 0
        spread(pipeline, messages, reported=True)
        assert wait_until(lambda: event_count(pipeline.store) >= 120, 90), serve.log_text()[-3000:]
        time.sleep(2.5)
        last = health(serve)[-1]
        assert serve.terminate() == 0
    assert histories(pipeline.store) == expected_types(messages)
    assert read_topic(pipeline.kafka.bootstrap, pipeline.topics["rejected"], timeout=5) == []
    assert last["parked"] == 0 and last["unparked"] == 90 and last["rejected"] == 0


def test_a_message_whose_incident_never_appears_is_dead_lettered_after_the_bound(
    pipeline: PipelineEnv,
) -> None:
    _, triaged = incident_stream(2, per_incident=2)
    with running(inbound_serve(pipeline, SLATRAIL_PARK_TIMEOUT_S="4")):
        sent = time.time()
        send(pipeline.kafka.bootstrap, pipeline.topics["inbound"], [triaged])
        [record] = read_topic(pipeline.kafka.bootstrap, pipeline.topics["rejected"], expect=1)
        time.sleep(6)  # nothing more comes
        assert len(read_topic(pipeline.kafka.bootstrap, pipeline.topics["rejected"])) == 1
    letter = json.loads(record.value)
    assert letter["code"] == "first_event_not_reported"
    assert letter["message"] == triaged and letter["topic"] == pipeline.topics["inbound"]
    assert record.timestamp / 1000 - sent >= 4
    parking = letter["parking"]
    assert parking["timeout_s"] == 4 and parking["attempts"] >= 3
    assert parking["retry_topic"] == pipeline.topics["retry"]
    assert len(parking["history"]) == parking["attempts"] + 1
    assert event_count(pipeline.store) == 0


def test_serve_killed_while_messages_are_parked_loses_nothing_and_records_nothing_twice(
    pipeline: PipelineEnv,
) -> None:
    messages = incident_stream(160, per_incident=4, width=40)  # 40 incidents
    first = inbound_serve(pipeline, "first")
    spread(pipeline, messages, reported=False)
    assert wait_until(lambda: parked_count(first) >= 120, 30), first.log_text()[-3000:]
    first.kill9()
    spread(pipeline, messages, reported=True)
    second = inbound_serve(pipeline, "second")
    time.sleep(1.5)  # kill again while it re-reads and re-submits the parked messages
    second.kill9()
    with running(inbound_serve(pipeline, "third")) as third:
        assert wait_until(lambda: event_count(pipeline.store) >= 160, 90), third.log_text()[-3000:]
        time.sleep(3)
        assert third.terminate() == 0
    ids = recorded_ids(pipeline.store)
    assert len(ids) == len(set(ids)) == 160
    assert histories(pipeline.store) == expected_types(messages)
    assert read_topic(pipeline.kafka.bootstrap, pipeline.topics["rejected"], timeout=5) == []


# -- keys -------------------------------------------------------------------------------------


def test_a_key_that_differs_from_the_incident_id_is_recorded_counted_and_logged(
    pipeline: PipelineEnv,
) -> None:
    keyed, foreign, unkeyed = (incident_stream(5, per_incident=1, prefix=p) for p in "ABC")
    bootstrap, topic = pipeline.kafka.bootstrap, pipeline.topics["inbound"]
    with running(inbound_serve(pipeline)) as serve:
        send(bootstrap, topic, keyed)
        send(bootstrap, topic, foreign, key=b"not-the-incident")
        send(bootstrap, topic, unkeyed, key=None)
        assert wait_until(lambda: event_count(pipeline.store) >= 15, 60)
        time.sleep(2.5)
        last = health(serve)[-1]
    assert last["key_mismatch"] == 10 and last["accepted"] == 15
    logged = [e for e in serve.log_events() if e["event"] == "key_mismatch"]
    assert len(logged) == 10
    assert {e["key"] for e in logged} == {"not-the-incident", None}
    assert all(e["topic"] == topic and e["offset"] >= 0 and "partition" in e for e in logged)


def test_kafka_source_finds_the_partition_it_cannot_decode_even_by_probing(
    pipeline: PipelineEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`KafkaSource` itself: the culprit from kafka-python's state, and the fallback that reads
    each partition alone, both leave every other partition where it was."""
    import kafka.codec

    from slatrail.infra.kafka import KafkaClients
    from slatrail.infra.settings import Settings

    settings = Settings(**pipeline.settings_overrides())
    clients = KafkaClients(settings)
    topic = pipeline.topics["inbound"]
    clients.ensure_topics([topic])
    bootstrap = pipeline.kafka.bootstrap
    send(bootstrap, topic, incident_stream(5, per_incident=1, prefix="A"), partition=0)
    send(bootstrap, topic, incident_stream(3, per_incident=1, prefix="B"), partition=1)
    send(bootstrap, topic, incident_stream(30, per_incident=1, prefix="Z"), partition=1,
         compression_type="zstd")  # fmt: skip
    monkeypatch.setattr(kafka.codec, "zstd", None)  # this process has no zstd codec now
    source = clients.source([topic], pipeline.groups["inbound"])
    try:
        got: list[Any] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (source.stalled() and len(got) >= 8):
            got.extend(source.poll(0.3, 100))
        assert sorted((r.partition, r.offset) for r in got) == [
            *((0, o) for o in range(5)), *((1, o) for o in range(3))]  # fmt: skip
        [(where, stall)] = source.stalled().items()
        assert where == (topic, 1) and stall.offset == 3 and "zstd" in stall.error
        # The fallback, on its own: resume the partition, and find it again by probing.
        from kafka import TopicPartition
        from kafka.errors import UnsupportedCodecError

        source.consumer.resume(TopicPartition(topic, 1))
        assert source._probe(UnsupportedCodecError("zstd")) == TopicPartition(topic, 1)
        assert source.consumer.position(TopicPartition(topic, 0)) == 5
        assert source.consumer.position(TopicPartition(topic, 1)) == 3
        # Tried again periodically: it fails again, loudly, and stays where it was.
        import slatrail.infra.kafka as kafka_module

        monkeypatch.setattr(kafka_module, "STALL_RETRY_S", 0.3)
        stalls: list[int] = []
        original = source._stall
        monkeypatch.setattr(source, "_stall", lambda e: (stalls.append(1), original(e)))
        source.consumer.pause(TopicPartition(topic, 1))
        end = time.monotonic() + 4
        while time.monotonic() < end:
            assert source.poll(0.2, 100) == []
        assert len(stalls) >= 3
        [(where, again)] = source.stalled().items()
        assert where == (topic, 1) and again.offset == 3 and again.since == stall.since
    finally:
        source.close()


# -- health -------------------------------------------------------------------------------------


def _caught_up(line: dict[str, Any], accepted: int) -> bool:
    return bool(line["accepted"] == accepted and line["lag"] == 0)


def test_health_tells_the_truth_while_the_inbound_worker_fails_again_and_again(
    pipeline: PipelineEnv,
) -> None:
    """The store refuses writes (another process holds its write lock): the inbound worker
    fails at every batch. Health must say so — never `running` — with a back-off that grows;
    once the store is free again it records everything (and is `degraded` for a minute: it
    failed recently)."""
    import sqlite3

    messages = incident_stream(40, per_incident=1)
    serve = inbound_serve(pipeline, SLATRAIL_HEALTH_INTERVAL_S="0.5")
    with running(serve):
        time.sleep(1.5)
        assert health(serve)[-1]["state"] == "running"
        lock = sqlite3.connect(pipeline.store.removeprefix("sqlite:///"), timeout=30)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            send(pipeline.kafka.bootstrap, pipeline.topics["inbound"], messages)

            def failures() -> list[dict[str, Any]]:
                return [e for e in serve.log_events() if e["event"] == "worker_failed"]

            assert wait_until(lambda: len(failures()) >= 4, 120), serve.log_text()[-3000:]
            first_failure = failures()[0]["timestamp"]
            time.sleep(1)
            during = [e for e in health(serve) if e["timestamp"] > first_failure]
        finally:
            lock.rollback()
            lock.close()
        assert wait_until(lambda: event_count(pipeline.store) >= 40, 90)
        # a health line can fall between recording a batch and committing its offsets: the
        # recovery is the first line with everything accepted and nothing left to read
        assert wait_until(lambda: _caught_up(health(serve)[-1], 40), 30), health(serve)[-3:]
        recovered = health(serve)[-1]
    delays = [e["restart_in_s"] for e in failures()]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert during and all(e["state"] != "running" for e in during)
    assert during[-1]["state"] == "stalled" and "failed" in during[-1]["reason"]
    assert all(e["lag"] != 0 for e in during)  # never "lag 0" while it cannot record
    # Recovered: it records again, and says for a minute that it failed recently.
    assert recovered["state"] == "degraded" and "s ago" in recovered["reason"]
    assert recovered["lag"] == 0 and event_count(pipeline.store) == 40
