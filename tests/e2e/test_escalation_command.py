"""`slatrail escalations` and `sla --format json` over a scratch SQLite store (in process)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from slatrail.infra.cli import main
from tests.builders import CONTRACTS_TOML, jsonl, reported_data, utc, wire

MON = utc(2026, 3, 2, 8)

Run = Callable[..., tuple[int, str]]

pytestmark = pytest.mark.e2e


@pytest.fixture
def slatrail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Run:
    for name in ("SLATRAIL_STORE", "SLATRAIL_CONTRACTS", "SLATRAIL_READ_MODEL"):
        monkeypatch.delenv(name, raising=False)
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(CONTRACTS_TOML, encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'store.db'}"

    def run(*args: str) -> tuple[int, str]:
        code = main(
            ["--store", store, "--contracts", str(contracts), "--log-level", "error", *args]
        )
        return code, capsys.readouterr().out

    source = tmp_path / "in.jsonl"
    source.write_text(
        jsonl(
            [
                wire("reported", MON, reported_data(priority="P2"), incident_id="A"),
                wire("reported", MON, reported_data(priority="P3"), incident_id="B"),
                wire(
                    "escalated",
                    MON + (MON - MON),
                    {"level": 3, "reason": "VIP customer"},
                    incident_id="B",
                ),
                wire("reported", MON, reported_data(priority="P2"), incident_id="C"),
                wire("acknowledged", MON.replace(minute=10), incident_id="C"),
                wire("resolved", MON.replace(minute=20), {"resolution": "fixed"}, incident_id="C"),
            ]
        )
    )
    assert run("ingest", str(source))[0] == 0
    return run


def test_escalations_lists_open_incidents_by_level_with_the_reason(slatrail: Run) -> None:
    code, out = slatrail("escalations", "--as-of", "2026-03-02T09:10:00Z")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        "Escalations as of 2026-03-02T09:10:00Z — 2 incidents (level 4: 0, 3: 2, 2: 0, 1: 0)"
    )
    assert lines[3].split()[:6] == ["B", "acme", "P3", "open", "3", "engineering/R&D"]
    assert "manual escalation: VIP customer" in lines[3]
    assert lines[4].split()[0] == "A" and "response breached" in lines[4]
    assert "response over 2x target at 2026-03-02T10:00:00Z" in lines[4]  # the next alert


def test_escalations_json_has_the_history_and_the_next_alert(slatrail: Run) -> None:
    code, out = slatrail(
        "escalations", "--as-of", "2026-03-02T09:10:00Z", "--level", "3", "--format", "json"
    )
    assert code == 0
    documents = json.loads(out)
    a = next(d for d in documents if d["incident_id"] == "A")
    assert [(h["at"], h["level"], h["why"]) for h in a["history"]] == [
        ("2026-03-02T08:45:00Z", 2, "response at risk"),
        ("2026-03-02T09:00:00Z", 3, "response breached"),
    ]
    assert a["next"] == {
        "alert_key": "A/escalated/4",
        "kind": "escalated",
        "metric": "response",
        "at": "2026-03-02T10:00:00Z",
        "level": 4,
        "reason": "response over 2x target",
    }
    assert "crossings" not in a


def test_resolved_incidents_show_with_all_and_one_incident_always(slatrail: Run) -> None:
    _, out = slatrail("escalations", "--as-of", "2026-03-02T09:10:00Z", "--all", "--format", "json")
    assert {d["incident_id"] for d in json.loads(out)} == {"A", "B", "C"}
    _, out = slatrail("escalations", "--incident", "C", "--explain")
    assert "level 1 since the report" in out
    code, out = slatrail("escalations", "--incident", "nope")
    assert code == 1 and "no incident 'nope'" in out


def test_an_invalid_level_is_a_usage_error(
    slatrail: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        slatrail("escalations", "--level", "5")
    assert exit_.value.code == 2
    assert "a level is 1, 2, 3 or 4" in capsys.readouterr().err


def test_sla_json_fills_escalation_level(slatrail: Run) -> None:
    _, out = slatrail("sla", "--as-of", "2026-03-02T09:10:00Z", "--format", "json")
    levels = {d["incident_id"]: d["escalation_level"] for d in json.loads(out)}
    assert levels == {"A": 3, "B": 3, "C": 1}
