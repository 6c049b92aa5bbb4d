"""`slatrail replay` rebuilds the incident index from the events (SQLite and PostgreSQL): a
damaged or emptied index comes back equal to the one recording kept (docs/scale.md)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slatrail.infra.bootstrap import Container
from slatrail.infra.commands.replay import run
from slatrail.infra.settings import Settings
from slatrail.infra.store import open_application
from slatrail.infra.wire import decode
from tests.builders import CONTRACTS_TOML, contracts_from, line, reported_data, wire

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=60)


def _container(store_url: str, tmp_path: Path) -> Container:
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(CONTRACTS_TOML, encoding="utf-8")
    read_model = f"sqlite:///{tmp_path / 'read.db'}"
    settings = Settings(store=store_url, contracts=contracts, read_model=read_model)
    return Container(settings, store_read_only=True)


@pytest.mark.parametrize("resume", [False, True])
def test_replay_rebuilds_a_damaged_or_emptied_index_equal(
    store_url: str, tmp_path: Path, resume: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    app = open_application(store_url, contracts_from())
    try:
        messages = [
            wire("reported", T0 + timedelta(hours=n), reported_data(c), incident_id=f"I-{n}")
            for n, c in enumerate(["acme", "dayco", "acme", "dayco"])
        ]
        messages += [
            wire("resolved", T0 + timedelta(days=1), {"resolution": "x"}, incident_id="I-1"),
            wire("acknowledged", T0 + timedelta(hours=2), incident_id="I-1"),  # late
        ]
        outcomes = app.record([decode(line(m)) for m in messages], now=NOW)
        assert {str(o.status) for o in outcomes} == {"accepted"}
        kept = list(app.index_entries() or ())
        assert len(kept) == 4
        recorder = app.recorder
        damaged = [replace(kept[0], open=not kept[0].open, customer="zzz"), *kept[2:]]
        recorder.replace_index(damaged if not resume else [])  # type: ignore[attr-defined]
        assert list(app.index_entries() or ()) != kept
    finally:
        app.close()
    container = _container(store_url, tmp_path)
    try:
        args = argparse.Namespace(projection=None, resume=resume)
        assert run(container, args) == 0
        assert "incident index: 4 incidents rebuilt" in capsys.readouterr().err
        assert list(container.app.index_entries() or ()) == kept
    finally:
        container.close()
