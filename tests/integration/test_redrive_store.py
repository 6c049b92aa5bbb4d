"""Redriven events on every store backend: `redrive --file`, then `replay` and `verify` (with
both read models) — also over a read-model database created before the `redrive` column."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from slatrail.infra.bootstrap import Container
from slatrail.infra.cli import main
from slatrail.infra.read_model_drivers import open_recorder
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.infra.settings import Settings
from slatrail.projections.read_models import AUDIT, SLA
from tests.builders import CONTRACTS_TOML, jsonl, reported_data, wire

pytestmark = pytest.mark.integration

Cli = Callable[..., tuple[int, str]]

START = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
MIN = timedelta(minutes=1)
OLD_TABLE = (
    "CREATE TABLE {name} (incident_id TEXT NOT NULL, position BIGINT NOT NULL, "
    "type TEXT NOT NULL, occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL, "
    "actor TEXT NOT NULL, source TEXT, message_id TEXT NOT NULL, data TEXT NOT NULL, "
    "prev_hash TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (incident_id, position))"
)


class RedriveStoreContract:
    @pytest.fixture
    def store_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def read_model_url(self, store_url: str) -> str:
        raise NotImplementedError

    @pytest.fixture
    def run(
        self,
        store_url: str,
        read_model_url: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> Iterator[tuple[Path, Cli]]:
        contracts = tmp_path / "contracts.toml"
        contracts.write_text(CONTRACTS_TOML, encoding="utf-8")
        monkeypatch.setenv("SLATRAIL_READ_MODEL", read_model_url)

        def cli(*args: str) -> tuple[int, str]:
            capsys.readouterr()
            code = main(["--store", store_url, "--contracts", str(contracts), *args])
            return code, capsys.readouterr().out

        yield contracts, cli
        structlog.reset_defaults()

    def test_redriven_events_replay_and_verify_with_their_marker(
        self, run: tuple[Path, Cli], read_model_url: str, tmp_path: Path
    ) -> None:
        contracts, cli = run
        # A read-model database from before the marker existed (old tables, no column).
        db = open_recorder(read_model_url)
        with db.write() as cursor:
            for name in ("rm_audit_events", "rm_sla_events"):
                cursor.execute(f"DROP TABLE IF EXISTS {name}")
                cursor.execute(OLD_TABLE.format(name=name))
        db.close()
        source = tmp_path / "in.jsonl"
        g = {"incident_id": "G-1"}
        source.write_text(jsonl([
            wire("reported", START, reported_data("globex", "P1"), **g),
            wire("acknowledged", START + 5 * MIN, **g),
            wire("reported", START, reported_data("acme", "P2"), incident_id="A-1"),
        ]), encoding="utf-8")  # fmt: skip
        assert cli("ingest", str(source))[0] == 1
        contracts.write_text(CONTRACTS_TOML + '\n[customers.globex]\ntier = "gold"\n')
        since = ("--effective-from", "1970-01-01T00:00:00Z")
        assert cli("contracts", "apply", str(contracts), *since, "--reason", "globex")[0] == 0
        dead = tmp_path / "in.rejected.jsonl"
        code, out = cli("redrive", "--file", str(dead), "--format", "json")
        assert code == 0, out
        assert json.loads(out)["accepted"] == 2
        code, out = cli("replay")
        assert code == 0, out
        code, out = cli("verify")
        assert code == 0, out
        assert "read models compared with a rebuild" in out
        container = Container(Settings(read_model=read_model_url))
        try:
            events = container.read_models.incident_events("G-1", AUDIT)
            assert [e.redrive for e in events] == [
                "file:in.rejected.jsonl:1",
                "file:in.rejected.jsonl:2",
            ]
            assert container.read_models.histories(SLA)["G-1"] == events
        finally:
            container.close()
        # A row whose marker is removed is drift that verify reports.
        store = ReadModelStore(read_model_url)
        try:
            with store._recorder.write() as cursor:
                cursor.execute("UPDATE rm_audit_events SET redrive = NULL WHERE position = 2")
        finally:
            store.close()
        code, out = cli("verify")
        assert code == 1
        assert "read_model_drift" in out and "G-1" in out


class TestOnSQLite(RedriveStoreContract):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'store.db'}"

    @pytest.fixture
    def read_model_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'store-read.db'}"


class TestOnPostgreSQL(RedriveStoreContract):
    @pytest.fixture
    def store_url(self, postgres_url: str) -> str:
        return postgres_url

    @pytest.fixture
    def read_model_url(self, store_url: str) -> str:
        return store_url
