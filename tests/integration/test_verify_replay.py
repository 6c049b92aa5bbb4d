"""`slatrail replay`: read models rebuilt from the store, resumable after an interruption."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from slatrail.infra.bootstrap import Container
from slatrail.infra.cli import main
from slatrail.infra.commands.replay import replay
from slatrail.infra.progress import Progress
from slatrail.infra.read_model_store import ReadModelStore
from slatrail.infra.settings import Settings
from slatrail.infra.wire import decode
from slatrail.projections.read_models import READ_MODELS, STORE_SOURCE
from tests.builders import CONTRACTS_TOML, line, reported_data, utc, wire

pytestmark = pytest.mark.integration

T0 = utc(2026, 3, 2, 9)
MIN = timedelta(minutes=1)
INCIDENTS = 12  # three events each


class Interrupted(KeyboardInterrupt):
    pass


def fill(container: Container) -> None:
    for n in range(INCIDENTS):
        at = T0 + n * MIN
        batch = [
            wire("reported", at, reported_data(priority="P2"), incident_id=f"R-{n}"),
            wire("acknowledged", at + MIN, incident_id=f"R-{n}"),
            wire("resolved", at + 2 * MIN, {"resolution": "fixed"}, incident_id=f"R-{n}"),
        ]
        outcomes = container.app.record([decode(line(m)) for m in batch], now=at + 3 * MIN)
        assert {o.status for o in outcomes} == {"accepted"}


class ReplayContract:
    @pytest.fixture
    def store_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def container(self, store_url: str, tmp_path: Path) -> Iterator[Container]:
        contracts = tmp_path / "contracts.toml"
        contracts.write_text(CONTRACTS_TOML)
        container = Container(Settings(store=store_url, contracts=contracts))
        fill(container)
        yield container
        container.close()

    def test_replay_rebuilds_every_read_model_from_the_store(self, container: Container) -> None:
        result = replay(container.app, container.read_models)
        assert (result.events, result.started_after) == (3 * INCIDENTS, 0)
        for name in READ_MODELS:
            assert container.read_models.counts(name) == (INCIDENTS, 3 * INCIDENTS)
            assert container.read_models.position(name, STORE_SOURCE) == result.last
        assert container.read_models.incident_events("R-3") == container.app.incident_events("R-3")

    def test_an_interrupted_replay_resumes_after_its_tracking_position(
        self, container: Container
    ) -> None:
        calls = 0

        def interrupt_after_two_batches(notifications: int, events: int) -> None:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise Interrupted

        with pytest.raises(Interrupted):
            replay(
                container.app, container.read_models, batch=5, progress=interrupt_after_two_batches
            )
        store: ReadModelStore = container.read_models
        tracked = store.position("audit", STORE_SOURCE)
        assert tracked is not None
        assert store.counts("audit")[1] == 10  # two committed batches of five
        resumed = replay(container.app, store, resume=True, batch=5)
        assert resumed.started_after == tracked
        assert resumed.events == 3 * INCIDENTS - 10
        for name in READ_MODELS:
            assert store.counts(name) == (INCIDENTS, 3 * INCIDENTS)

    def test_the_progress_bar_shows_the_fraction_events_rate_and_eta(
        self, container: Container, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        class Terminal(io.StringIO):
            def isatty(self) -> bool:
                return True

        screen = Terminal()
        monkeypatch.setattr(
            "slatrail.infra.progress.time.monotonic", iter(range(0, 10_000, 1)).__next__
        )
        end = container.app.recorder.max_notification_id()
        bar = Progress(end, unit="notifications", stream=screen, label="events")
        replay(container.app, container.read_models, batch=6, progress=bar.advance)
        bar.close()
        last = screen.getvalue().rstrip("\n").split("\r")[-1]
        assert re.fullmatch(r"\[#{30}\] 100\.0% 36 events [\d,]+/s ETA\s+0s", last), last

    def test_the_cli_replays_one_projection_and_verify_then_compares_it(
        self, container: Container, store_url: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        contracts = str(container.settings.contracts)
        args = ["--store", store_url, "--contracts", contracts]
        assert main([*args, "replay", "--projection", "audit"]) == 0
        out = capsys.readouterr()
        assert "replayed 36 events into audit (36 rows written)" in out.out
        assert main([*args, "verify"]) == 0
        out = capsys.readouterr().out
        assert "read models compared with a rebuild: audit (36 rows)" in out
        assert "note: read model sla is empty (never fed): nothing to compare" in out

    def test_the_cli_says_how_to_resume_when_interrupted(
        self,
        container: Container,
        store_url: str,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        original = ReadModelStore.apply
        calls = 0

        def flaky_apply(self: ReadModelStore, *a: object, **kw: object) -> int:
            nonlocal calls
            calls += 1
            if calls > 1:
                raise KeyboardInterrupt
            return original(self, *a, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr("slatrail.infra.commands.replay.BATCH", 6)
        monkeypatch.setattr(ReadModelStore, "apply", flaky_apply)
        args = ["--store", store_url, "--contracts", str(container.settings.contracts)]
        assert main([*args, "replay"]) == 130
        err = capsys.readouterr().err
        assert "interrupted; applied up to notification" in err
        assert "Run `slatrail replay --resume` to continue." in err
        monkeypatch.setattr(ReadModelStore, "apply", original)
        assert main([*args, "replay", "--resume"]) == 0
        out = capsys.readouterr()
        assert "resuming after notification" in out.err
        assert "replayed 30 events" in out.out
        assert main([*args, "verify"]) == 0


class TestOnSQLite(ReplayContract):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'store.db'}"


class TestOnPostgreSQL(ReplayContract):
    @pytest.fixture
    def store_url(self, postgres_url: str) -> str:
        return postgres_url
