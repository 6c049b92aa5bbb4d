"""`slatrail verify` against real stores tampered with directly in the database (docs/audit.md §3).

`VerifyContract` holds the tests; `TestOnSQLite` and `TestOnPostgreSQL` say how to reach the
store's raw rows (sqlite3 / psycopg). Every tampering is one an attacker with database access
could do: change bytes of a stored event (still decoding, or not), delete an event, swap two
events, edit a read model. Each must give exit 1 and name the incident, position and what
differs; the untouched store exits 0.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from slatrail.domain.contract_version import CONTRACTS_ID, version_fields
from slatrail.domain.model import chain_hash, incident_uuid
from slatrail.infra.cli import main
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import CONTRACTS_TOML, contracts_from, line, reported_data, utc, wire

pytestmark = pytest.mark.integration

T0 = utc(2026, 3, 2, 9)
MIN = timedelta(minutes=1)
WITH_DE = CONTRACTS_TOML.replace(
    'extra_holidays = ["2026-03-04"]', 'extra_holidays = ["2026-03-04"]\nholidays = "DE"'
)


def record_incidents(url: str) -> None:
    """INC-1 (acme P1, five events) and INC-2 (acme P3, two), recorded at known instants."""
    app = open_application(url, contracts_from())
    one = [
        ("reported", T0, reported_data(priority="P1")),
        ("triaged", T0 + 2 * MIN, {"priority": "P1"}),
        ("acknowledged", T0 + 10 * MIN, {}),
        ("workaround_provided", T0 + 40 * MIN, {"description": "backup cluster"}),
        ("resolved", T0 + 90 * MIN, {"resolution": "fixed"}),
    ]
    two = [("reported", T0 + 5 * MIN, reported_data(priority="P3")),
           ("acknowledged", T0 + 30 * MIN, {})]  # fmt: skip
    for incident_id, facts in (("INC-1", one), ("INC-2", two)):
        for index, (kind, at, data) in enumerate(facts, start=1):
            message = wire(kind, at, data, incident_id=incident_id,
                           message_id=f"{incident_id}-{index}")  # fmt: skip
            outcomes = app.record([decode(line(message))], now=at + MIN)
            assert outcomes[0].status == "accepted", outcomes
    app.close()


def assert_read_as_the_recorder_gives(store_url: str, count: int) -> None:
    from slatrail.infra.verify import stored_notifications, stored_records

    app = open_application(store_url, contracts_from())
    try:
        want = [(n.id, UUID(str(n.originator_id)).int, n.originator_version, n.topic,
                 bytes(n.state)) for n in stored_notifications(app)]  # fmt: skip
        assert len(want) == count
        for page in (1, 4, count, 10_000):
            pages = list(stored_records(app, page=page))
            assert all(0 < len(records) <= page for records in pages)
            read = [record for records in pages for record in records]
            assert [(n, key, version, topic, bytes(state))
                    for n, key, version, topic, state in read] == want  # fmt: skip
    finally:
        app.close()


class RawStore:
    """The event store's rows, as an attacker with database access sees them."""

    table = ""
    id_column = ""

    def connect(self) -> Any:
        raise NotImplementedError

    def key(self, incident_id: str) -> Any:
        return self.uuid_key(incident_uuid(incident_id))

    def uuid_key(self, aggregate_id: UUID) -> Any:
        raise NotImplementedError

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        conn = self.connect()
        try:
            cur = conn.cursor()
            yield cur
            conn.commit()
        finally:
            conn.close()

    def sql(self, text: str) -> str:
        return text

    def state(self, incident_id: str | UUID, version: int) -> bytes:
        key = self.uuid_key(incident_id) if isinstance(incident_id, UUID) else self.key(incident_id)
        with self.cursor() as cur:
            cur.execute(
                self.sql(f"SELECT state FROM {self.table} "
                         "WHERE originator_id = ? AND originator_version = ?"),
                (key, version),
            )  # fmt: skip
            return bytes(cur.fetchone()[0])

    def set_state(self, incident_id: str | UUID, version: int, state: bytes) -> None:
        key = self.uuid_key(incident_id) if isinstance(incident_id, UUID) else self.key(incident_id)
        with self.cursor() as cur:
            cur.execute(
                self.sql(f"UPDATE {self.table} SET state = ? "
                         "WHERE originator_id = ? AND originator_version = ?"),
                (state, key, version),
            )  # fmt: skip
            assert cur.rowcount == 1

    def delete(self, incident_id: str, version: int) -> None:
        with self.cursor() as cur:
            cur.execute(
                self.sql(f"DELETE FROM {self.table} "
                         "WHERE originator_id = ? AND originator_version = ?"),
                (self.key(incident_id), version),
            )  # fmt: skip
            assert cur.rowcount == 1

    def renumber(self, incident_id: str, old: int, new: int) -> None:
        with self.cursor() as cur:
            cur.execute(
                self.sql(f"UPDATE {self.table} SET originator_version = ? "
                         "WHERE originator_id = ? AND originator_version = ?"),
                (new, self.key(incident_id), old),
            )  # fmt: skip

    def read_model(self, statement: str, params: tuple[Any, ...] = ()) -> int:
        raise NotImplementedError


class SQLiteRaw(RawStore):
    table = "stored_events"

    def __init__(self, path: Path) -> None:
        self.path = path

    def connect(self) -> Any:
        return sqlite3.connect(self.path)

    def uuid_key(self, aggregate_id: UUID) -> Any:
        return aggregate_id.hex

    def read_model(self, statement: str, params: tuple[Any, ...] = ()) -> int:
        conn = sqlite3.connect(self.path.with_name(f"{self.path.stem}-read{self.path.suffix}"))
        try:
            changed = conn.execute(statement, params).rowcount
            conn.commit()
            return changed
        finally:
            conn.close()


class PostgresRaw(RawStore):
    table = "slatrail_events"

    def __init__(self, url: str) -> None:
        self.url = url

    def connect(self) -> Any:
        return psycopg.connect(self.url)

    def uuid_key(self, aggregate_id: UUID) -> Any:
        return aggregate_id

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")

    def read_model(self, statement: str, params: tuple[Any, ...] = ()) -> int:
        with psycopg.connect(self.url) as conn:
            return conn.execute(self.sql(statement), params).rowcount


Run = Callable[..., tuple[int, Any]]


class VerifyContract:
    """The tests; subclasses provide `store_url` and `raw`."""

    @pytest.fixture
    def store_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def raw(self, store_url: str) -> RawStore:
        raise NotImplementedError

    @pytest.fixture
    def run(self, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
        contracts = tmp_path / "contracts.toml"
        contracts.write_text(CONTRACTS_TOML)
        record_incidents(store_url)

        def run(*args: str) -> tuple[int, Any]:
            capsys.readouterr()
            code = main(["--store", store_url, "--contracts", str(contracts), *args])
            out = capsys.readouterr().out
            return code, json.loads(out) if "--format" in args else out

        return run

    @staticmethod
    def found(report: dict[str, Any]) -> set[tuple[str, str | None, int | None]]:
        return {(d["kind"], d["incident_id"], d["position"]) for d in report["differences"]}

    # -- reading the store -----------------------------------------------------------------

    def test_every_stored_record_is_read_as_the_recorder_gives_it(
        self, run: Run, store_url: str
    ) -> None:
        """`verify` reads an SQLite store's rows itself, not as the recorder's `Notification`
        objects: the same records in the same order, a page at a time, each aggregate as its
        UUID's integer."""
        assert_read_as_the_recorder_gives(store_url, 14)  # 7 events, 7 receipts

    def test_the_cycle_collector_is_paused_for_the_pass_and_resumed_after_it(
        self, run: Run, store_url: str
    ) -> None:
        import gc

        from slatrail.infra.verify import verify_chains

        app = open_application(store_url, contracts_from())
        seen: list[bool] = []

        def observe(notification_id: int, event: object) -> None:
            seen.append(gc.isenabled())
            if len(seen) == 3:
                raise RuntimeError("stop")

        try:
            assert gc.isenabled()
            with pytest.raises(RuntimeError):
                verify_chains(app, observers=[observe])
            assert seen == [False] * 3 and gc.isenabled()  # resumed after a failure too
            verifier = verify_chains(app, index=True)
            assert gc.isenabled() and verifier.differences == []
            gc.disable()  # a caller's choice is kept
            try:
                verify_chains(app)
                assert not gc.isenabled()
            finally:
                gc.enable()
        finally:
            app.close()

    # -- the untouched store -------------------------------------------------------------

    def test_an_untouched_store_verifies_with_exit_0(self, run: Run) -> None:
        code, report = run("verify", "--format", "json")
        assert code == 0
        assert report["ok"] is True
        assert (report["incidents"], report["events"], report["receipts"]) == (2, 7, 7)
        assert report["differences"] == []

    def test_the_table_summarises_and_exits_0(self, run: Run) -> None:
        code, text = run("verify")
        assert code == 0
        assert text.startswith("verified 7 events of 2 incidents and 7 message receipts: OK")

    # -- altered, deleted, reordered events ------------------------------------------------

    def test_a_changed_byte_that_still_decodes_is_a_hash_mismatch(
        self, run: Run, raw: RawStore
    ) -> None:
        state = raw.state("INC-1", 3)
        assert b'"actor":"li.wei"' in state
        raw.set_state("INC-1", 3, state.replace(b'"actor":"li.wei"', b'"actor":"li.wej"'))
        code, report = run("verify", "--format", "json")
        assert code == 1
        assert self.found(report) == {("hash_mismatch", "INC-1", 3)}
        code, text = run("verify")
        assert code == 1
        assert "INC-1 #3: hash_mismatch: stored hash" in text
        assert "1 difference(s)" in text

    def test_a_changed_byte_that_no_longer_decodes_is_reported_as_undecodable(
        self, run: Run, raw: RawStore
    ) -> None:
        state = bytearray(raw.state("INC-1", 2))
        state[0] = ord("[")  # the JSON object now opens as an array
        raw.set_state("INC-1", 2, bytes(state))
        code, report = run("verify", "--format", "json")
        assert code == 1
        assert self.found(report) == {("undecodable", "INC-1", 2)}
        assert "does not decode" in report["differences"][0]["detail"]

    def test_a_deleted_event_is_a_missing_position_and_an_orphan_receipt(
        self, run: Run, raw: RawStore
    ) -> None:
        raw.delete("INC-1", 2)
        code, report = run("verify", "--format", "json")
        assert code == 1
        assert self.found(report) == {
            ("missing_position", "INC-1", 2),
            ("receipt_orphan", "INC-1", 2),
        }

    def test_a_deleted_last_event_is_found_by_its_receipt(self, run: Run, raw: RawStore) -> None:
        raw.delete("INC-2", 2)
        code, report = run("verify", "--format", "json")
        assert code == 1
        assert self.found(report) == {("receipt_orphan", "INC-2", 2)}

    def test_two_events_with_swapped_states_break_hashes_links_and_receipts(
        self, run: Run, raw: RawStore
    ) -> None:
        second, third = raw.state("INC-1", 2), raw.state("INC-1", 3)
        raw.set_state("INC-1", 2, third)
        raw.set_state("INC-1", 3, second)
        code, report = run("verify", "--format", "json")
        assert code == 1
        assert {
            ("hash_mismatch", "INC-1", 2), ("hash_mismatch", "INC-1", 3),
            ("broken_link", "INC-1", 2), ("broken_link", "INC-1", 3),
            ("broken_link", "INC-1", 4),
            ("receipt_mismatch", "INC-1", 2), ("receipt_mismatch", "INC-1", 3),
        } == self.found(report)  # fmt: skip

    def test_two_events_with_swapped_versions_are_out_of_order(
        self, run: Run, raw: RawStore
    ) -> None:
        raw.renumber("INC-1", 2, 99)
        raw.renumber("INC-1", 3, 2)
        raw.renumber("INC-1", 99, 3)
        code, report = run("verify", "--format", "json")
        assert code == 1
        found = self.found(report)
        assert ("out_of_order", "INC-1", 3) in found
        assert {("hash_mismatch", "INC-1", 2), ("hash_mismatch", "INC-1", 3)} <= found
        assert {("receipt_mismatch", "INC-1", 2), ("receipt_mismatch", "INC-1", 3)} <= found

    # -- contract versions and their holiday tables -----------------------------------------

    @pytest.fixture
    def with_de(self, store_url: str, tmp_path: Path, run: Run) -> Run:
        """The store's contract version 1 is CONTRACTS_TOML with German public holidays; the
        returned runner passes that file as --contracts."""
        path = tmp_path / "with-de.toml"
        path.write_text(WITH_DE)

        def run_de(*args: str) -> tuple[int, Any]:
            return run("--contracts", str(path), *args)  # the later --contracts wins

        code, out = run_de(
            "contracts", "apply", str(path), "--effective-from", "1970-01-01T00:00:00Z",
            "--reason", "German public holidays",
        )  # fmt: skip
        assert code == 0, out
        return run_de

    def test_a_version_records_its_holiday_tables_and_verifies(self, with_de: Run) -> None:
        code, report = with_de("verify", "--format", "json")
        assert code == 0, report
        code, shown = with_de("contracts", "show", "1", "--format", "json")
        assert shown["holiday_tables"]["DE"]["source"].startswith("holidays ")
        assert "2026-12-25" in shown["holidays"]["DE"]["days_off"]["2026"]

    def test_a_changed_recorded_holiday_is_a_hash_mismatch_of_the_version(
        self, with_de: Run, raw: RawStore
    ) -> None:
        state = raw.state(CONTRACTS_ID, 1)
        assert state.count(b"2026-12-25") == 1
        raw.set_state(CONTRACTS_ID, 1, state.replace(b"2026-12-25", b"2026-12-24"))
        code, report = with_de("verify", "--format", "json")
        assert code == 1
        details = [(d["kind"], d["detail"]) for d in report["differences"]]
        assert details == [(
            "hash_mismatch",
            "contract version 1: the hash does not match the version's fields and holiday tables",
        )]  # fmt: skip

    def test_a_version_recorded_before_holiday_tables_verifies_and_asks_the_package(
        self, with_de: Run, raw: RawStore
    ) -> None:
        """The stored state as the code before holiday tables wrote it: no `holidays`, no
        `class_version`, the hash without `holidays_sha256`."""
        state = json.loads(raw.state(CONTRACTS_ID, 1))
        del state["holidays"], state["class_version"]
        fields = version_fields(
            version=1, sha256=state["sha256"],
            effective_from=datetime.fromisoformat(state["effective_from"]["_data_"]),
            recorded_at=datetime.fromisoformat(state["timestamp"]["_data_"]),
            actor=state["actor"], reason=state["reason"],
        )  # fmt: skip
        state["hash"] = chain_hash(state["prev_hash"], fields)
        raw.set_state(CONTRACTS_ID, 1, json.dumps(state, separators=(",", ":")).encode())
        code, report = with_de("verify", "--format", "json")
        assert code == 0, report
        code, shown = with_de("contracts", "show", "1", "--format", "json")
        assert (shown["holiday_tables"], shown["holidays_sha256"]) == ({}, None)

    # -- read models -----------------------------------------------------------------------

    def test_read_models_rebuilt_by_replay_verify_clean(self, run: Run) -> None:
        assert run("replay")[0] == 0
        code, report = run("verify", "--format", "json")
        assert code == 0, report
        assert report["read_models"] == ["sla (7 rows)", "audit (7 rows)"]

    def test_a_drifted_audit_read_model_is_reported_field_by_field(
        self, run: Run, raw: RawStore
    ) -> None:
        assert run("replay")[0] == 0
        changed = raw.read_model(
            "UPDATE rm_audit_events SET actor = 'mallory' "
            "WHERE incident_id = 'INC-1' AND position = 3"
        )
        assert changed == 1
        code, report = run("verify", "--format", "json")
        assert code == 1
        assert self.found(report) == {("read_model_drift", "INC-1", 3)}
        detail = report["differences"][0]["detail"]
        assert detail == "read model audit: actor is 'mallory', the store has 'li.wei'"

    def test_damaged_read_model_rows_and_store_events_are_reported_not_fatal(
        self, run: Run, raw: RawStore
    ) -> None:
        assert run("replay")[0] == 0
        raw.read_model("UPDATE rm_audit_events SET type = 'bogus' WHERE incident_id = 'INC-2'")
        state = bytearray(raw.state("INC-1", 2))
        state[0] = ord("[")
        raw.set_state("INC-1", 2, bytes(state))
        code, report = run("verify", "--format", "json")
        assert code == 1
        assert self.found(report) == {
            ("undecodable", "INC-1", 2),
            ("read_model_drift", "INC-2", None),
        }
        [drift] = [d for d in report["differences"] if d["kind"] == "read_model_drift"]
        assert drift["detail"].startswith(
            "read model audit: position 1 does not hash to its stored hash"
        )

    def test_a_large_store_summarises_read_models_in_a_process_with_the_same_result(
        self, run: Run, raw: RawStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert run("replay")[0] == 0
        raw.read_model("UPDATE rm_sla_events SET data = '{}' WHERE incident_id = 'INC-2'")
        raw.delete("INC-1", 5)  # found through its receipt only
        second, third = raw.state("INC-1", 2), raw.state("INC-1", 3)
        raw.set_state("INC-1", 2, third)
        raw.set_state("INC-1", 3, second)
        state = bytearray(raw.state("INC-2", 2))
        state[0] = ord("[")
        raw.set_state("INC-2", 2, bytes(state))
        in_process = run("verify", "--format", "json")
        monkeypatch.setattr("slatrail.infra.verify.PARALLEL_FROM", 0)
        in_parallel = run("verify", "--format", "json")
        assert in_process[0] == in_parallel[0] == 1

        def details(report: dict[str, Any]) -> list[str]:  # "as of <now>" differs: drop it
            return [re.sub(r"as of \S+", "as of now", d["detail"]) for d in report["differences"]]

        assert details(in_process[1]) == details(in_parallel[1])
        assert {k: v for k, v in in_process[1].items() if k != "differences"} == {
            k: v for k, v in in_parallel[1].items() if k != "differences"
        }
        found = self.found(in_parallel[1])
        assert {
            ("read_model_drift", "INC-2", 1),
            ("receipt_orphan", "INC-1", 5),
            ("receipt_mismatch", "INC-1", 2),
            ("hash_mismatch", "INC-1", 3),
            ("undecodable", "INC-2", 2),
        } <= found
        assert ("receipt_orphan", "INC-2", 2) not in found  # its event is undecodable

    def test_a_row_missing_from_the_sla_read_model_changes_the_sla_answer(
        self, run: Run, raw: RawStore
    ) -> None:
        assert run("replay", "--projection", "sla")[0] == 0
        raw.read_model("DELETE FROM rm_sla_events WHERE incident_id = 'INC-1' AND position = 3")
        code, report = run("verify", "--format", "json")
        assert code == 1
        details = [d["detail"] for d in report["differences"]]
        assert self.found(report) == {
            ("read_model_drift", "INC-1", 3),
            ("read_model_drift", "INC-1", None),
        }
        assert "read model sla: missing (positions after it are there)" in details
        assert any(
            "metrics.response.status is 'breached', rebuilt from the store 'met'" in d
            for d in details
        )
        assert run("replay", "--projection", "sla")[0] == 0
        assert run("verify")[0] == 0


class TestOnSQLite(VerifyContract):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'store.db'}"

    @pytest.fixture
    def raw(self, tmp_path: Path) -> RawStore:
        return SQLiteRaw(tmp_path / "store.db")

    def test_an_aggregate_id_stored_in_another_uuid_form_is_read_as_the_same_aggregate(
        self, run: Run, store_url: str, tmp_path: Path
    ) -> None:
        """The recorder stores 32 hex digits; a row holding the id with dashes or braces (which
        the recorder reads as the same UUID) is read as that aggregate too."""
        conn = sqlite3.connect(tmp_path / "store.db")
        try:
            key = incident_uuid("INC-1")
            for version, text in ((2, str(key)), (3, "{" + str(key).upper() + "}")):
                conn.execute(
                    "UPDATE stored_events SET originator_id = ? "
                    "WHERE originator_id = ? AND originator_version = ?",
                    (text, key.hex, version),
                )
            conn.commit()
        finally:
            conn.close()
        assert_read_as_the_recorder_gives(store_url, 14)
        code, report = run("verify", "--format", "json")
        assert (code, report["differences"]) == (0, [])


class TestOnPostgreSQL(VerifyContract):
    @pytest.fixture
    def store_url(self, postgres_url: str) -> str:
        return postgres_url

    @pytest.fixture
    def raw(self, store_url: str) -> RawStore:
        return PostgresRaw(store_url)
