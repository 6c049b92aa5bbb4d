"""`indented_json` writes the text `json.dumps(…, ensure_ascii=False, indent=2)` writes, for
every value: through orjson where the two agree, through `json` otherwise."""

from __future__ import annotations

import enum
import json
import struct
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from slatrail.infra import render
from slatrail.infra.render import indented_json, orjson_indents_exactly


class _Kind(enum.StrEnum):
    A = "a"


def _reference(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _outcome(write: Any, value: Any) -> tuple[str, str]:
    try:
        return "text", write(value)
    except (TypeError, ValueError) as error:
        return "refused", type(error).__name__


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.builds(lambda b: struct.unpack("<d", b)[0], st.binary(min_size=8, max_size=8))
    | st.text(max_size=6)
    | st.sampled_from([_Kind.A, "\ud800", "\u2028\x7f\x00"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        | st.dictionaries(st.integers(0, 3), inner, max_size=2)
    ),
    max_leaves=12,
)


@given(VALUES)
def test_the_text_is_the_standard_librarys_for_any_value(value: Any) -> None:
    assert _outcome(indented_json, value) == _outcome(_reference, value)


@pytest.mark.parametrize(
    "value",
    [1e-05, 9.99e-05, -1e-7, 1e-8, float("nan"), float("inf"), float("-inf")],
    ids=["small", "just-small", "negative-small", "tiny", "nan", "infinity", "-infinity"],
)
def test_floats_orjson_writes_in_another_form_are_written_by_json(value: float) -> None:
    assert not orjson_indents_exactly({"a": [value]})
    assert indented_json({"a": [value]}) == _reference({"a": [value]})


def test_a_report_shaped_value_goes_through_orjson() -> None:
    value = {"customer": "C", "availability": 99.99, "clocks": [{"met": True, "s": 0.0}], "n": []}
    assert orjson_indents_exactly(value)
    for other in ({"a": _Kind.A}, {1: "a"}, [{"a": 1e-5}], ({"a": b"x"},)):
        assert not orjson_indents_exactly(other)


def test_an_orjson_that_indents_otherwise_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    dumps = orjson.dumps

    def dumps_spaced(value: Any, option: int = 0) -> bytes:
        return dumps(value, option=option).replace(b": ", b" : ")

    monkeypatch.setattr(render.orjson, "dumps", dumps_spaced)
    assert not render.orjson_indent_agrees()


@pytest.mark.parametrize("depth", [254, 256, 400])
def test_deep_nesting_is_written_as_json_writes_it(depth: int) -> None:
    value: Any = "x"
    for n in range(depth):
        value = [value] if n % 2 else {"k": value}
    assert indented_json(value) == _reference(value)
