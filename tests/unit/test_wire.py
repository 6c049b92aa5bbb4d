"""The wire contract `slatrail.incident/v1` (wire.md): bytes in, a message or a coded refusal."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slatrail.domain.errors import InvalidMessageError
from slatrail.domain.messages import MAX_MESSAGE_BYTES, fingerprint, to_fact
from slatrail.domain.model import EventType
from slatrail.infra.wire import decode
from tests.builders import line, minimal_data, reported_data, utc, wire

T0 = utc(2026, 3, 2, 9)


@pytest.fixture
def message():
    """Factory: a valid message of `type` (defaults to a complete `reported`), then overrides."""

    def make(type: str = "reported", **overrides: Any) -> dict[str, Any]:
        data = overrides.pop("data", minimal_data(type))
        return wire(type, overrides.pop("occurred_at", T0), data, **overrides)

    return make


def rejection(raw: bytes | str | dict[str, Any]) -> InvalidMessageError:
    body = line(raw) if isinstance(raw, dict) else raw
    with pytest.raises(InvalidMessageError) as caught:
        decode(body)
    return caught.value


# -- bytes, JSON, shape ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "type",
    [
        "reported",
        "triaged",
        "priority_changed",
        "acknowledged",
        "awaiting_customer",
        "customer_responded",
        "workaround_provided",
        "escalated",
        "resolved",
        "reopened",
        "postmortem_published",
    ],
)
def test_a_valid_message_of_every_type_decodes_to_its_fact(message, type) -> None:
    decoded, obj = decode(line(message(type)))
    fact = to_fact(decoded)
    assert fact.type is EventType(type)
    assert fact.incident_id == "INC-1"
    assert fact.occurred_at == T0
    assert obj == message(type)


def test_a_field_given_twice_is_rejected_not_silently_collapsed(message) -> None:
    body = json.dumps(message("acknowledged"))[:-1] + ', "actor": "someone-else"}'
    error = rejection(body.encode())
    assert error.code == "duplicate_field"
    assert "'actor'" in error.reason


def test_a_data_field_given_twice_is_rejected(message) -> None:
    body = json.dumps(message("triaged"))
    body = body.replace('"priority": "P2"', '"priority": "P2", "priority": "P1"')
    assert '"priority": "P1"' in body
    error = rejection(body.encode())
    assert error.code == "duplicate_field"
    assert "'priority'" in error.reason


def test_malformed_json_is_rejected_as_invalid_json() -> None:
    error = rejection(b'{"schema": "slatrail.incident/v1", ')
    assert error.code == "invalid_json"
    assert "JSON" in error.reason


def test_bytes_that_are_not_utf8_are_rejected_as_invalid_encoding(message) -> None:
    body = line(message()).replace(b"Calls drop", b"Calls \xff\xfe drop")
    error = rejection(body)
    assert error.code == "invalid_encoding"
    assert "UTF-8" in error.reason


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,  # nested deeper than any parser's recursion limit
        b'{"a":' * 100_000,
        b'{"schema": "slatrail.incident/v1", "n": ' + b"1" * 5000 + b"}",  # a 5000-digit int
    ],
    ids=["deep-array", "deep-object", "huge-integer"],
)
def test_json_no_parser_can_hold_is_rejected_as_invalid_json_not_a_crash(body: bytes) -> None:
    assert rejection(body).code == "invalid_json"


# -- poison pills: each gets one specific code --------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        (b'"Calls drop after 30 s"', b'"\\ud800"', "data.title"),
        (b'"li.wei"', b'"\\ud800"', "actor"),
        (b'"li.wei"', b'"a\\udfffb"', "actor"),  # a lone trailing surrogate
        (b'"li.wei"', b'"\\ud800\\u0041"', "actor"),  # a leading one not followed by a trail
        (b'"acme"', b'"\\uDBFF"', "data.customer"),
        (b'"actor"', b'"\\ud800"', "a key"),
        (b'"slatrail.incident/v1"', b'"\\ud800"', "schema"),
    ],
)
def test_a_lone_surrogate_escape_anywhere_is_rejected_as_invalid_encoding(
    message, old, new, where
) -> None:
    body = line(message())
    assert old in body
    error = rejection(body.replace(old, new, 1))
    assert error.code == "invalid_encoding"
    assert where in error.reason and "surrogate" in error.reason


def test_a_lone_surrogate_in_a_message_without_its_fields_is_still_invalid_encoding() -> None:
    error = rejection(b'{"schema": "slatrail.incident/v1", "actor": "\\ud800"}')
    assert error.code == "invalid_encoding"


def test_a_surrogate_pair_and_an_escaped_backslash_before_u_are_accepted(message) -> None:
    body = line(message()).replace(b'"Calls drop after 30 s"', b'"\\ud83d\\ude00 \\\\ud800"')
    decoded, _ = decode(body)
    assert decoded.data.title == "\U0001f600 \\ud800"


def test_a_str_holding_a_lone_surrogate_is_invalid_encoding_not_a_crash(message) -> None:
    text = json.dumps(message(), ensure_ascii=False).replace("li.wei", "\ud800")
    assert rejection(text).code == "invalid_encoding"


@pytest.mark.parametrize(
    ("type", "field", "value"),
    [
        ("reported", "data.impact_started_at", "0001-01-01T00:00:00+14:00"),
        ("resolved", "data.service_restored_at", "0001-01-01T00:00:00+01:00"),
        ("resolved", "data.service_restored_at", "9999-12-31T23:59:59-01:00"),
        ("reported", "occurred_at", "0001-01-01T00:00:00+14:00"),
        ("reported", "occurred_at", "9999-12-31T23:30:00-14:00"),
    ],
)
def test_a_timestamp_whose_utc_conversion_overflows_is_invalid_field(
    message, type, field, value
) -> None:
    if field == "occurred_at":
        body = message(type, occurred_at=value)
    else:
        body = message(type)
        body["data"][field.removeprefix("data.")] = value
    error = rejection(body)
    assert error.code == "invalid_field"
    assert error.reason.startswith(field) and "1970–9998" in error.reason


@pytest.mark.parametrize("value", ["1969-12-31T23:59:59Z", "9999-01-01T00:00:00Z"])
def test_a_data_timestamp_outside_1970_to_9998_is_invalid_field(message, value) -> None:
    error = rejection(message(data=reported_data(impact_started_at=value)))
    assert error.code == "invalid_field"
    assert "data.impact_started_at" in error.reason


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"])
def test_nan_infinity_and_numbers_beyond_a_float_are_invalid_json(message, literal) -> None:
    body = line(message("escalated")).replace(b'"level": 2', b'"level": ' + literal)
    assert literal in body
    error = rejection(body)
    assert error.code == "invalid_json"


@pytest.mark.parametrize(
    ("type", "path"),
    [
        ("reported", ["data", "title"]),
        ("reported", ["data", "customer"]),
        ("reported", ["actor"]),
        ("reported", ["source"]),
        ("reported", ["message_id"]),
        ("reported", ["data", "description"]),
        ("triaged", ["data", "reason"]),
        ("acknowledged", ["data", "note"]),
        ("resolved", ["data", "resolution"]),
        ("postmortem_published", ["data", "summary"]),
        ("postmortem_published", ["data", "url"]),
        ("postmortem_published", ["data", "action_items", 0]),
    ],
)
@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x07", "\x7f", "\x85", "\x0b"])
def test_control_characters_in_any_text_field_are_invalid_field(
    message, type, path, control
) -> None:
    body = message(type, source="portal", data=minimal_data(type) or {})
    target: Any = body
    for part in path[:-1]:
        target = target[part]
    if isinstance(path[-1], str) and path[-1] not in target:
        target[path[-1]] = "text"
    target[path[-1]] = f"ab{control}cd"
    error = rejection(body)
    assert error.code == "invalid_field"
    assert ".".join(map(str, path)) in error.reason
    assert "control characters" in error.reason


def test_tab_line_feed_and_carriage_return_are_allowed_in_text(message) -> None:
    decoded, _ = decode(line(message(data=reported_data(description="a\tb\nc\r\nd"))))
    assert decoded.data.description == "a\tb\nc\r\nd"


@pytest.mark.parametrize("actor", [" ", "\t\n", "\u3000", "\x00", "\x1b[31m"])
def test_an_actor_blank_after_trimming_or_made_of_control_characters_is_invalid(
    message, actor
) -> None:
    error = rejection(message(actor=actor))
    assert error.code == "invalid_field"
    assert "actor" in error.reason


def test_an_actor_with_surrounding_spaces_is_kept_as_sent(message) -> None:
    decoded, _ = decode(line(message(actor=" li.wei ")))
    assert decoded.actor == " li.wei "


def test_json_nested_too_deep_inside_data_is_rejected_not_a_crash(message) -> None:
    nested = b"[" * 5000 + b"]" * 5000
    body = line(message()).replace(b'"title"', b'"description": ' + nested + b', "title"')
    assert rejection(body).code == "invalid_json"


@pytest.mark.parametrize("body", [b"[]", b"42", b'"text"', b"null"])
def test_json_that_is_not_an_object_is_rejected_as_not_an_object(body: bytes) -> None:
    error = rejection(body)
    assert error.code == "not_an_object"
    assert "object" in error.reason


def test_a_message_over_one_mebibyte_is_rejected_as_too_large(message) -> None:
    body = line(message(data=reported_data(description="x" * MAX_MESSAGE_BYTES)))
    error = rejection(body)
    assert error.code == "too_large"
    assert "1 MiB" in error.reason


def test_a_message_of_exactly_one_mebibyte_is_accepted(message) -> None:
    base = line(message(data=reported_data(description="")))
    padding = MAX_MESSAGE_BYTES - len(base)
    body = line(message(data=reported_data(description="x" * padding)))
    assert len(body) == MAX_MESSAGE_BYTES
    decoded, _ = decode(body)
    assert len(decoded.data.description) == padding


def test_a_message_of_one_mebibyte_and_one_byte_is_too_large(message) -> None:
    base = line(message(data=reported_data(description="")))
    body = line(message(data=reported_data(description="x" * (MAX_MESSAGE_BYTES - len(base) + 1))))
    assert rejection(body).code == "too_large"


@pytest.mark.parametrize("schema", ["slatrail.incident/v2", "", None, 1])
def test_a_wrong_schema_is_rejected_as_unsupported_schema(message, schema) -> None:
    error = rejection(message(schema=schema))
    assert error.code == "unsupported_schema"
    assert "schema" in error.reason


def test_a_missing_schema_is_rejected_as_unsupported_schema(message) -> None:
    body = message()
    del body["schema"]
    error = rejection(body)
    assert error.code == "unsupported_schema"
    assert "schema" in error.reason
    assert error.incident_id == "INC-1"


def test_an_unknown_type_is_rejected_as_unknown_type(message) -> None:
    error = rejection(message(type="reported") | {"type": "closed"})
    assert error.code == "unknown_type"
    assert "type" in error.reason


def test_a_missing_type_is_a_missing_field(message) -> None:
    body = message()
    del body["type"]
    error = rejection(body)
    assert error.code == "missing_field"
    assert "type" in error.reason


def test_an_unknown_top_level_field_is_rejected_with_its_name(message) -> None:
    error = rejection(message(severity="high"))
    assert error.code == "unknown_field"
    assert "severity" in error.reason


def test_an_unknown_data_field_is_rejected_with_its_path(message) -> None:
    error = rejection(message(data=reported_data(severity="high")))
    assert error.code == "unknown_field"
    assert "data.severity" in error.reason


def test_an_unknown_data_field_on_a_type_without_required_data_is_rejected(message) -> None:
    error = rejection(message("acknowledged", data={"notes": "typo of note"}))
    assert error.code == "unknown_field"
    assert "data.notes" in error.reason


@pytest.mark.parametrize("field", ["message_id", "incident_id", "occurred_at", "actor"])
def test_a_missing_envelope_field_is_rejected_as_missing_field(message, field) -> None:
    body = message()
    del body[field]
    error = rejection(body)
    assert error.code == "missing_field"
    assert field in error.reason


@pytest.mark.parametrize(
    ("type", "field"),
    [
        ("reported", "customer"),
        ("reported", "title"),
        ("reported", "priority"),
        ("triaged", "priority"),
        ("priority_changed", "priority"),
        ("priority_changed", "reason"),
        ("awaiting_customer", "reason"),
        ("workaround_provided", "description"),
        ("escalated", "level"),
        ("escalated", "reason"),
        ("resolved", "resolution"),
        ("reopened", "reason"),
        ("postmortem_published", "summary"),
        ("postmortem_published", "root_cause"),
        ("postmortem_published", "action_items"),
    ],
)
def test_a_missing_required_data_field_is_rejected_as_missing_field(message, type, field) -> None:
    body = message(type)
    del body["data"][field]
    error = rejection(body)
    assert error.code == "missing_field"
    assert f"data.{field}" in error.reason


def test_a_type_with_required_data_needs_the_data_object(message) -> None:
    body = message("escalated")
    del body["data"]
    error = rejection(body)
    assert error.code == "missing_field"
    assert "data" in error.reason


def test_data_may_be_omitted_where_nothing_is_required(message) -> None:
    for type in ("acknowledged", "customer_responded"):
        decoded, _ = decode(line(message(type, data=None)))
        assert to_fact(decoded).data == {}


# -- timestamps ------------------------------------------------------------------------------------


def test_a_naive_occurred_at_is_rejected_as_naive_timestamp(message) -> None:
    error = rejection(message(occurred_at="2026-03-02T09:00:00"))
    assert error.code == "naive_timestamp"
    assert "occurred_at" in error.reason


def test_a_naive_timestamp_inside_data_is_rejected_with_its_path(message) -> None:
    body = message(data=reported_data(impact_started_at="2026-03-02T08:00:00"))
    error = rejection(body)
    assert error.code == "naive_timestamp"
    assert "data.impact_started_at" in error.reason


def test_an_offset_timestamp_is_accepted_as_the_same_instant(message) -> None:
    decoded, _ = decode(line(message(occurred_at="2026-03-02T17:00:00+08:00")))
    assert decoded.occurred_at == T0
    assert decoded.occurred_at.utcoffset() == timedelta(0)


def test_timestamps_in_data_are_normalised_to_utc_z(message) -> None:
    body = message(
        data=reported_data(impact_started_at="2026-03-02T16:30:00.250+08:00", outage=True)
    )
    decoded, _ = decode(line(body))
    assert to_fact(decoded).data["impact_started_at"] == "2026-03-02T08:30:00.250000Z"


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-02",
        "yesterday",
        "2026-13-02T09:00:00Z",
        "2026-03-02T09:00Z",
        "1772442000",
        1772442000,
        "2026-03-02T09:00:00+08",
    ],
)
def test_an_occurred_at_that_is_not_an_rfc3339_timestamp_is_invalid(message, text) -> None:
    error = rejection(message(occurred_at=text))
    assert error.code == "invalid_field"
    assert "occurred_at" in error.reason


def test_impact_started_after_occurred_at_is_rejected(message) -> None:
    body = message(data=reported_data(impact_started_at="2026-03-02T09:00:01Z"))
    error = rejection(body)
    assert error.code == "invalid_field"
    assert "impact_started_at" in error.reason


def test_impact_started_exactly_at_occurred_at_is_accepted(message) -> None:
    decoded, _ = decode(line(message(data=reported_data(impact_started_at="2026-03-02T09:00:00Z"))))
    assert to_fact(decoded).data["impact_started_at"] == "2026-03-02T09:00:00Z"


def test_service_restored_after_resolution_is_rejected(message) -> None:
    body = message(
        "resolved", data={"resolution": "fixed", "service_restored_at": "2026-03-02T17:00:01+08:00"}
    )
    error = rejection(body)
    assert error.code == "invalid_field"
    assert "service_restored_at" in error.reason


def test_service_restored_before_resolution_is_kept_in_utc(message) -> None:
    body = message(
        "resolved", data={"resolution": "fixed", "service_restored_at": "2026-03-02T16:59:00+08:00"}
    )
    decoded, _ = decode(line(body))
    assert to_fact(decoded).data["service_restored_at"] == "2026-03-02T08:59:00Z"


# -- field rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize("incident_id", ["INC 1", "INC/1", "事故-1", "INC-1\n", "a+b", ""])
def test_an_incident_id_outside_the_allowed_characters_is_invalid(message, incident_id) -> None:
    error = rejection(message(incident_id=incident_id))
    assert error.code == "invalid_field"
    assert "incident_id" in error.reason


def test_an_incident_id_may_use_letters_digits_dot_underscore_colon_and_dash(message) -> None:
    decoded, _ = decode(line(message(incident_id="Acme.rtc_2026:INC-0042")))
    assert decoded.incident_id == "Acme.rtc_2026:INC-0042"


@pytest.mark.parametrize(
    ("field", "limit"), [("message_id", 128), ("incident_id", 128), ("actor", 200)]
)
def test_envelope_fields_are_limited_in_length(message, field, limit) -> None:
    decoded, _ = decode(line(message(**({"message_id": "m-1"} | {field: "a" * limit}))))
    assert len(getattr(decoded, field)) == limit
    error = rejection(message(**({"message_id": "m-1"} | {field: "a" * (limit + 1)})))
    assert error.code == "invalid_field"
    assert field in error.reason


@pytest.mark.parametrize("field", ["message_id", "actor"])
def test_empty_envelope_fields_are_invalid(message, field) -> None:
    error = rejection(message(**{field: ""}))
    assert error.code == "invalid_field"
    assert field in error.reason


def test_the_title_is_limited_to_500_characters(message) -> None:
    decoded, _ = decode(line(message(data=reported_data(title="t" * 500))))
    assert len(decoded.data.title) == 500
    error = rejection(message(data=reported_data(title="t" * 501)))
    assert error.code == "invalid_field"
    assert "data.title" in error.reason


@pytest.mark.parametrize("level", [0, 5, -1])
def test_an_escalation_level_outside_1_to_4_is_invalid(message, level) -> None:
    error = rejection(message("escalated", data={"level": level, "reason": "r"}))
    assert error.code == "invalid_field"
    assert "data.level" in error.reason


@pytest.mark.parametrize("level", [1, 4])
def test_escalation_levels_1_and_4_are_valid(message, level) -> None:
    decoded, _ = decode(line(message("escalated", data={"level": level, "reason": "r"})))
    assert to_fact(decoded).data == {"level": level, "reason": "r"}


@pytest.mark.parametrize("level", ["2", 2.0, 2.5, True])
def test_an_escalation_level_must_be_a_json_integer(message, level) -> None:
    error = rejection(message("escalated", data={"level": level, "reason": "r"}))
    assert error.code == "invalid_field"
    assert "data.level" in error.reason


@pytest.mark.parametrize("value", ["true", 1, None])
def test_outage_must_be_a_json_boolean(message, value) -> None:
    error = rejection(message(data=reported_data(outage=value)))
    assert error.code == "invalid_field"
    assert "data.outage" in error.reason


@pytest.mark.parametrize("priority", ["P0", "P5", "p1", "1", 1])
def test_a_priority_outside_p1_to_p4_is_invalid(message, priority) -> None:
    error = rejection(message(data=reported_data(priority=priority)))
    assert error.code == "invalid_field"
    assert "data.priority" in error.reason


def test_an_unknown_channel_is_invalid(message) -> None:
    error = rejection(message(data=reported_data(channel="fax")))
    assert error.code == "invalid_field"
    assert "data.channel" in error.reason


def test_an_unknown_cause_is_invalid(message) -> None:
    error = rejection(message("resolved", data={"resolution": "fixed", "cause": "aliens"}))
    assert error.code == "invalid_field"
    assert "data.cause" in error.reason


def test_action_items_must_be_a_list_of_strings(message) -> None:
    data = {"summary": "s", "root_cause": "r", "action_items": ["ok", 3]}
    error = rejection(message("postmortem_published", data=data))
    assert error.code == "invalid_field"
    assert "data.action_items" in error.reason


def test_the_incident_id_travels_with_a_refusal_when_it_can_be_read(message) -> None:
    assert rejection(message(data=reported_data(priority="P9"))).incident_id == "INC-1"


# -- defaults and fingerprints ---------------------------------------------------------------------


def test_reported_defaults_to_channel_ticket_and_no_outage(message) -> None:
    decoded, _ = decode(line(message()))
    data = to_fact(decoded).data
    assert data["channel"] == "ticket"
    assert data["outage"] is False


def test_workaround_restores_service_by_default(message) -> None:
    decoded, _ = decode(line(message("workaround_provided")))
    assert to_fact(decoded).data["restores_service"] is True


def test_a_resolution_is_the_vendors_by_default(message) -> None:
    decoded, _ = decode(line(message("resolved")))
    assert to_fact(decoded).data["cause"] == "vendor"


def test_explicit_values_override_the_defaults(message) -> None:
    decoded, _ = decode(line(message(data=reported_data(channel="phone", outage=True))))
    assert to_fact(decoded).data["channel"] == "phone"
    assert to_fact(decoded).data["outage"] is True


def test_source_is_optional_and_kept_when_given(message) -> None:
    decoded, _ = decode(line(message(source="ticket-portal")))
    assert to_fact(decoded).source == "ticket-portal"
    decoded, _ = decode(line(message()))
    assert to_fact(decoded).source is None


def test_fingerprint_ignores_key_order_and_whitespace_but_not_content(message) -> None:
    body = message()
    _, first = decode(json.dumps(body, indent=2))
    _, second = decode(json.dumps(dict(reversed(list(body.items())))))
    _, other = decode(line(message(actor="someone-else")))
    assert fingerprint(first) == fingerprint(second)
    assert fingerprint(first) != fingerprint(other)


def test_decode_accepts_text_as_well_as_bytes(message) -> None:
    decoded, _ = decode(json.dumps(message()))
    assert decoded.occurred_at == datetime(2026, 3, 2, 9, tzinfo=UTC)


# -- dead letters (docs/dead-letters.md) -----------------------------------------------------------


def dead_letter_of(raw: bytes) -> dict[str, Any]:
    from slatrail.application.outcomes import Outcome
    from slatrail.infra.deadletters import encode_dead_letter
    from slatrail.infra.rejections import rejection_record

    try:
        decode(raw)
    except InvalidMessageError as error:
        outcome = Outcome.rejected(error)
    else:
        raise AssertionError("expected a refusal")
    record = rejection_record(raw, outcome, line=7, rejected_at=T0)
    text = encode_dead_letter(record)
    assert "\n" not in text and len(text.splitlines()) == 1

    def refuse(name: str) -> Any:
        raise AssertionError(f"non-JSON literal {name}")

    parsed: dict[str, Any] = json.loads(text, parse_constant=refuse)
    return parsed


def held(letter: dict[str, Any]) -> dict[str, Any]:
    return {k: letter[k] for k in ("message", "raw", "raw_base64") if letter[k] is not None}


def test_a_dead_letter_names_its_format_and_holds_a_json_object_as_message(message) -> None:
    body = message(severity="high")
    letter = dead_letter_of(line(body))
    assert letter["dead_letter"] == "slatrail.dead-letter/v1"
    assert (letter["code"], letter["line"], letter["rejected_at"]) == (
        "unknown_field",
        7,
        "2026-03-02T09:00:00Z",
    )
    assert held(letter) == {"message": body}


def test_a_dead_letter_of_bytes_that_are_not_utf8_keeps_them_as_base64(message) -> None:
    import base64

    body = line(message()).replace(b"Calls drop", b"Calls \xff\xfe drop")
    letter = dead_letter_of(body)
    assert letter["code"] == "invalid_encoding"
    assert held(letter) == {"raw_base64": base64.b64encode(body).decode("ascii")}


@pytest.mark.parametrize(
    "body",
    [
        b'{"schema": "slatrail.incident/v1", "level": NaN}',
        b'{"schema": "slatrail.incident/v1", "level": -Infinity}',
        b'{"schema": "slatrail.incident/v1", "actor": "\\ud800"}',
        b'{"schema": "slatrail.incident/v1", "actor": "a", "actor": "b"}',
        b"not json",
    ],
    ids=["nan", "infinity", "lone-surrogate", "repeated-key", "not-json"],
)
def test_a_dead_letter_keeps_as_text_what_json_cannot_hold_losslessly(body: bytes) -> None:
    letter = dead_letter_of(body)
    assert held(letter) == {"raw": body.decode("utf-8")}


def test_a_dead_letter_escapes_the_characters_line_readers_split_on(message) -> None:
    body = message(data=reported_data(description="a\u2028b\u2029c\x85d"), severity=1)
    letter = dead_letter_of(line(body))
    assert letter["message"]["data"]["description"] == "a\u2028b\u2029c\x85d"


def test_the_kafka_dead_letter_is_the_file_one_plus_where_it_was_read() -> None:
    import base64

    from slatrail.application.outcomes import Outcome
    from slatrail.consumers.streams import Record
    from slatrail.infra.rejections import dead_letter, truncated_dead_letter

    outcome = Outcome("rejected", code="invalid_encoding", reason="not UTF-8")
    record = Record("t.inbound", 1, 42, b"\xff", b"\x80\xffbad", timestamp_ms=1_772_442_000_000)
    letter = dead_letter(record, outcome, T0)
    assert letter["dead_letter"] == "slatrail.dead-letter/v1"
    assert held(letter) == {"raw_base64": base64.b64encode(b"\x80\xffbad").decode()}
    assert (letter["topic"], letter["partition"], letter["offset"]) == ("t.inbound", 1, 42)
    assert (letter["key"], letter["key_base64"]) == (None, "/w==")
    short = truncated_dead_letter(record, outcome, T0)
    assert short["dead_letter"] == "slatrail.dead-letter/v1" and short["truncated"] is True
    assert (short["message"], short["raw"], short["raw_base64"]) == (None, None, None)


def test_an_unknown_key_holding_control_characters_is_named_with_escapes(message) -> None:
    error = rejection(message(**{"sev\x1b[31merity": "high"}))
    assert error.code == "unknown_field"
    assert "sev\\x1b[31merity" in error.reason and "\x1b" not in error.reason


@pytest.mark.parametrize(
    "body",
    [
        b'{"schema": "slatrail.incident/v1", "severity": "high"}',
        b"\x80\x81 not utf-8",
        b'{"schema": "slatrail.incident/v1", "level": NaN}',
        b"not json",
    ],
)
def test_a_dead_letter_gives_back_the_original_message(body: bytes) -> None:
    from slatrail.infra.deadletters import original_bytes

    original = original_bytes(dead_letter_of(body))
    if body.startswith(b'{"schema": "slatrail.incident/v1", "severity"'):
        assert json.loads(original) == json.loads(body)
    else:
        assert original == body


def test_a_dead_letter_of_an_unknown_format_version_is_refused() -> None:
    from slatrail.infra.deadletters import NotRedrivable, original_bytes

    with pytest.raises(NotRedrivable, match="unknown dead-letter format"):
        original_bytes({"dead_letter": "slatrail.dead-letter/v9", "raw": "x"})
    assert original_bytes({"raw": "x", "message": None}) == b"x"  # before v1


@pytest.mark.parametrize("incident_id", ["A" * 129, "INC\x1b[2J", "INC 1", 42])
def test_a_refusal_carries_the_incident_id_only_when_it_is_a_valid_one(
    message, incident_id
) -> None:
    error = rejection(message(incident_id=incident_id, severity="high"))
    assert error.incident_id is None
    assert rejection(message(severity="high")).incident_id == "INC-1"
