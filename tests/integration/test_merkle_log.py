"""The Merkle log against an attacker with database access (docs/audit.md §9), on real SQLite and
PostgreSQL stores: after a checkpoint every tampering is found by `verify --checkpoint` and
fails the affected inclusion proofs; a store with one event changed fails a consistency proof
(and the witness) against the first store's checkpoint."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from slatrail.domain.log_entries import event_leaf
from slatrail.domain.merkle import leaf_hash, verify_inclusion
from slatrail.domain.model import event_from_dict, incident_uuid, receipt_uuid
from slatrail.infra.bootstrap import utc_now
from slatrail.infra.cli import main
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import CONTRACTS_TOML, contracts_from, line, wire
from tests.integration.test_verify_store import (
    MIN,
    T0,
    PostgresRaw,
    RawStore,
    SQLiteRaw,
    record_incidents,
)

pytestmark = pytest.mark.integration


def record(url: str, kind: str, incident: str, n: int, *, at: Any, now: Any, **data: Any) -> None:
    app = open_application(url, contracts_from())
    message = wire(kind, at, data or None, incident_id=incident, message_id=f"{incident}-{n}")
    outcomes = app.record([decode(line(message))], now=now)
    app.close()
    assert outcomes[0].status == "accepted", outcomes


def forged_states(tmp_path: Path, changes: dict[int, dict[str, Any]]) -> dict[int, bytes]:
    """INC-1's stored states in a scratch store where the history was recorded differently
    (a consistent chain, hashes recomputed by slatrail's own code: what a forger would do)."""
    scratch = tmp_path / "forged2.db"
    url = f"sqlite:///{scratch}"
    facts = [
        ("reported", T0, {"customer": "acme", "title": "Calls drop after 30 s", "priority": "P1"}),
        ("triaged", T0 + 2 * MIN, {"priority": "P1"}),
        ("acknowledged", T0 + 10 * MIN, {}),
        ("workaround_provided", T0 + 40 * MIN, {"description": "backup cluster"}),
        ("resolved", T0 + 90 * MIN, {"resolution": "fixed"}),
    ]
    for index, (kind, at, data) in enumerate(facts, start=1):
        data = {**data, **changes.get(index, {})}
        record(url, kind, "INC-1", index, at=at, now=at + MIN, **data)
    forged = SQLiteRaw(scratch)
    return {v: forged.state("INC-1", v) for v in range(1, 6)}


class MerkleContract:
    @pytest.fixture
    def store_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def raw(self, store_url: str) -> RawStore:
        raise NotImplementedError

    @pytest.fixture
    def run(
        self,
        store_url: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> Any:
        contracts = tmp_path / "contracts.toml"
        contracts.write_text(CONTRACTS_TOML)
        monkeypatch.setenv("SLATRAIL_SIGNING_KEY", str(tmp_path / "log.key"))
        monkeypatch.setenv("SLATRAIL_CHECKPOINT_SETTLE_S", "0")
        record_incidents(store_url)

        def run(*args: str, store: str = store_url) -> tuple[int, Any]:
            capsys.readouterr()
            code = main(["--store", store, "--contracts", str(contracts), *args])
            out = capsys.readouterr().out
            try:
                return code, json.loads(out)
            except ValueError:
                return code, out

        assert run("keys", "init")[0] == 0
        code, note = run("checkpoint", "--output", str(tmp_path / "cp.txt"))
        assert code == 0 and note.startswith("slatrail.local/incidents\n14\n"), note
        return run

    def proofs_hold(self, run: Any, tmp_path: Path, incident: str) -> list[bool]:
        """Each inclusion proof of `incident` checked against the checkpoint, from the event
        as the store now holds it."""
        code, document = run("prove", incident, "--checkpoint", str(tmp_path / "cp.txt"))
        assert code == 0, document
        root = base64.b64decode(document["checkpoint"]["root"])
        size = document["checkpoint"]["tree_size"]
        return [
            verify_inclusion(
                p["leaf_index"],
                size,
                leaf_hash(event_leaf(event_from_dict(p["event"]))),
                [base64.b64decode(h) for h in p["path"]],
                root,
            )
            for p in document["proofs"]
        ]

    @staticmethod
    def kinds(report: dict[str, Any]) -> set[str]:
        return {d["kind"] for d in report["differences"]}

    def verify(self, run: Any, tmp_path: Path) -> tuple[int, dict[str, Any]]:
        return run(  # type: ignore[no-any-return]
            "verify", "--skip-read-models", "--format", "json",
            "--checkpoint", str(tmp_path / "cp.txt"),
        )  # fmt: skip

    def test_an_untouched_store_and_its_proofs_verify(self, run: Any, tmp_path: Path) -> None:
        code, report = self.verify(run, tmp_path)
        assert code == 0, report
        assert any("14 records checked" in note for note in report["notes"])
        assert self.proofs_hold(run, tmp_path, "INC-1") == [True] * 5

    def test_an_altered_event_fails_verify_and_its_proof(
        self, run: Any, raw: RawStore, tmp_path: Path
    ) -> None:
        state = raw.state("INC-1", 3)
        raw.set_state("INC-1", 3, state.replace(b"li.wei", b"mallo"))
        code, report = self.verify(run, tmp_path)
        assert code == 1
        assert {"checkpoint_mismatch", "leaf_mismatch"} <= self.kinds(report)
        assert ("leaf_mismatch", "INC-1", 3) in {
            (d["kind"], d["incident_id"], d["position"]) for d in report["differences"]
        }
        assert self.proofs_hold(run, tmp_path, "INC-1") == [True, True, False, True, True]

    def test_a_chain_rewritten_with_recomputed_hashes_passes_plain_verify_not_the_checkpoint(
        self, run: Any, raw: RawStore, tmp_path: Path
    ) -> None:
        forged = forged_states(tmp_path, {4: {"description": "nothing was down"}})
        for version, state in forged.items():
            raw.set_state("INC-1", version, state)
        code, plain = self.verify(run, tmp_path)
        assert code == 1
        assert {"checkpoint_mismatch", "leaf_mismatch"} <= self.kinds(plain)
        assert not {"hash_mismatch", "broken_link"} & self.kinds(plain)  # the chain is clean
        assert False in self.proofs_hold(run, tmp_path, "INC-1")

    def test_an_event_inserted_mid_chain_is_found(
        self, run: Any, raw: RawStore, tmp_path: Path
    ) -> None:
        # the forger moves the later events up one position and puts a forged one at 3
        for version in (5, 4, 3):
            raw.renumber("INC-1", version, version + 1)
        raw.insert_copy("INC-1", 4, 3)  # type: ignore[attr-defined]
        code, report = self.verify(run, tmp_path)
        assert code == 1
        assert {"checkpoint_mismatch", "leaf_mismatch"} <= self.kinds(report)

    def test_a_deleted_incident_with_its_receipts_is_found(
        self, run: Any, raw: RawStore, tmp_path: Path
    ) -> None:
        raw.delete_incident("INC-2", ["INC-2-1", "INC-2-2"])  # type: ignore[attr-defined]
        code, report = self.verify(run, tmp_path)
        assert code == 1
        assert {"log_truncated", "leaf_mismatch"} <= self.kinds(report)

    def test_reordered_events_are_found(self, run: Any, raw: RawStore, tmp_path: Path) -> None:
        first, second = raw.state("INC-2", 1), raw.state("INC-1", 2)
        raw.set_state("INC-2", 1, second)
        raw.set_state("INC-1", 2, first)
        code, report = self.verify(run, tmp_path)
        assert code == 1
        assert {"checkpoint_mismatch", "leaf_mismatch"} <= self.kinds(report)
        assert self.proofs_hold(run, tmp_path, "INC-2")[0] is False

    def test_a_back_dated_append_after_the_checkpoint_is_found_an_honest_one_is_not(
        self, run: Any, store_url: str, tmp_path: Path
    ) -> None:
        record(store_url, "resolved", "INC-2", 3, at=T0 + 50 * MIN, now=T0 + 60 * MIN,
               resolution="fixed")  # fmt: skip
        code, report = self.verify(run, tmp_path)
        assert code == 1
        assert [(d["kind"], d["incident_id"], d["position"]) for d in report["differences"]] == [
            ("backdated_append", "INC-2", 3)
        ]
        code, plain = run("verify", "--skip-read-models", "--format", "json")
        assert code == 1  # the latest stored checkpoint is used without --checkpoint
        assert "backdated_append" in self.kinds(plain)

    def test_an_honest_append_after_the_checkpoint_verifies(
        self, run: Any, store_url: str, tmp_path: Path
    ) -> None:
        now = utc_now()
        record(store_url, "resolved", "INC-2", 3, at=now, now=now, resolution="fixed")
        code, report = self.verify(run, tmp_path)
        assert code == 0, report

    def test_a_store_truncated_to_nothing_fails_the_checkpoint(
        self, run: Any, raw: RawStore, tmp_path: Path
    ) -> None:
        raw.delete_everything()  # type: ignore[attr-defined]
        code, report = self.verify(run, tmp_path)
        assert code == 1
        assert "log_truncated" in self.kinds(report)

    def test_a_second_store_with_one_event_changed_is_not_consistent_with_the_first(
        self, run: Any, tmp_path: Path, second_url: str
    ) -> None:
        record_incidents(second_url)
        # the second store: the same history but INC-2's acknowledgement altered, then one more
        raw = self.raw_of(second_url)
        raw.set_state("INC-2", 2, raw.state("INC-2", 2).replace(b"li.wei", b"mallo"))
        now = utc_now()
        record(second_url, "resolved", "INC-2", 3, at=now, now=now, resolution="fixed")
        code, _ = run("checkpoint", "--output", str(tmp_path / "cp2.txt"), store=second_url)
        assert code == 0
        proof = tmp_path / "proof.json"
        code, document = run("prove", "--consistency", str(tmp_path / "cp.txt"),
                             str(tmp_path / "cp2.txt"), store=second_url)  # fmt: skip
        assert code == 0
        proof.write_text(json.dumps(document))
        state = tmp_path / "witness.txt"
        assert run("witness", str(tmp_path / "cp.txt"), "--state", str(state))[0] == 0
        code, _ = run("witness", str(tmp_path / "cp2.txt"), "--state", str(state),
                      "--proof", str(proof))  # fmt: skip
        assert code == 1  # refused: not consistent
        assert state.read_text() == (tmp_path / "cp.txt").read_text()

    def raw_of(self, url: str) -> RawStore:
        raise NotImplementedError


def _extend(raw_class: type[RawStore]) -> type[RawStore]:
    class Raw(raw_class):  # type: ignore[valid-type, misc]
        def insert_copy(self, incident: str, from_version: int, version: int) -> None:
            with self.cursor() as cur:
                cur.execute(
                    self.sql(f"INSERT INTO {self.table} (originator_id, originator_version, "
                             f"topic, state) SELECT originator_id, ?, topic, state FROM "
                             f"{self.table} WHERE originator_id = ? AND originator_version = ?"),
                    (version, self.key(incident), from_version),
                )  # fmt: skip

        def delete_incident(self, incident: str, message_ids: list[str]) -> None:
            ids = [incident_uuid(incident), *(receipt_uuid(m) for m in message_ids)]
            keys = [u.hex if isinstance(self, SQLiteRaw) else u for u in ids]
            with self.cursor() as cur:
                for key in keys:
                    cur.execute(self.sql(f"DELETE FROM {self.table} WHERE originator_id = ?"),
                                (key,))  # fmt: skip

        def delete_everything(self) -> None:
            with self.cursor() as cur:
                cur.execute(f"DELETE FROM {self.table}")

    return Raw


SQLiteTamper = _extend(SQLiteRaw)
PostgresTamper = _extend(PostgresRaw)


class TestOnSQLite(MerkleContract):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'store.db'}"

    @pytest.fixture
    def second_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'second.db'}"

    @pytest.fixture
    def raw(self, tmp_path: Path) -> RawStore:
        return SQLiteTamper(tmp_path / "store.db")

    def raw_of(self, url: str) -> RawStore:
        return SQLiteTamper(Path(url.removeprefix("sqlite:///")))

    def test_a_large_store_checks_the_log_in_its_own_process_with_the_same_result(
        self, run: Any, raw: RawStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        raw.set_state("INC-1", 3, raw.state("INC-1", 3).replace(b"li.wei", b"mallo"))
        alone = self.verify(run, tmp_path)
        monkeypatch.setattr("slatrail.infra.commands.verify.PARALLEL_FROM", 0)

        def not_here(*args: Any) -> None:
            raise AssertionError("the log pass ran in this process")

        monkeypatch.setattr("slatrail.infra.commands.verify.check_log", not_here)
        assert self.verify(run, tmp_path) == alone
        assert alone[0] == 1 and "checkpoint_mismatch" in self.kinds(alone[1])


class TestOnPostgreSQL(MerkleContract):
    @pytest.fixture
    def store_url(self, postgres_url: str) -> str:
        return postgres_url

    @pytest.fixture
    def second_url(self, postgres_database_factory: Any) -> str:
        return str(postgres_database_factory("second"))

    @pytest.fixture
    def raw(self, store_url: str) -> RawStore:
        return PostgresTamper(store_url)

    def raw_of(self, url: str) -> RawStore:
        return PostgresTamper(url)


def test_the_same_history_has_the_same_root_on_sqlite_and_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    from slatrail.infra.merkle_log import MerkleLog

    roots = []
    for url in (f"sqlite:///{tmp_path / 'same.db'}", postgres_url):
        record_incidents(url)
        app = open_application(url, contracts_from())
        tree = MerkleLog(app)
        roots.append((tree.sync(), tree.root(14), tree.inclusion_proof(3, 14)))
        app.close()
    assert roots[0] == roots[1]
    assert roots[0][0] == 14


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_appenders_racing_each_other_never_skip_or_repeat_a_record(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import threading

    from slatrail.domain.merkle import MemoryTree
    from slatrail.infra.merkle_log import MerkleLog

    url = (
        f"sqlite:///{tmp_path / 'race.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    record_incidents(url)
    results: list[tuple[int, bytes]] = []
    errors: list[BaseException] = []

    apps = [open_application(url, contracts_from()) for _ in range(3)]  # tables made once

    def append(app: Any) -> None:
        try:
            tree = MerkleLog(app)
            size = tree.sync(page=3)
            results.append((size, tree.root(size)))
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            app.close()

    threads = [threading.Thread(target=append, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    app = open_application(url, contracts_from())
    tree = MerkleLog(app)
    leaves = list(tree.iter_leaves())
    assert [leaf.leaf_index for leaf in leaves] == list(range(14))
    ids = [leaf.notification_id for leaf in leaves]
    assert ids == sorted(set(ids))
    expected = MemoryTree(leaf.leaf_hash for leaf in leaves).root()
    app.close()
    assert results == [(14, expected)] * 3
