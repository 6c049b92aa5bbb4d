"""Plain-text tables and JSON output for the CLI, safe to show on a terminal.

Every text shown on a terminal goes through `terminal_safe` (each value, and each table cell via
`table`) and `echo` (each line printed): control characters that a terminal would act on — ESC
sequences that clear the screen or retitle the window, a carriage return that overwrites what
came before, a bell — and the Unicode bidirectional controls that reorder what the eye reads
(Trojan Source) are shown as visible escapes (`\\x1b`, `\\r`, `\\u202e`) instead of being sent
raw. JSON output holds the exact strings: `to_json` writes those same characters as JSON `\\u`
escapes, which decode to the identical text (docs/reports.md, "Terminal output").
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any

import orjson

# C0 controls (incl. TAB, LF, CR), DEL, C1 controls, the line and paragraph separators, and the
# Unicode Bidi_Control characters: ALM, LRM, RLM, LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# The same minus the C0 controls: json.dumps already writes those as escapes.
_JSON_RAW = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(value: Any) -> str:
    """`value` as one line of text a terminal shows as it is: no character it would act on."""
    text = "" if value is None else str(value)
    return UNSAFE.sub(_escape, text)


def terminal_text(text: str) -> str:
    """Several lines of text: each line made terminal-safe, the line breaks kept."""
    return "\n".join(terminal_safe(line) for line in text.split("\n"))


def echo(text: str = "", *, file: IO[str] | None = None) -> None:
    """Print text for a person on a terminal (never JSON, CSV or an export: those are exact)."""
    print(terminal_text(text), file=sys.stdout if file is None else file)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[terminal_safe(h) for h in headers]] + [[terminal_safe(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_json_text(text: str) -> str:
    """JSON text (from `json.dumps(…, ensure_ascii=False)`) with DEL, the C1 controls, U+2028/9
    and the bidi controls written as `\\uXXXX`. They can only occur inside JSON strings (the
    structure is ASCII), where the escape decodes to the same character: the value is unchanged,
    and no line splitter (`str.splitlines` splits on U+0085 and U+2028) cuts a line in two."""
    return _JSON_RAW.sub(_json_escape, text)


def to_json(value: Any) -> str:
    """Indented JSON; strings exact, the characters a terminal acts on written as escapes."""
    return escape_json_text(indented_json(value))


def indented_json(value: Any) -> str:
    """`json.dumps(value, ensure_ascii=False, indent=2)`, the same text.

    The standard library indents in pure Python (its C encoder ignores `indent` before Python
    3.14): about 0.17 s for the 4.5 MB of `report --month M --format json` at 200,000
    incidents. orjson writes that text in 0.01 s, and writes it identically for the values
    `orjson_indents_exactly` accepts; every other value (a float orjson writes in another form,
    NaN, a subclass, a key that is not a string, …) is written by `json` itself."""
    try:
        if _ORJSON_INDENTS and orjson_indents_exactly(value):
            return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8")
    except (orjson.JSONEncodeError, RecursionError):
        pass  # an integer beyond 64 bits, a lone surrogate, nesting beyond orjson's 255 levels
    return json.dumps(value, ensure_ascii=False, indent=2)


_EXACT_SCALARS = (str, int, bool, type(None))


def orjson_indents_exactly(value: Any) -> bool:
    """Whether `value` holds only objects with string keys, lists, tuples, strings, integers,
    booleans, nulls and floats that orjson writes as `repr` does (finite; not e.g. 1e-05 or
    1e-07, which orjson writes as 0.00001 and 1e-7), each of exactly that type (no subclass:
    orjson writes an enumeration's value where `json` may write otherwise)."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            if type(item) not in _EXACT_SCALARS and not orjson_indents_exactly(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(type(item) in _EXACT_SCALARS or orjson_indents_exactly(item) for item in value)
    if kind is float:
        return math.isfinite(value) and orjson.dumps(value) == float.__repr__(value).encode()
    return kind in _EXACT_SCALARS


# Values whose indented text orjson and `json` must agree on (nesting, empty containers, the
# characters `json` writes raw or escaped); an orjson that writes any otherwise is not used.
_INDENT_AGREEMENT: tuple[Any, ...] = (
    {"a": [], "b": {}, "c": [1, {"d": [[]]}, -(2**63), 2**64 - 1], "e": None, "f": True,
     "g": False, "é": "ü 漢 😀\u007f\u0085\u2028\u2029\ufeff", "h": 99.99, "i": -0.0},
    {"esc": '"\\/\b\f\n\r\t\u0000\u001f'},
    [],
    {},
    [[], {}, [1.5, 0.1, 1e15, 1234567890123456.0]],
)  # fmt: skip


def orjson_indent_agrees() -> bool:
    return all(
        orjson.dumps(v, option=orjson.OPT_INDENT_2).decode("utf-8")
        == json.dumps(v, ensure_ascii=False, indent=2)
        for v in _INDENT_AGREEMENT
    )


_ORJSON_INDENTS = orjson_indent_agrees()


def write_json_list(items: Iterable[Any], *, file: IO[str] | None = None) -> None:
    """`print(to_json(list(items)))`, written item by item (the same text, byte for byte):
    a long answer is never held whole in memory."""
    out = sys.stdout if file is None else file
    first = True
    for item in items:
        text = escape_json_text(indented_json(item))
        out.write(("[\n" if first else ",\n") + "  " + text.replace("\n", "\n  "))
        first = False
    out.write("[]\n" if first else "\n]\n")
