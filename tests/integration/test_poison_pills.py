"""Issue 9 §1: one bad message never stops, loses or repeats anything, on a real store.

Each poison pill gets one specific code and one strict-JSON dead letter; the lines around it are
recorded once. `SlatrailApplication.record` falls back to one message at a time when a batch
fails in an unforeseen way and refuses only the culprit (`unprocessable`).
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slatrail.application.service import SlatrailApplication
from slatrail.infra.bootstrap import Container
from slatrail.infra.commands.replay import replay
from slatrail.infra.deadletters import DEAD_LETTER_FORMAT
from slatrail.infra.ingest import ingest_lines
from slatrail.infra.settings import Settings
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from slatrail.projections.read_models import READ_MODELS
from tests.builders import CONTRACTS_TOML, contracts_from, line, reported_data, utc, wire

pytestmark = pytest.mark.integration

T0 = utc(2026, 3, 2, 9)
NOW = utc(2026, 3, 3)


def strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"dead letter holds the non-JSON literal {name}")

    return json.loads(text, parse_constant=refuse)


def good(n: int) -> dict[str, Any]:
    return wire("reported", T0, reported_data(), incident_id=f"G-{n}", message_id=f"G-{n}")


def poison() -> list[tuple[bytes, str, str]]:
    """(line, expected code, expected kind of original in the dead letter)."""
    base = line(wire("reported", T0, reported_data(), incident_id="P", message_id="P-1"))
    resolved = wire("resolved", T0, {"resolution": "x"}, incident_id="P", message_id="P-2")

    def with_data(message: dict[str, Any], **data: Any) -> bytes:
        return line({**message, "data": {**message["data"], **data}})

    reported = json.loads(base)
    return [
        (base.replace(b'"Calls drop after 30 s"', b'"\\ud800"'), "invalid_encoding", "raw"),
        (base.replace(b'"li.wei"', b'"\\udc00"'), "invalid_encoding", "raw"),
        (base.replace(b'"actor"', b'"\\ud800"'), "invalid_encoding", "raw"),
        (
            with_data(reported, impact_started_at="0001-01-01T00:00:00+14:00"),
            "invalid_field",
            "message",
        ),
        (
            with_data(resolved, service_restored_at="0001-01-01T00:00:00+01:00"),
            "invalid_field",
            "message",
        ),
        (
            line({**reported, "occurred_at": "0001-01-01T00:00:00+14:00"}),
            "invalid_field",
            "message",
        ),
        (
            line(wire("escalated", T0, {"level": 2, "reason": "r"})).replace(b"2,", b"NaN,"),
            "invalid_json",
            "raw",
        ),
        (base.replace(b"Calls drop", b"Calls \\u0000drop"), "invalid_field", "message"),
        (base.replace(b"Calls drop", b"Calls \xff\xfe drop"), "invalid_encoding", "raw_base64"),
        (base[:-1] + b', "actor": "x"}', "duplicate_field", "raw"),
    ]


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def app(store_url: str) -> Iterator[SlatrailApplication]:
    application = open_application(store_url, contracts_from())
    yield application
    application.close()


def test_ingest_dead_letters_every_poison_pill_and_records_every_good_line(
    tmp_path: Path, store_url: str
) -> None:
    pills = poison()
    lines: list[bytes] = []
    for n, (pill, _, _) in enumerate(pills):
        lines += [line(good(n)), pill]
    source = tmp_path / "poison.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(CONTRACTS_TOML)
    slatrail = Path(sys.executable).parent / "slatrail"
    done = subprocess.run(
        [str(slatrail), "--store", store_url, "--contracts", str(contracts), "ingest",
         str(source), "--format", "json"],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    assert done.returncode == 1
    counts = json.loads(done.stdout)
    assert (counts["accepted"], counts["rejected"]) == (len(pills), len(pills))
    letters = [
        strict_json(text)
        for text in (tmp_path / "poison.rejected.jsonl").read_text("utf-8").splitlines()
    ]
    assert [letter["line"] for letter in letters] == [2 * n + 2 for n in range(len(pills))]
    for letter, (pill, code, kind) in zip(letters, pills, strict=True):
        assert letter["dead_letter"] == DEAD_LETTER_FORMAT
        assert letter["code"] == code, letter
        held = {k: letter[k] for k in ("message", "raw", "raw_base64") if letter[k] is not None}
        assert list(held) == [kind], letter
        if kind == "raw_base64":
            assert base64.b64decode(letter["raw_base64"]) == pill
        elif kind == "raw":
            assert letter["raw"].encode("utf-8") == pill
        else:
            assert letter["message"] == json.loads(pill)
    app = open_application(store_url, contracts_from())
    try:
        ids = [event.message_id for _, event in app.all_events()]
    finally:
        app.close()
    assert sorted(ids) == sorted(f"G-{n}" for n in range(len(pills)))


def test_a_batch_that_fails_unexpectedly_refuses_only_the_culprit(
    app: SlatrailApplication,
) -> None:
    reported = decode(line(good(1)))
    triaged = decode(line(wire("triaged", T0, {"priority": "P1"}, incident_id="G-1")))
    acknowledged = decode(line(wire("acknowledged", T0, incident_id="G-1")))
    other = decode(line(good(2)))
    message, obj = decode(line(wire("reported", T0, reported_data(), incident_id="X")))
    culprit = (message, {**obj, "n": float("nan")})  # its fingerprint cannot be computed
    outcomes = app.record([reported, triaged, culprit, acknowledged, other], now=NOW)
    assert [o.status for o in outcomes] == ["accepted"] * 2 + ["rejected"] + ["accepted"] * 2
    assert outcomes[2].code == "unprocessable"
    assert outcomes[2].incident_id == "X" and outcomes[2].message_id == message.message_id
    assert outcomes[2].reason is not None and "ValueError" in outcomes[2].reason
    assert "Traceback" not in outcomes[2].reason
    events = app.incident_events("G-1")
    assert [(e.position, str(e.type)) for e in events] == [
        (1, "reported"),
        (2, "triaged"),
        (3, "acknowledged"),
    ]
    assert [e.message_id for e in app.incident_events("G-2")] == ["G-2"]
    assert app.incident_events("X") == []
    # The next batch goes on from the stored state: nothing repeated, nothing lost.
    again = app.record([reported, acknowledged, other], now=NOW)
    assert [o.status for o in again] == ["duplicate"] * 3


def test_store_trouble_is_raised_not_turned_into_dead_letters(
    app: SlatrailApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventsourcing.persistence import OperationalError

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("database is locked")

    monkeypatch.setattr(app.recorder, "insert_events", unreachable)  # the store itself
    with pytest.raises(OperationalError):
        app.record([decode(line(good(1)))], now=NOW)
    monkeypatch.undo()
    assert [o.status for o in app.record([decode(line(good(1)))], now=NOW)] == ["accepted"]


def test_a_nul_message_is_refused_and_read_models_rebuild_on_postgresql(
    postgres_database_factory: Any, tmp_path: Path
) -> None:
    store_url = postgres_database_factory("nulstore")
    read_url = postgres_database_factory("nulread")
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(CONTRACTS_TOML)
    container = Container(Settings(store=store_url, read_model=read_url, contracts=contracts))
    try:
        nul_title = wire("reported", T0, reported_data(title="a\x00b"), incident_id="N-1")
        nul_actor = wire("reported", T0, reported_data(), incident_id="N-2", actor="a\x00")
        nul_item = wire(
            "postmortem_published", T0,
            {"summary": "s", "root_cause": "r", "action_items": ["x\x00"]},
        )  # fmt: skip
        lines = [line(good(0)), line(nul_title), line(good(1)), line(nul_actor)]
        lines += [line(nul_item), line(good(2))]
        dead = io.StringIO()
        counts = ingest_lines(lines, container.app, lambda: NOW, dead)
        assert (counts.accepted, counts.by_code) == (3, {"invalid_field": 3})
        letters = [strict_json(text) for text in dead.getvalue().splitlines()]
        assert [letter["reason"].split(":")[0] for letter in letters] == [
            "data.title",
            "actor",
            "data.action_items.0",
        ]
        result = replay(container.app, container.read_models)
        assert result.events == 3
        for name in READ_MODELS:
            assert container.read_models.counts(name) == (3, 3)
    finally:
        container.close()


def test_facts_that_would_rewrite_money_are_dead_lettered_by_the_store(
    app: SlatrailApplication,
) -> None:
    november = utc(2026, 11, 10, 9)
    old_impact = wire(
        "reported", november, reported_data(outage=True, impact_started_at="1970-01-01T00:00:00Z"),
        incident_id="M-1",
    )  # fmt: skip
    outage = wire("reported", november, reported_data(outage=True), incident_id="M-2")
    outcomes = app.record([decode(line(old_impact)), decode(line(outage))], now=november)
    assert [(o.status, o.code) for o in outcomes] == [
        ("rejected", "invalid_field"),
        ("accepted", None),
    ]
    assert "limits.max_impact_lead" in (outcomes[0].reason or "")
    app._incidents.clear()  # judged on the stored history, not a cached aggregate
    early = wire(
        "resolved", november, {"resolution": "x", "service_restored_at": "2026-11-01T00:00:00Z"},
        incident_id="M-2",
    )  # fmt: skip
    [refused] = app.record([decode(line(early))], now=november)
    assert (refused.status, refused.code) == ("rejected", "invalid_field")
    assert "data.service_restored_at" in (refused.reason or "")
    assert [str(e.type) for e in app.incident_events("M-2")] == ["reported"]


def test_serve_dead_letters_poison_pills_once_and_records_the_rest(pipeline: Any) -> None:
    """On the real broker through `slatrail serve`: the worker neither raises nor stalls, each
    poison pill gets one dead letter, the good messages around them are recorded."""
    from tests.kafka_helpers import (
        event_count,
        incident_stream,
        jsonl_bytes,
        publish_messages,
        read_topic,
        running,
        wait_until,
    )

    good_messages = incident_stream(30)
    good_lines = jsonl_bytes(good_messages)
    pills = poison()
    stream = good_lines[:10] + [p for p, _, _ in pills] + good_lines[10:]
    with running(pipeline.serve("inbound", "--workers", "inbound")) as serve:
        publish_messages(pipeline.kafka.bootstrap, pipeline.topics["inbound"], stream)
        assert wait_until(lambda: event_count(pipeline.store) == 30, 60)
        rejected = read_topic(
            pipeline.kafka.bootstrap, pipeline.topics["rejected"], expect=len(pills)
        )
        time.sleep(2)  # a re-sent batch would add dead letters now
        rejected = read_topic(pipeline.kafka.bootstrap, pipeline.topics["rejected"])
        assert serve.proc.poll() is None, serve.log_text()[-3000:]
        serve.terminate()
    letters = [strict_json(r.value.decode("utf-8")) for r in rejected]
    assert sorted(letter["code"] for letter in letters) == sorted(code for _, code, _ in pills)
    assert all(letter["dead_letter"] == DEAD_LETTER_FORMAT for letter in letters)
    assert "Traceback" not in serve.log_text()
