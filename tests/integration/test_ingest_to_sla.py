"""`slatrail ingest` → store → `slatrail sla` / `audit`, one contract run on every backend.

`IngestToSlaContract` holds the tests; `TestOnSQLite` and `TestOnPostgreSQL` only say which store
URL to use. The CLI runs in-process (`infra.cli.main`) and, at least once, as the installed
`slatrail` console script.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from slatrail.application.outcomes import Outcome
from slatrail.application.service import SlatrailApplication
from slatrail.infra.cli import main
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import CONTRACTS_TOML, contracts_from, jsonl, line, reported_data, wire

pytestmark = pytest.mark.integration

SLATRAIL = str(Path(sys.executable).parent / "slatrail")
AS_OF = "2026-10-05T14:00:00Z"  # Monday; Berlin is on CEST (UTC+2)


def msg(type: str, at: str, data: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    kw.setdefault("incident_id", "A")
    kw.setdefault("message_id", f"{kw['incident_id']}-{type}-{at[11:16]}")
    return wire(type, at, data, **kw)


def incident_a_and_c_with_faults() -> tuple[list[dict[str, Any] | str], dict[int, str]]:
    """The input file (17 lines) and the expected rejection code per line number.

    A: acme P1, 24x7. C: acme P3, office hours in Berlin (09:00-12:00, 13:00-17:30).
    """
    first_triage = msg("triaged", "2026-10-05T08:05:00Z", {"priority": "P1"})
    acknowledged = msg("acknowledged", "2026-10-05T08:10:00Z")
    lines: list[dict[str, Any] | str] = [
        msg("reported", "2026-10-05T08:00:00Z", reported_data("acme", "P1")),  # 1
        first_triage,  # 2
        acknowledged,  # 3
        '{"schema": "slatrail.incident/v1", "message_id": ',  # 4 malformed JSON
        msg("escalated", "2026-10-05T08:15:00Z", {"level": 2, "reason": "r"}, severity="high"),
        msg("workaround_provided", "2026-10-05T08:20:00", {"description": "d"}),  # 6 naive
        msg("awaiting_customer", "2026-10-05T08:30:00Z", {"reason": "SDK logs"}),  # 7
        msg("customer_responded", "2026-10-05T09:30:00Z"),  # 8
        # 9: late (earlier than line 8), and it does not fit: A was not awaiting at 08:20
        msg("customer_responded", "2026-10-05T08:20:00Z"),
        msg("reported", "2026-10-05T09:35:00Z", reported_data("globex", "P2"), incident_id="B"),
        msg("acknowledged", "2026-10-05T09:40:00Z"),  # 11 second acknowledgement
        msg("workaround_provided", "2026-10-05T10:00:00Z", {"description": "backup cluster"}),
        {**first_triage, "data": {"priority": "P2"}},  # 13 same message_id, other content
        acknowledged,  # 14 exact duplicate
        msg("resolved", "2026-10-05T11:00:00Z", {"resolution": "fixed"}),  # 15
        msg("reported", "2026-10-05T08:00:00Z", reported_data("acme", "P3"), incident_id="C"),
        msg("acknowledged", "2026-10-05T13:00:00Z", incident_id="C"),  # 17
    ]
    rejected = {
        4: "invalid_json",
        5: "unknown_field",
        6: "naive_timestamp",
        9: "out_of_order",
        10: "unknown_customer",
        11: "transition_not_allowed",
        13: "message_id_conflict",
    }
    return lines, rejected


# Hand-computed, as of Monday 2026-10-05 14:00Z.
EXPECTED_SLA = [
    {
        "incident_id": "A",
        "customer": "acme",
        "tier": "gold",
        "priority": "P1",
        "claimed_priority": "P1",
        "state": "resolved",
        "excluded": False,
        "escalation_level": 1,
        "metrics": {
            # acknowledged after 10 min of 15
            "response": {"status": "met", "target_s": 900, "elapsed_s": 600,
                         "due_at": "2026-10-05T08:15:00Z", "stopped_at": "2026-10-05T08:10:00Z"},
            # 08:00-08:30 + 09:30-10:00 (paused 08:30-09:30), then 1 h more from the stop
            "workaround": {"status": "met", "target_s": 7200, "elapsed_s": 3600,
                           "due_at": "2026-10-05T11:00:00Z",
                           "stopped_at": "2026-10-05T10:00:00Z"},
            # 08:00-08:30 + 09:30-11:00 = 2 h of 4 h
            "resolution": {"status": "met", "target_s": 14400, "elapsed_s": 7200,
                           "due_at": "2026-10-05T13:00:00Z",
                           "stopped_at": "2026-10-05T11:00:00Z"},
            # P1: 120 h from the resolution, 3 h gone
            "postmortem": {"status": "running", "target_s": 432000, "elapsed_s": 10800,
                           "due_at": "2026-10-10T11:00:00Z", "stopped_at": None},
        },
    },
    {
        "incident_id": "C",
        "customer": "acme",
        "tier": "gold",
        "priority": "P3",
        "claimed_priority": "P3",
        "state": "open",
        "excluded": False,
        "escalation_level": 2,  # response was at risk from 3 h counted until acknowledged
        "metrics": {
            # 10:00-12:00 + 13:00-15:00 Berlin = exactly the 4 h target
            "response": {"status": "met", "target_s": 14400, "elapsed_s": 14400,
                         "due_at": "2026-10-05T13:00:00Z", "stopped_at": "2026-10-05T13:00:00Z"},
            # 10:00-12:00 + 13:00-16:00 Berlin = 5 h of 8 h; 3 h more: 16:00-17:30, Tue 09:00-10:30
            "workaround": {"status": "running", "target_s": 28800, "elapsed_s": 18000,
                           "due_at": "2026-10-06T08:30:00Z", "stopped_at": None},
            # 19 h more: Mon 1.5 h, Tue 7.5 h, Wed 7.5 h, Thu 09:00-11:30 Berlin
            "resolution": {"status": "running", "target_s": 86400, "elapsed_s": 18000,
                           "due_at": "2026-10-08T09:30:00Z", "stopped_at": None},
            "postmortem": {"status": "not_applicable", "target_s": None, "elapsed_s": None,
                           "due_at": None, "stopped_at": None},
        },
    },
]  # fmt: skip


class IngestToSlaContract:
    """What every store backend must do; subclasses provide the `store_url` fixture."""

    @pytest.fixture
    def store_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def contracts_file(self, tmp_path: Path) -> Path:
        path = tmp_path / "contracts.toml"
        path.write_text(CONTRACTS_TOML, encoding="utf-8")
        return path

    @pytest.fixture
    def slatrail(
        self, store_url: str, contracts_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> Iterator[Callable[..., tuple[int, str]]]:
        """Factory: run `slatrail ARGS…` in-process against this store; (exit code, stdout)."""

        def run(*args: str) -> tuple[int, str]:
            capsys.readouterr()
            code = main(["--store", store_url, "--contracts", str(contracts_file), *args])
            return code, capsys.readouterr().out

        yield run
        # main() points structlog at this test's captured stderr, which is closed after it
        structlog.reset_defaults()

    @pytest.fixture
    def input_file(self, tmp_path: Path) -> Path:
        lines, _ = incident_a_and_c_with_faults()
        path = tmp_path / "incidents.jsonl"
        path.write_text(jsonl(lines), encoding="utf-8")
        return path

    def ingest(self, slatrail, path: Path) -> tuple[int, dict[str, Any]]:
        code, out = slatrail("ingest", "--format", "json", str(path))
        return code, json.loads(out)

    # -- tests ---------------------------------------------------------------------------------

    def test_ingest_counts_each_outcome_and_exits_1_when_anything_was_rejected(
        self, slatrail, input_file
    ) -> None:
        code, counts = self.ingest(slatrail, input_file)
        assert code == 1
        assert counts == {
            "accepted": 9,
            "duplicate": 1,
            "rejected": 7,
            "rejected_by_code": {
                "invalid_json": 1,
                "message_id_conflict": 1,
                "naive_timestamp": 1,
                "out_of_order": 1,
                "transition_not_allowed": 1,
                "unknown_customer": 1,
                "unknown_field": 1,
            },
            "rejected_file": str(input_file.with_name("incidents.rejected.jsonl")),
        }

    def test_rejected_lines_are_kept_next_to_the_input_with_code_reason_message_and_time(
        self, slatrail, input_file
    ) -> None:
        self.ingest(slatrail, input_file)
        lines, expected = incident_a_and_c_with_faults()
        dead = input_file.with_name("incidents.rejected.jsonl")
        records = [json.loads(text) for text in dead.read_text(encoding="utf-8").splitlines()]
        assert {r["line"]: r["code"] for r in records} == expected
        for record in records:
            assert record["reason"]
            assert record["rejected_at"].endswith("Z")
            original = lines[record["line"] - 1]
            if isinstance(original, str):
                assert (record["message"], record["raw"]) == (None, original)
            else:
                assert record["message"] == original
        by_code = {r["code"]: r for r in records}
        assert "severity" in by_code["unknown_field"]["reason"]
        assert "occurred_at" in by_code["naive_timestamp"]["reason"]
        assert "globex" in by_code["unknown_customer"]["reason"]
        assert by_code["message_id_conflict"]["message_id"] == "A-triaged-08:05"
        assert by_code["out_of_order"]["incident_id"] == "A"

    def test_lines_no_parser_can_hold_are_dead_lettered_and_the_rest_is_recorded(
        self, slatrail, tmp_path
    ) -> None:
        deep, huge = "[" * 100_000, '{"n": ' + "1" * 5000 + "}"
        good = msg("reported", "2026-10-05T08:00:00Z", reported_data("acme", "P2"), incident_id="D")
        path = tmp_path / "poison.jsonl"
        path.write_text(jsonl([deep, huge, good]), encoding="utf-8")
        code, counts = self.ingest(slatrail, path)
        assert code == 1
        assert (counts["accepted"], counts["rejected"]) == (1, 2)
        dead = tmp_path / "poison.rejected.jsonl"
        records = [json.loads(text) for text in dead.read_text(encoding="utf-8").splitlines()]
        assert [(r["line"], r["code"], r["raw"]) for r in records] == [
            (1, "invalid_json", deep),
            (2, "invalid_json", huge),
        ]

    def test_accepted_messages_are_in_the_store_for_a_new_application(
        self, slatrail, input_file, store_url
    ) -> None:
        self.ingest(slatrail, input_file)
        app = open_application(store_url, contracts_from())
        try:
            histories = app.histories()
        finally:
            app.close()
        assert sorted(histories) == ["A", "C"]
        assert [str(e.type) for e in histories["A"]] == [
            "reported", "triaged", "acknowledged", "awaiting_customer", "customer_responded",
            "workaround_provided", "resolved",
        ]  # fmt: skip
        assert [e.position for e in histories["A"]] == list(range(1, 8))
        assert histories["A"][1].data == {"priority": "P1"}  # the conflict changed nothing
        assert [str(e.type) for e in histories["C"]] == ["reported", "acknowledged"]

    def test_ingesting_the_same_file_again_changes_nothing(
        self, slatrail, input_file, store_url, contracts_file
    ) -> None:
        self.ingest(slatrail, input_file)
        _, before = slatrail("audit", "A", "--format", "json")
        sla_before = slatrail("sla", "--format", "json", "--as-of", AS_OF)
        # the second time as a user runs it: the installed console script
        done = subprocess.run(
            [SLATRAIL, "--store", store_url, "--contracts", str(contracts_file),
             "ingest", str(input_file)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert "accepted 0, duplicate 10, rejected 7" in done.stdout
        assert "rejected message_id_conflict: 1" in done.stdout
        assert slatrail("audit", "A", "--format", "json")[1] == before
        assert slatrail("sla", "--format", "json", "--as-of", AS_OF) == sla_before
        # redrive.md: the dead letters of the first run are not appended again (was 7 + 7 lines)
        assert "(7 already there from an earlier run, not repeated)" in done.stdout
        dead = input_file.with_name("incidents.rejected.jsonl").read_text().splitlines()
        assert len(dead) == 7

    def test_an_interrupted_ingest_run_again_leaves_each_dead_letter_once(
        self, slatrail, input_file
    ) -> None:
        """Issue 9: a run killed mid-file (dead letters partly written, the last one torn) and
        run again: every dead letter once, none lost, the torn line kept and ended."""
        _, expected = incident_a_and_c_with_faults()
        dead = input_file.with_name("incidents.rejected.jsonl")
        self.ingest(slatrail, input_file)
        complete = dead.read_text(encoding="utf-8").splitlines()
        assert len(complete) == 7
        interrupted = "".join(line + "\n" for line in complete[:3]) + complete[3][:40]
        dead.write_text(interrupted, encoding="utf-8")
        code, counts = self.ingest(slatrail, input_file)
        assert code == 1 and counts["rejected"] == 7
        code, counts = self.ingest(slatrail, input_file)  # and once more
        assert code == 1 and counts["rejected"] == 7
        lines = dead.read_text(encoding="utf-8").splitlines()
        assert lines[3] == complete[3][:40]  # the torn line, ended by a newline
        assert lines[:3] == complete[:3]  # what the interrupted run wrote stays as it was
        records = [json.loads(text) for n, text in enumerate(lines) if n != 3]
        assert sorted(r["line"] for r in records) == sorted(expected)  # each once, none lost
        # (a line the interrupted run had not written gets the code of the run that writes
        # it: the second `acknowledged` is out_of_order once the whole file is recorded)
        assert {r["line"] for r in records if r["code"] == expected[r["line"]]} >= {
            json.loads(text)["line"] for text in complete[:3]
        }

    def test_a_file_of_good_lines_ingested_twice_is_all_duplicates_the_second_time(
        self, slatrail, tmp_path
    ) -> None:
        lines, rejected = incident_a_and_c_with_faults()
        good = [m for n, m in enumerate(lines, start=1) if n not in rejected and n != 14]
        path = tmp_path / "good.jsonl"
        path.write_text(jsonl(good), encoding="utf-8")
        assert self.ingest(slatrail, path)[0] == 0
        code, counts = self.ingest(slatrail, path)
        assert code == 0
        assert (counts["accepted"], counts["duplicate"], counts["rejected"]) == (0, 9, 0)
        assert counts["rejected_file"] is None
        assert not (tmp_path / "good.rejected.jsonl").exists()

    def test_sla_json_as_of_a_moment_equals_the_hand_computed_figures(
        self, slatrail, input_file
    ) -> None:
        self.ingest(slatrail, input_file)
        code, out = slatrail("sla", "--format", "json", "--as-of", AS_OF)
        assert code == 0
        assert json.loads(out) == EXPECTED_SLA

    def test_sla_for_one_incident_as_of_an_earlier_moment(self, slatrail, input_file) -> None:
        self.ingest(slatrail, input_file)
        code, out = slatrail(
            "sla", "--format", "json", "--incident", "A", "--as-of", "2026-10-05T11:45:00+02:00"
        )
        assert code == 0
        [a] = json.loads(out)
        assert a["state"] == "open"
        # 08:00-08:30Z + 09:30-09:45Z counted (paused 08:30-09:30Z); 3 h 15 min still to go
        assert a["metrics"]["resolution"] == {
            "status": "running", "target_s": 14400, "elapsed_s": 2700,
            "due_at": "2026-10-05T13:00:00Z", "stopped_at": None,
        }  # fmt: skip
        assert a["metrics"]["postmortem"]["status"] == "pending"

    def test_sla_of_an_unknown_incident_says_so(self, slatrail, input_file) -> None:
        self.ingest(slatrail, input_file)
        code, out = slatrail("sla", "--incident", "B")
        assert code == 1
        assert "no incident 'B'" in out

    def test_audit_json_is_the_hash_chained_trail_of_one_incident(
        self, slatrail, input_file
    ) -> None:
        self.ingest(slatrail, input_file)
        code, out = slatrail("audit", "A", "--format", "json")
        assert code == 0
        trail = json.loads(out)
        assert [(e["position"], e["type"]) for e in trail] == [
            (1, "reported"), (2, "triaged"), (3, "acknowledged"), (4, "awaiting_customer"),
            (5, "customer_responded"), (6, "workaround_provided"), (7, "resolved"),
        ]  # fmt: skip
        first = trail[0]
        assert set(first) >= {
            "incident_id", "position", "occurred_at", "recorded_at", "type", "actor", "source",
            "message_id", "data", "prev_hash", "hash",
        }  # fmt: skip
        assert first["occurred_at"] == "2026-10-05T08:00:00Z"
        assert first["recorded_at"].endswith("Z")
        assert first["message_id"] == "A-reported-08:00"
        assert first["data"]["customer"] == "acme"
        assert first["prev_hash"] == "0" * 64
        for previous, entry in itertools.pairwise(trail):
            assert entry["prev_hash"] == previous["hash"]
        assert len({e["hash"] for e in trail}) == 7

    def test_audit_as_of_shows_only_what_had_happened(self, slatrail, input_file) -> None:
        self.ingest(slatrail, input_file)
        code, out = slatrail("audit", "A", "--format", "json", "--as-of", "2026-10-05T08:30:00Z")
        assert code == 0
        assert [e["type"] for e in json.loads(out)] == [
            "reported",
            "triaged",
            "acknowledged",
            "awaiting_customer",
        ]


class TwoWritersContract:
    """Two application instances writing to one store (e.g. `serve` and `slatrail ingest`)."""

    NOW = datetime(2026, 4, 1, tzinfo=UTC)

    @pytest.fixture
    def writers(self, store_url: str) -> Iterator[tuple[SlatrailApplication, SlatrailApplication]]:
        first = open_application(store_url, contracts_from())
        second = open_application(store_url, contracts_from())
        yield first, second
        first.close()
        second.close()

    def send(self, app: SlatrailApplication, *messages: dict[str, Any]) -> list[Outcome]:
        return app.record([decode(line(m)) for m in messages], now=self.NOW)

    def test_a_writer_with_a_stale_view_does_not_refuse_what_the_history_allows(
        self, writers
    ) -> None:
        first, second = writers
        opened = msg("reported", "2026-03-02T09:00:00Z", reported_data("acme", "P2"))
        assert self.send(first, opened)[0].status == "accepted"
        assert self.send(second, msg("acknowledged", "2026-03-02T09:01:00Z"))[0].position == 2
        # `first` last saw the incident open and unacknowledged; meanwhile it was resolved
        resolve = msg("resolved", "2026-03-02T09:30:00Z", {"resolution": "fixed"})
        assert self.send(second, resolve)[0].position == 3
        [reopened] = self.send(first, msg("reopened", "2026-03-02T10:00:00Z", {"reason": "r"}))
        assert (reopened.status, reopened.position) == ("accepted", 4)

    def test_a_writer_with_a_stale_view_refuses_what_the_history_forbids(self, writers) -> None:
        first, second = writers
        opened = msg("reported", "2026-03-02T09:00:00Z", reported_data("acme", "P2"))
        self.send(first, opened)
        self.send(second, msg("acknowledged", "2026-03-02T09:01:00Z"))
        [again] = self.send(first, msg("acknowledged", "2026-03-02T09:02:00Z"))
        assert again.code == "transition_not_allowed"
        # late, and not awaiting the customer at 09:00:30: the stored history refuses it
        [late] = self.send(first, msg("customer_responded", "2026-03-02T09:00:30Z"))
        assert late.code == "out_of_order"
        events = first.incident_events("A")
        assert [e.position for e in events] == [1, 2]
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))


class TestOnSQLite(IngestToSlaContract, TwoWritersContract):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/slatrail.db"


class TestOnPostgreSQL(IngestToSlaContract, TwoWritersContract):
    @pytest.fixture
    def store_url(self, postgres_url: str) -> str:
        return postgres_url
