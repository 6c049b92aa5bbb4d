"""The JSON Schemas (draft 2020-12) of every message slatrail reads or writes, from the models.

`schemas/` at the top of the repository holds their checked-in copies (and the AsyncAPI document,
`infra.asyncapi`); `python -m slatrail.infra.schemas --write schemas` regenerates them, and a
unit test fails when the models and the files drift. `slatrail schema NAME` prints one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from slatrail.domain import messages
from slatrail.domain.model import EventType
from slatrail.infra.stream_models import (
    UTC_INSTANT,
    Alert,
    AlertCorrection,
    CheckpointMessage,
    EventEnvelope,
    FileDeadLetter,
    KafkaDeadLetter,
    Parked,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_PREFIX = "urn:slatrail:schemas:"

# C0 controls, DEL and C1 controls other than tab, LF and CR: what `messages` refuses in text.
NO_CONTROL = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
NOT_BLANK = "\\S"
TIMESTAMP = messages._RFC3339.pattern.replace(")?$", ")$")


class _MessageSchema(GenerateJsonSchema):
    """pydantic's generator, plus the text rules `domain.messages` checks in its validators."""

    def function_after_schema(
        self, schema: core_schema.AfterValidatorFunctionSchema
    ) -> JsonSchemaValue:
        out = dict(self.generate_inner(schema["schema"]))
        function = schema["function"].get("function")
        if function is messages._no_control_characters:
            _add_pattern(out, NO_CONTROL)
        elif function is messages._not_blank:
            _add_pattern(out, NOT_BLANK)
        return out

    def function_before_schema(
        self, schema: core_schema.BeforeValidatorFunctionSchema
    ) -> JsonSchemaValue:
        out = dict(self.generate_inner(schema["schema"]))
        if schema["function"].get("function") is messages._rfc3339_text:
            # The offset is required (its absence has its own code, `naive_timestamp`); `T`,
            # `t` or a space, `Z` or `z`: wider than `format: date-time`, so no format here.
            out.pop("format", None)
            out["pattern"] = TIMESTAMP
            out["description"] = (
                "RFC 3339 date-time with an offset (Z, z or ±hh:mm; T, t or a space); "
                "converted to UTC, within 1970–9998; more than 6 fractional digits are cut"
            )
        return out


def _add_pattern(schema: dict[str, Any], pattern: str) -> None:
    if "pattern" not in schema:
        schema["pattern"] = pattern
    else:
        schema.setdefault("allOf", []).append({"pattern": pattern})


MESSAGE_MODELS: dict[EventType, type[messages._Message]] = {
    EventType.REPORTED: messages.Reported,
    EventType.TRIAGED: messages.Triaged,
    EventType.PRIORITY_CHANGED: messages.PriorityChanged,
    EventType.ACKNOWLEDGED: messages.Acknowledged,
    EventType.AWAITING_CUSTOMER: messages.AwaitingCustomer,
    EventType.CUSTOMER_RESPONDED: messages.CustomerResponded,
    EventType.WORKAROUND_PROVIDED: messages.WorkaroundProvided,
    EventType.ESCALATED: messages.Escalated,
    EventType.RESOLVED: messages.Resolved,
    EventType.REOPENED: messages.Reopened,
    EventType.POSTMORTEM_PUBLISHED: messages.PostmortemPublished,
}

MESSAGE_MEANING: dict[EventType, str] = {
    EventType.REPORTED: "a customer reported the incident; always an incident's first message",
    EventType.TRIAGED: "the priority was set (or confirmed) by triage",
    EventType.PRIORITY_CHANGED: "the priority changed after triage, with a reason",
    EventType.ACKNOWLEDGED: "support acknowledged the incident (stops the response clock)",
    EventType.AWAITING_CUSTOMER: "support waits for the customer (pauses the clocks)",
    EventType.CUSTOMER_RESPONDED: "the customer answered (resumes the clocks)",
    EventType.WORKAROUND_PROVIDED: "a workaround was provided (may restore service)",
    EventType.ESCALATED: "the incident was escalated by hand to a level",
    EventType.RESOLVED: "the incident was resolved, with its cause",
    EventType.REOPENED: "a resolved incident was reopened",
    EventType.POSTMORTEM_PUBLISHED: "the postmortem was published",
}


@dataclass(frozen=True)
class SchemaDoc:
    """One schema: its name for `slatrail schema`, its file under schemas/ and its builder."""

    name: str
    path: str
    build: Callable[[], dict[str, Any]]


def _document(path: str, title: str, description: str, body: dict[str, Any]) -> dict[str, Any]:
    body = dict(body)
    body.pop("title", None)
    body.pop("description", None)
    return {
        "$schema": DIALECT,
        "$id": ID_PREFIX + path,
        "title": title,
        "description": description,
        **body,
    }


def message_schema(event_type: EventType) -> dict[str, Any]:
    model = MESSAGE_MODELS[event_type]
    path = f"incident-message/{event_type}.schema.json"
    body = model.model_json_schema(by_alias=True, schema_generator=_MessageSchema)
    description = (
        f"`slatrail.incident/v1` message of type `{event_type}`: {MESSAGE_MEANING[event_type]}. "
        "Published to `incidents.inbound` (key: incident_id) or a line of `slatrail ingest`. "
        "Rules across messages (order, transitions, idempotency, contract bounds) are in "
        "schemas/README.md."
    )
    return _document(path, f"slatrail.incident/v1 {event_type}", description, body)


def _model_schema(
    path: str, model: type[BaseModel] | TypeAdapter[Any], title: str, description: str
) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if isinstance(model, TypeAdapter):
            body = model.json_schema(by_alias=True, mode="serialization")
        else:
            body = model.model_json_schema(by_alias=True, mode="serialization")
        return _document(path, title, description, body)

    return build


def stored_data(model: type[BaseModel]) -> dict[str, Any]:
    """The schema of a message's `data` as the event stores it (`_Strict.normalised`): fields
    with a default always present, absent optional fields omitted (never null), timestamps UTC."""
    body = model.model_json_schema(by_alias=True, schema_generator=_MessageSchema)
    required = list(body.get("required", []))
    properties: dict[str, Any] = {}
    for name, prop in body["properties"].items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        default = prop.pop("default", None)
        branches = prop.get("anyOf")
        if branches is not None and {"type": "null"} in branches:
            [prop] = [b for b in branches if b != {"type": "null"}]
        elif default is not None:
            required.append(name)
        if prop.get("pattern") == TIMESTAMP:
            prop = {"type": "string", "format": "date-time", "pattern": UTC_INSTANT,
                    "description": "RFC 3339 in UTC, ending in Z"}  # fmt: skip
        properties[name] = prop
    out: dict[str, Any] = {"type": "object", "additionalProperties": False}
    out["properties"] = properties
    out["required"] = required
    return out


def _any_message() -> dict[str, Any]:
    body = messages.MESSAGE_ADAPTER.json_schema(by_alias=True, schema_generator=_MessageSchema)
    return _document(
        "incident-message.schema.json",
        "slatrail.incident/v1",
        "Any `slatrail.incident/v1` message: one of the eleven event types, chosen by `type` "
        "(the same schemas as incident-message/<type>.schema.json, in one file).",
        body,
    )


def _envelope() -> dict[str, Any]:
    body = EventEnvelope.model_json_schema(by_alias=True, mode="serialization")
    defs = body.setdefault("$defs", {})
    cases = []
    for event_type, model in MESSAGE_MODELS.items():
        data_model = model.model_fields["data"].annotation
        assert isinstance(data_model, type) and issubclass(data_model, BaseModel)
        nested = data_model.model_json_schema(by_alias=True).get("$defs", {})
        defs.update(nested)
        name = f"{data_model.__name__}Stored"
        defs[name] = stored_data(data_model)
        cases.append(
            {
                "if": {"properties": {"type": {"const": str(event_type)}}},
                "then": {"properties": {"data": {"$ref": f"#/$defs/{name}"}}},
            }
        )
    body["allOf"] = cases
    return _document(
        "incident-event.schema.json",
        "slatrail.event/v1",
        "One recorded incident event on `incidents.events` (key: incident_id; headers "
        "`slatrail-notification-id`, `slatrail-schema`). Written by the relay from the "
        "event store, at least once, in order per incident (docs/streaming.md). `data` is the "
        "message's data as stored: defaults applied, absent optionals omitted, timestamps UTC.",
        body,
    )


_DEAD_LETTER = TypeAdapter(
    Annotated[FileDeadLetter | KafkaDeadLetter, Field(description="file or Kafka form")]
)

SCHEMAS: tuple[SchemaDoc, ...] = (
    *(
        SchemaDoc(f"message.{t}", f"incident-message/{t}.schema.json", partial(message_schema, t))
        for t in EventType
    ),
    SchemaDoc("message", "incident-message.schema.json", _any_message),
    SchemaDoc("envelope", "incident-event.schema.json", _envelope),
    SchemaDoc(
        "dead-letter",
        "dead-letter.schema.json",
        _model_schema(
            "dead-letter.schema.json",
            _DEAD_LETTER,
            "slatrail.dead-letter/v1",
            "A refused message, kept whole: a line of `<input>.rejected.jsonl` (file form) or a "
            "record of `incidents.rejected` (Kafka form). Exactly one of message, raw and "
            "raw_base64 holds the original, except in a truncated Kafka letter "
            "(docs/dead-letters.md).",
        ),
    ),
    SchemaDoc(
        "dead-letter.file",
        "dead-letter/file.schema.json",
        _model_schema(
            "dead-letter/file.schema.json",
            FileDeadLetter,
            "slatrail.dead-letter/v1 (file)",
            "A line of `<input>.rejected.jsonl`, written by `slatrail ingest` and by "
            "`slatrail redrive` for what it still refuses (docs/dead-letters.md).",
        ),
    ),
    SchemaDoc(
        "dead-letter.kafka",
        "dead-letter/kafka.schema.json",
        _model_schema(
            "dead-letter/kafka.schema.json",
            KafkaDeadLetter,
            "slatrail.dead-letter/v1 (Kafka)",
            "A record of `incidents.rejected` (key: incident_id when known, else the original "
            "key; header `slatrail-code`): the file form plus where the original was read "
            "(docs/dead-letters.md).",
        ),
    ),
    SchemaDoc(
        "alert",
        "alert.schema.json",
        _model_schema(
            "alert.schema.json",
            Alert,
            "slatrail.alert/v1",
            "An at-risk, breach or escalation alert on `incidents.alerts` (key: incident_id; "
            "header `slatrail-schema`), published at its instant by the alert timer; "
            "`alert_key` is stable, consumers de-duplicate on it (docs/escalation.md).",
        ),
    ),
    SchemaDoc(
        "alert-correction",
        "alert-correction.schema.json",
        _model_schema(
            "alert-correction.schema.json",
            AlertCorrection,
            "slatrail.alert/v1 correction",
            "A correction on `incidents.alerts` (key: incident_id; header `slatrail-schema`): a "
            "late fact removed or moved a crossing already alerted; `corrects` is the original "
            "`alert_key` (docs/reference/topics.md, incidents.alerts).",
        ),
    ),
    SchemaDoc(
        "parked",
        "parked.schema.json",
        _model_schema(
            "parked.schema.json",
            Parked,
            "slatrail.parked/v1",
            "A message waiting on `incidents.retry` (key: incident_id; header `slatrail-schema`) "
            "because its incident did not exist yet; slatrail's own topic, read back by the "
            "inbound consumer (docs/streaming.md, Parking).",
        ),
    ),
    SchemaDoc(
        "checkpoint",
        "checkpoint.schema.json",
        _model_schema(
            "checkpoint.schema.json",
            CheckpointMessage,
            "slatrail.checkpoint/v1",
            "A signed checkpoint of the Merkle log on `incidents.checkpoints` (key: the origin; "
            "header `slatrail-schema`), made periodically by `serve`'s checkpoint worker "
            "(docs/audit.md §9).",
        ),
    ),
)

ASYNCAPI_NAME = "asyncapi"
ASYNCAPI_PATH = "asyncapi.json"


def names() -> list[str]:
    return [doc.name for doc in SCHEMAS] + [ASYNCAPI_NAME]


def build(name: str) -> dict[str, Any]:
    """The document called `name` (KeyError when there is none)."""
    if name == ASYNCAPI_NAME:
        from slatrail.infra.asyncapi import asyncapi_document

        return asyncapi_document()
    for doc in SCHEMAS:
        if doc.name == name:
            return doc.build()
    raise KeyError(name)


def path_of(name: str) -> str:
    if name == ASYNCAPI_NAME:
        return ASYNCAPI_PATH
    return next(doc.path for doc in SCHEMAS if doc.name == name)


def render(document: dict[str, Any]) -> str:
    """The checked-in text of a document: 2-space JSON, UTF-8 as is, one final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """Every file under schemas/ that is generated: relative path → text."""
    return {path_of(name): render(build(name)) for name in names()}


def write(directory: Path) -> list[Path]:
    written = []
    for relative, text in rendered().items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slatrail.infra.schemas")
    parser.add_argument("--write", type=Path, required=True, metavar="DIR")
    args = parser.parse_args(argv)
    for path in write(args.write):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
