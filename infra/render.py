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
import re
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any

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
    return escape_json_text(json.dumps(value, ensure_ascii=False, indent=2))


def write_json_list(items: Iterable[Any], *, file: IO[str] | None = None) -> None:
    """`print(to_json(list(items)))`, written item by item (the same text, byte for byte):
    a long answer is never held whole in memory."""
    # `indent=2` runs the standard library's pure-Python encoder (its C encoder ignores indent
    # before Python 3.14). Re-indenting the C encoder's compact text and a specialised
    # recursive encoder were both measured no faster on 10,000 `sla` documents
    # (docs/decisions.md, "Indented JSON output"), so the output stays the standard library's.
    out = sys.stdout if file is None else file
    first = True
    for item in items:
        text = escape_json_text(json.dumps(item, ensure_ascii=False, indent=2))
        out.write(("[\n" if first else ",\n") + "  " + text.replace("\n", "\n  "))
        first = False
    out.write("[]\n" if first else "\n]\n")
