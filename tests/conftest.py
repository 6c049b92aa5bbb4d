"""Shared pytest fixtures.

Real servers (see ``tests/servers.py`` for where they come from and for the Tansu /
kafka-python findings):

* ``postgres_server`` (session) -- a running PostgreSQL (:class:`PostgresServer`);
  tests using it are skipped, with the reason, when PostgreSQL cannot be had at all.
* ``postgres_database_factory`` (function) -- ``create(label=None) -> url``: a fresh,
  uniquely named database per call, dropped after the test.
* ``postgres_url`` (function) -- the URL of a fresh database for this test.
* ``kafka_server`` (session) -- a running Kafka-compatible broker (:class:`KafkaServer`,
  ``.bootstrap``, ``.pause()``/``.resume()`` when ``.can_pause``).
* ``kafka_bootstrap`` (function) -- ``"127.0.0.1:PORT"``.
* ``pipeline_factory`` (function) -- ``make(store=None, read_model=None, partitions=4)``: a
  :class:`~tests.kafka_helpers.PipelineEnv` of unique topics, groups and SQLite files;
  ``pipeline`` is one of them. The ``serve`` processes a test left running are killed after it.

The servers start lazily: a session that needs neither pays for neither.

Hypothesis runs under the profile `tests/hypothesis_profiles.py` selects (quick locally, full
in CI), loaded here, before any test module builds its `@settings`.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import settings

from tests.hypothesis_profiles import selected
from tests.kafka_helpers import PipelineEnv
from tests.servers import (
    KafkaServer,
    KafkaUnavailable,
    PostgresServer,
    PostgresUnavailable,
    database_name,
    start_kafka,
    start_postgres,
)

settings.load_profile(selected())


class _NoBareLayerNames(importlib.abc.MetaPathFinder):
    """`import domain` from the repository root would load a second copy of every class beside
    `slatrail.domain` (two `Incident` classes, two topic registries): refuse it in every test."""

    BARE = frozenset({"domain", "projections", "consumers", "infra", "application"})

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if path is None and fullname in self.BARE:
            raise ImportError(f"import slatrail.{fullname}, not the bare {fullname!r}")
        return None


sys.meta_path.insert(0, _NoBareLayerNames())


def pytest_configure(config: pytest.Config) -> None:
    # kafka-python 3.0 loads its protocol schemas with deprecated importlib.resources
    # calls: hundreds of warnings per session that say nothing about our code.
    config.addinivalue_line(
        "filterwarnings", "ignore:(read|open)_text is deprecated:DeprecationWarning"
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(start_postgres())
        except PostgresUnavailable as exc:
            pytest.skip(f"PostgreSQL unavailable: {exc}")
        yield server


@pytest.fixture
def postgres_database_factory(
    postgres_server: PostgresServer, request: pytest.FixtureRequest
) -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def create(label: str | None = None) -> str:
        name = database_name(label or request.node.name)
        url = postgres_server.create_database(name)
        created.append(name)
        return url

    yield create
    for name in created:
        with contextlib.suppress(Exception):  # best effort; the cluster is throwaway anyway
            postgres_server.drop_database(name)


@pytest.fixture
def postgres_url(postgres_database_factory: Callable[..., str]) -> str:
    return postgres_database_factory()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store on each engine: an SQLite file, then a database on the test PostgreSQL
    (a test module or class may define its own `store_url`)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def kafka_server() -> Iterator[KafkaServer]:
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(start_kafka())
        except KafkaUnavailable as exc:
            pytest.skip(f"Kafka unavailable: {exc}")
        yield server


@pytest.fixture
def kafka_bootstrap(kafka_server: KafkaServer) -> str:
    if kafka_server.is_paused:  # a previous test left it frozen
        kafka_server.resume()
    return kafka_server.bootstrap


@pytest.fixture
def pipeline_factory(
    kafka_bootstrap: str, kafka_server: KafkaServer, tmp_path: Path
) -> Iterator[Callable[..., PipelineEnv]]:
    made: list[PipelineEnv] = []

    def make(
        *, store: str | None = None, read_model: str | None = None, partitions: int = 4
    ) -> PipelineEnv:
        tag = uuid.uuid4().hex[:8]
        env = PipelineEnv(
            kafka=kafka_server,
            store=store or f"sqlite:///{tmp_path / f'store-{tag}.db'}",
            read_model=read_model or f"sqlite:///{tmp_path / f'read-{tag}.db'}",
            topics={
                k: f"t{tag}.incidents.{k}"
                for k in ("inbound", "events", "rejected", "alerts", "retry")
            },
            groups={k: f"g{tag}-{k}" for k in ("inbound", "projections", "alerts")},
            workdir=tmp_path,
            partitions=partitions,
        )
        made.append(env)
        return env

    yield make
    for env in made:  # whatever a failing test left running
        for serve in env.spawned:
            if serve.proc.poll() is None:
                serve.kill9()


@pytest.fixture
def pipeline(pipeline_factory: Callable[..., PipelineEnv]) -> PipelineEnv:
    return pipeline_factory()
