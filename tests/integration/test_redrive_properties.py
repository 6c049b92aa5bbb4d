"""Property: whatever form the dead letters take (`message`, `raw`, `raw_base64`), repeated
(at-least-once dead letters) or mixed with lines that are not dead letters, a redrive after the
fix records every message once, in order, marked with its dead letter; a second redrive is all
duplicates; the chains verify (real SQLite store)."""

from __future__ import annotations

import base64
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slatrail.application.outcomes import Outcome
from slatrail.infra.deadletters import DeadLetter, DeadLetterFile, read_file
from slatrail.infra.ingest import ingest_lines
from slatrail.infra.redrive import redrive
from slatrail.infra.store import open_application
from slatrail.projections.verification import verify_chain
from tests.builders import CONTRACTS_TOML, contracts_from, line, reported_data, wire
from tests.hypothesis_profiles import examples

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)
LIFECYCLE = (
    ("reported", None),
    ("acknowledged", None),
    ("resolved", {"resolution": "fixed"}),
)


def stream(incidents: int) -> list[dict[str, Any]]:
    out = []
    for step, (kind, data) in enumerate(LIFECYCLE):
        for n in range(incidents):
            body = reported_data("globex", "P2", title=f"é #{n}") if kind == "reported" else data
            at = NOW - timedelta(hours=5) + step * 10 * MIN + n * MIN
            out.append(wire(kind, at, body, incident_id=f"N-{n}", message_id=f"N-{n}-{step}"))
    return out


def reform(entry: dict[str, Any], form: str) -> dict[str, Any]:
    """The same dead letter holding its original another way."""
    original = json.dumps(entry["message"], ensure_ascii=False)
    if form == "raw":
        return {**entry, "message": None, "raw": original}
    if form == "raw_base64":
        encoded = base64.b64encode(original.encode("utf-8")).decode()
        return {**entry, "message": None, "raw": None, "raw_base64": encoded}
    return entry


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    incidents=st.integers(1, 4),
    forms=st.lists(st.sampled_from(["message", "raw", "raw_base64"]), min_size=12, max_size=12),
    repeats=st.lists(st.booleans(), min_size=12, max_size=12),
    junk=st.lists(st.sampled_from(["", "{", "[1]", '"x"', "{torn"]), max_size=3),
)
def test_redrive_records_every_message_once_in_any_form(
    incidents: int, forms: list[str], repeats: list[bool], junk: list[str]
) -> None:
    messages = stream(incidents)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        app = open_application(f"sqlite:///{tmp / 's.db'}", contracts_from())
        dead = DeadLetterFile(tmp / "in.rejected.jsonl")
        counts = ingest_lines(
            [line(m) + b"\n" for m in messages], app, lambda: NOW, dead
        )  # globex is not in the contracts: everything is a dead letter
        dead.close()
        app.close()
        assert counts.rejected == len(messages)
        entries = [json.loads(t) for t in (tmp / "in.rejected.jsonl").read_text().splitlines()]
        letters: list[str] = []
        for index, entry in enumerate(entries):
            letters.append(json.dumps(reform(entry, forms[index % len(forms)])))
            if repeats[index % len(repeats)]:
                letters.append(json.dumps(reform(entry, forms[(index + 1) % len(forms)])))
        letters[1:1] = [text for text in junk if text]
        source = tmp / "all.rejected.jsonl"
        source.write_text("\n".join(letters) + "\n", encoding="utf-8")

        fixed = contracts_from(CONTRACTS_TOML + '\n[customers.globex]\ntier = "gold"\n')
        app = open_application(f"sqlite:///{tmp / 's.db'}", fixed)
        try:
            failed: list[tuple[DeadLetter, bytes, Outcome]] = []

            def keep(letter: DeadLetter, raw: bytes, outcome: Outcome) -> None:
                failed.append((letter, raw, outcome))

            first = redrive(read_file(source), app, lambda: NOW, keep)
            again = redrive(read_file(source), app, lambda: NOW + MIN, keep)
            histories = app.histories()
        finally:
            app.close()
    redrivable = len(letters) - len([t for t in junk if t])
    assert failed == []
    assert first.accepted == len(messages)
    assert first.duplicate == redrivable - len(messages)  # the repeated dead letters
    noise = len([t for t in junk if t])  # lines 2.. of the file: not dead-letter entries
    assert [item["dead_letter"] for item in first.not_redrivable] == [
        f"file:all.rejected.jsonl:{n}" for n in range(2, 2 + noise)
    ]
    assert (again.accepted, again.duplicate, again.still_rejected) == (0, redrivable, 0)
    assert sorted(histories) == [f"N-{n}" for n in range(incidents)]
    for events in histories.values():
        assert [str(e.type) for e in events] == [kind for kind, _ in LIFECYCLE]
        assert verify_chain(events) == []
        assert all(e.redrive and e.redrive.startswith("file:all.rejected.jsonl:") for e in events)
