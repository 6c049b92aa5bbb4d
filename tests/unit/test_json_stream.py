"""`write_json_list` writes what `to_json` of the whole list would, item by item."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from slatrail.infra.render import to_json, write_json_list

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(st.lists(JSON, max_size=5))
def test_the_stream_is_the_whole_list_byte_for_byte(items: list[Any]) -> None:
    out = io.StringIO()
    write_json_list(iter(items), file=out)
    assert out.getvalue() == to_json(items) + "\n"


def test_an_empty_answer_is_an_empty_array() -> None:
    out = io.StringIO()
    write_json_list(iter(()), file=out)
    assert out.getvalue() == "[]\n"
