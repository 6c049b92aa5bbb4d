"""canonical_json writes the bytes Python's `json` writes for any value, whichever encoder
writes them: every recorded hash depends on it (docs/audit.md §2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import slatrail.domain.model as model
from slatrail.domain.model import canonical_json, format_instant, utc_isoformat

_REFERENCE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)

# text as messages hold it (any character but a lone surrogate), and every code point
_text = st.text(max_size=12)
_any_text = st.text(st.characters(codec=None, categories=None), max_size=12)
_scalars = (
    _text
    | _any_text
    | st.integers()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=True, allow_infinity=True)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_text, inner, max_size=4)
        | st.dictionaries(_any_text, inner, max_size=3)
    ),
    max_leaves=20,
)


def _outcome(encode: Any, value: Any) -> tuple[str, Any]:
    try:
        return "bytes", encode(value)
    except Exception as error:
        return "error", type(error)


def _reference(value: Any) -> bytes:
    return _REFERENCE.encode(value).encode("utf-8")


@given(_values)
def test_canonical_json_is_the_reference_encoding_for_any_value(value: Any) -> None:
    assert _outcome(canonical_json, value) == _outcome(_reference, value)


class _Kind(StrEnum):
    A = "a"


@pytest.mark.parametrize(
    "value",
    [
        {"n": 2**63 - 1, "m": -(2**63), "big": 2**64, "bigger": 10**30},
        {"f": 1e16, "g": 1e-05, "h": 0.1, "i": 123456789012345.0},
        {"kind": _Kind.A, _Kind.A: 1},
        {"é": 1, "e": 2, "Z": 3, "😀": 4, "\u2028": "\x00\x1f\x7f\u2029"},
        {"lone": "\ud800"},
        [{"b": [1, (2, 3)], "a": None}],
    ],
    ids=["integers", "fractions", "enumerations", "order-and-escapes", "surrogate", "nested"],
)
def test_canonical_json_matches_the_reference_where_the_two_encoders_differ(value: Any) -> None:
    assert _outcome(canonical_json, value) == _outcome(_reference, value)


def test_plain_values_go_to_the_fast_encoder_and_the_rest_to_json() -> None:
    assert model.is_plain_json({"a": [1, "x", None, True, {"b": (2,)}]})
    for other in ({"a": 1.5}, {"a": _Kind.A}, {1: "a"}, {"a": {1, 2}}, {"a": b"x"}):
        assert not model.is_plain_json(other)
    for deep in (
        {"a": [{"b": 1.5}]},
        [[{"k": _Kind.A}]],
        ({"x": {2: "y"}},),
        [1, [2, [True]], 0.5],
    ):
        assert not model.is_plain_json(deep)


def _slow_is_plain(value: Any) -> bool:
    if type(value) is dict:
        return all(type(k) is str and _slow_is_plain(v) for k, v in value.items())
    if type(value) in (list, tuple):
        return all(_slow_is_plain(v) for v in value)
    return type(value) in (str, int, bool, type(None))


_odd = st.sampled_from([_Kind.A, 1.5, b"x", frozenset({1})])
_mixed = st.recursive(
    _scalars | _odd,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_text | st.integers() | st.just(_Kind.A), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(_mixed)
def test_is_plain_json_is_the_item_by_item_check_for_any_value(value: Any) -> None:
    assert model.is_plain_json(value) == _slow_is_plain(value)


def _slow_format_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


_zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=14))]
)


@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=_zones)
)
def test_instants_are_written_as_isoformat_writes_them_for_any_instant(moment: datetime) -> None:
    assert format_instant(moment) == _slow_format_instant(moment)
    assert utc_isoformat(moment) == moment.isoformat()
    assert utc_isoformat(moment.replace(tzinfo=None)) == moment.replace(tzinfo=None).isoformat()


def test_an_orjson_that_writes_instants_otherwise_would_not_be_used() -> None:
    assert model.orjson_writes_instants() and model._ORJSON_WRITES_INSTANTS

    def without_microseconds(value: Any, option: int = 0) -> bytes:
        return orjson.dumps(value, option=option | orjson.OPT_OMIT_MICROSECONDS)

    assert not model.orjson_writes_instants(without_microseconds)


def test_the_installed_orjson_agrees_and_one_that_writes_otherwise_would_not_be_used() -> None:
    assert model.orjson_agrees() and model._ORJSON_AGREES

    def escaping_slashes(value: Any, option: int = 0) -> bytes:
        return orjson.dumps(value, option=option).replace(b"/", b"\\/")

    assert not model.orjson_agrees(escaping_slashes)
