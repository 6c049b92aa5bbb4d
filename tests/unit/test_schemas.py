"""The checked-in contracts under schemas/: generated from the models, and true to the code.

* the files are exactly what `python -m slatrail.infra.schemas --write schemas` writes
  (drift fails);
* what the code emits (envelopes, dead letters, parked copies, alerts) validates against them,
  and so do valid wire messages, while broken ones fail — schema and model agree;
* the AsyncAPI document validates against the official AsyncAPI 3.0.0 JSON Schema (vendored in
  tests/data/asyncapi from the `@asyncapi/specs` package) and every reference in it resolves.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from slatrail.application.outcomes import Outcome
from slatrail.consumers.inbound import PARKED_SCHEMA, Parked
from slatrail.consumers.streams import Record
from slatrail.domain import errors
from slatrail.domain.errors import InvalidMessageError
from slatrail.domain.model import EventType
from slatrail.infra import schemas
from slatrail.infra.kafka_envelope import decode_envelope, encode_envelope
from slatrail.infra.rejections import dead_letter, rejection_record, truncated_dead_letter
from slatrail.infra.stream_models import (
    REJECTION_CODES,
    Alert,
    EventEnvelope,
    FileDeadLetter,
    KafkaDeadLetter,
)
from slatrail.infra.stream_models import Parked as ParkedModel
from slatrail.infra.wire import decode
from tests.builders import (
    contracts_from,
    line,
    minimal_data,
    record_history,
    reported_data,
    utc,
    wire,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "schemas"
ASYNCAPI_META = ROOT / "tests" / "data" / "asyncapi" / "3.0.0.json"
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER
NOW = utc(2026, 3, 2, 8)


def validator(name: str) -> jsonschema.Draft202012Validator:
    document = json.loads((SCHEMA_DIR / schemas.path_of(name)).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(document, format_checker=FORMATS)


def problems(name: str, instance: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator(name).iter_errors(instance)]


# -- drift -------------------------------------------------------------------------------------


def test_the_checked_in_schemas_are_exactly_what_the_models_generate() -> None:
    expected = schemas.rendered()
    on_disk = {
        str(path.relative_to(SCHEMA_DIR)): path.read_text(encoding="utf-8")
        for path in SCHEMA_DIR.rglob("*.json")
    }
    assert sorted(on_disk) == sorted(expected), (
        "regenerate: python -m slatrail.infra.schemas --write schemas"
    )
    for relative, text in expected.items():
        assert on_disk[relative] == text, (
            f"schemas/{relative} drifted from its model; regenerate with "
            "`python -m slatrail.infra.schemas --write schemas`"
        )


def test_a_model_change_shows_as_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    original = schemas.render

    def changed(document: dict[str, Any]) -> str:
        return original({**document, "description": "changed"})

    monkeypatch.setattr(schemas, "render", changed)
    on_disk = (SCHEMA_DIR / "alert.schema.json").read_text(encoding="utf-8")
    assert schemas.rendered()["alert.schema.json"] != on_disk


def test_every_schema_is_a_valid_draft_2020_12_schema_with_id_title_and_description() -> None:
    ids = set()
    for doc in schemas.SCHEMAS:
        document = json.loads((SCHEMA_DIR / doc.path).read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(document)
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert document["$id"].endswith(doc.path) and document["title"] and document["description"]
        ids.add(document["$id"])
    assert len(ids) == len(schemas.SCHEMAS)
    assert {f"message.{t}" for t in EventType} <= set(schemas.names())


# -- inbound messages --------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", list(EventType))
def test_a_valid_message_of_each_type_passes_its_schema_and_the_decoder(
    event_type: EventType,
) -> None:
    message = wire(str(event_type), NOW, minimal_data(str(event_type)), source="portal")
    decode(line(message))
    assert problems(f"message.{event_type}", message) == []
    assert problems("message", message) == []
    other = next(t for t in EventType if t != event_type)
    assert problems(f"message.{other}", message), "the type is a constant of each schema"


BROKEN: list[tuple[str, dict[str, Any]]] = [
    ("unknown_field", {"extra": 1}),
    ("unsupported_schema", {"schema": "slatrail.incident/v0"}),
    ("naive_timestamp", {"occurred_at": "2026-03-02T08:00:00"}),
    ("invalid_field", {"actor": "   "}),
    ("invalid_field", {"actor": "li\x07wei"}),
    ("invalid_field", {"incident_id": "INC 1"}),
    ("invalid_field", {"message_id": "m" * 129}),
    ("invalid_field", {"occurred_at": "1772442000"}),
]


@pytest.mark.parametrize(("code", "change"), BROKEN)
def test_a_broken_message_fails_both_the_decoder_and_the_schema(
    code: str, change: dict[str, Any]
) -> None:
    message = wire("reported", NOW, reported_data()) | change
    with pytest.raises(InvalidMessageError) as refused:
        decode(line(message))
    assert refused.value.code == code
    assert problems("message.reported", message)
    assert problems("message", message)


def test_accepted_timestamp_forms_pass_the_schema() -> None:
    for form in ("2026-03-02T08:00:00Z", "2026-03-02t08:00:00z", "2026-03-02 08:00:00-00:00",
                 "2026-03-02T09:00:00.1234567+01:00"):  # fmt: skip
        message = wire("reported", form, reported_data())
        decode(line(message))
        assert problems("message.reported", message) == [], form


def test_data_rules_are_in_the_schema() -> None:
    bad_level = wire("escalated", NOW, {"level": 5, "reason": "r"})
    no_reason = wire("reopened", NOW, {})
    extra_data = wire("acknowledged", NOW, {"note": "n", "by": "x"})
    for message in (bad_level, no_reason, extra_data):
        with pytest.raises(InvalidMessageError):
            decode(line(message))
        assert problems(f"message.{message['type']}", message), message


# -- incidents.events --------------------------------------------------------------------------


LIFECYCLE = [
    "triaged", "priority_changed", "acknowledged", "awaiting_customer", "customer_responded",
    "workaround_provided", "escalated", "resolved", "reopened",
]  # fmt: skip


def envelopes() -> list[dict[str, Any]]:
    """One envelope of every event type (optional fields given and left out), as the relay
    encodes them, plus one recorded by redrive."""
    at = NOW + timedelta(minutes=1)
    impact = "2026-03-02T07:30:00+01:00"
    facts = [("reported", NOW, reported_data(description="über — 🚀", impact_started_at=impact))]
    for index, kind in enumerate(LIFECYCLE, start=1):
        facts.append((kind, at + timedelta(minutes=index), minimal_data(kind) or {}))
    later = at + timedelta(hours=1, microseconds=120000)
    facts += [
        ("resolved", later, {"resolution": "fixed", "cause": "customer",
                             "service_restored_at": "2026-03-02T08:30:00.5+00:00"}),
        ("postmortem_published", later, {**(minimal_data("postmortem_published") or {}),
                                         "url": "wiki/pm-1"}),
    ]  # fmt: skip
    events = record_history(facts, contracts_from())
    events.append(replace(events[-1], position=len(events) + 1, redrive="incidents.rejected/2/41"))
    return [json.loads(encode_envelope(n, event)) for n, event in enumerate(events, start=1)]


def test_encoded_envelopes_pass_the_envelope_schema_and_model() -> None:
    for body in envelopes():
        assert problems("envelope", body) == []
        EventEnvelope.model_validate_json(json.dumps(body))
        decode_envelope(json.dumps(body).encode())


def test_the_envelopes_cover_every_event_type() -> None:
    assert {body["type"] for body in envelopes()} == {str(t) for t in EventType}


def test_the_envelope_schema_holds_data_in_its_stored_form() -> None:
    by_type = {body["type"]: body for body in envelopes()}
    reported, acknowledged = by_type["reported"], by_type["acknowledged"]
    assert reported["data"]["impact_started_at"] == "2026-03-02T06:30:00Z"
    for broken in (
        acknowledged | {"data": {"note": None}},  # an absent optional is omitted, not null
        reported | {"data": {k: v for k, v in reported["data"].items() if k != "channel"}},
        reported | {"data": reported["data"] | {"impact_started_at": "2026-03-02T07:30:00+01:00"}},
        by_type["escalated"] | {"data": {"level": 7, "reason": "r"}},
        acknowledged | {"type": "reopened"},  # reopened needs a reason
    ):
        assert problems("envelope", broken), broken


def test_the_envelope_schema_refuses_what_the_code_never_writes() -> None:
    body = envelopes()[0]
    for broken in (
        body | {"extra": 1},
        body | {"hash": "ABC"},
        body | {"occurred_at": "2026-03-02T08:00:00+00:00"},
        body | {"redrive": None},
        {k: v for k, v in body.items() if k != "source"},
    ):
        assert problems("envelope", broken)


# -- dead letters ------------------------------------------------------------------------------


def refusal(raw: bytes) -> Outcome:
    with pytest.raises(InvalidMessageError) as refused:
        decode(raw)
    return Outcome.rejected(refused.value)


RAWS = [
    b"\x80\x81 not utf-8",
    b"{not json",
    b'{"a": 1, "a": 2}',
    b'"just a string"',
    b'{"schema": "slatrail.incident/v1", "incident_id": "INC-1", "\\ud800": 1}',
    line(wire("reported", NOW, reported_data()) | {"extra": 1}),
]


def test_file_dead_letters_pass_the_file_and_union_schemas() -> None:
    for number, raw in enumerate(RAWS, start=1):
        entry = rejection_record(raw, refusal(raw), line=number, rejected_at=NOW)
        assert problems("dead-letter.file", entry) == [], raw
        assert problems("dead-letter", entry) == []
        FileDeadLetter.model_validate_json(json.dumps(entry))


def kafka_record(raw: bytes, key: bytes | None = b"INC-1") -> Record:
    return Record("incidents.inbound", 3, 280, key, raw, (), 1_772_438_400_000)


def test_kafka_dead_letters_full_and_truncated_pass_the_kafka_schema() -> None:
    for raw in RAWS:
        for key in (b"INC-1", None, b"\xff\xfe"):
            record = kafka_record(raw, key)
            for build in (dead_letter, truncated_dead_letter):
                entry = build(record, refusal(raw), NOW)
                assert problems("dead-letter.kafka", entry) == [], (raw, key, build)
                assert problems("dead-letter", entry) == []
                KafkaDeadLetter.model_validate_json(json.dumps(entry))


def test_the_dead_letter_schema_holds_exactly_one_original() -> None:
    raw = b"{not json"
    entry = rejection_record(raw, refusal(raw), line=1, rejected_at=NOW)
    assert problems("dead-letter.file", entry | {"raw_base64": "e25vdA=="})  # two originals
    assert problems("dead-letter.file", entry | {"raw": None})  # none
    assert problems("dead-letter.file", entry | {"code": "nope"})
    assert problems("dead-letter.file", entry | {"dead_letter": "slatrail.dead-letter/v2"})
    kafka = dead_letter(kafka_record(raw), refusal(raw), NOW)
    assert problems("dead-letter.kafka", kafka | {"truncated": True})  # no digest, an original


def test_the_rejection_codes_are_the_documented_ones() -> None:
    table = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = table.split("## Rejection codes", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)
    assert tuple(documented) == REJECTION_CODES
    domain_codes = {
        getattr(errors, name).code
        for name in dir(errors)
        if isinstance(getattr(errors, name), type) and hasattr(getattr(errors, name), "code")
    } - {"rejected"}
    assert domain_codes <= set(REJECTION_CODES)


# -- incidents.retry and incidents.alerts -----------------------------------------------------


def test_parked_envelopes_pass_the_parked_schema() -> None:
    raw = line(wire("triaged", NOW, {"priority": "P2"}))
    for key in (b"INC-1", None):
        origin = Record("incidents.inbound", 1, 7, key, raw, (("h", b"\x00v"),), None)
        parked = Parked(
            park_id="0" * 32, incident_id="INC-1", message_id="m-1", origin=origin,
            first_parked_at=NOW, due_at=NOW + timedelta(seconds=1), attempts=0,
            history=[{"at": "2026-03-02T08:00:00Z", "code": "first_event_not_reported"}],
        )  # fmt: skip
        body = json.loads(parked.envelope())
        assert body["schema"] == PARKED_SCHEMA
        assert problems("parked", body) == []
        ParkedModel.model_validate_json(parked.envelope())
        assert base64.b64decode(body["raw_base64"]) == raw


def test_alert_documents_pass_the_alert_schema() -> None:
    from slatrail.consumers.alert_scheduler import AlertTimer

    contracts = contracts_from()
    timer = AlertTimer(contracts)
    events = record_history([("reported", NOW, reported_data(priority="P1"))], contracts)
    timer.apply(events[0], now=NOW)
    fired = timer.due(NOW + timedelta(days=2))
    assert {a["kind"] for a in fired} == {"at_risk", "breached", "escalated"}
    for alert in fired:
        assert problems("alert", alert) == []
        Alert.model_validate_json(json.dumps(alert))
    assert problems("alert", fired[0] | {"level": 5})


# -- AsyncAPI ----------------------------------------------------------------------------------


def asyncapi() -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / "asyncapi.json").read_text(encoding="utf-8"))


def official() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(ASYNCAPI_META.read_text(encoding="utf-8")))


def test_the_asyncapi_document_validates_against_the_official_asyncapi_3_schema() -> None:
    errors_found = [
        f"{list(e.absolute_path)}: {e.message}" for e in official().iter_errors(asyncapi())
    ]
    assert errors_found == []


def test_the_official_schema_catches_a_broken_asyncapi_document() -> None:
    document = asyncapi()
    document["operations"]["sendAlerts"]["action"] = "publish"  # AsyncAPI 2 wording
    assert list(official().iter_errors(document))
    del document["info"]
    assert list(official().iter_errors(document))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_reference_in_the_asyncapi_document_resolves() -> None:
    document = asyncapi()
    files = set()
    for ref in _refs(document):
        if ref.startswith("#/"):
            target: Any = document
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
        else:
            path = (SCHEMA_DIR / ref).resolve()
            assert path.is_file(), ref
            files.add(path.relative_to(SCHEMA_DIR).as_posix())
    # Every topic's payload schema is referenced, and every operation's messages are its channel's.
    assert files == {doc.path for doc in schemas.SCHEMAS} - {
        "dead-letter.schema.json", "dead-letter/file.schema.json", "incident-message.schema.json"
    }  # fmt: skip
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"]
        assert all(m["$ref"].startswith(channel + "/messages/") for m in operation["messages"]), (
            name
        )
    topics = {c["address"] for c in document["channels"].values()}
    assert topics == {
        f"incidents.{t}"
        for t in ("inbound", "events", "rejected", "alerts", "retry", "checkpoints")
    }


def test_payloads_validate_through_the_asyncapi_references() -> None:
    """A consumer resolving the AsyncAPI document's `$ref`s gets the same schemas."""
    document = asyncapi()
    resources = []
    for doc in schemas.SCHEMAS:
        body = json.loads((SCHEMA_DIR / doc.path).read_text(encoding="utf-8"))
        resources.append((f"file:///schemas/{doc.path}", Resource.from_contents(body)))
    registry: Registry[Any] = Registry().with_resources(resources)
    payload = document["channels"]["events"]["messages"]["envelope"]["payload"]
    assert payload["schemaFormat"] == "application/schema+json;version=draft-2020-12"
    ref = "file:///schemas/" + payload["schema"]["$ref"].removeprefix("./")
    check = jsonschema.Draft202012Validator({"$ref": ref}, registry=registry)
    assert [e.message for e in check.iter_errors(envelopes()[0])] == []
    assert list(check.iter_errors({"schema": "slatrail.event/v1"}))


def test_the_alert_timer_group_in_the_document_is_the_timer_s() -> None:
    from slatrail.infra.asyncapi import ALERT_TIMER_GROUP
    from slatrail.infra.settings import Settings

    assert Settings.model_fields["group_alerts"].default == ALERT_TIMER_GROUP
