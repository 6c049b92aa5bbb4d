"""The composition root: builds contracts, the store and (later) Kafka clients from Settings.

Nothing connects at import time.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from eventsourcing.persistence import IntegrityError, PersistenceError

from slatrail.application.lazy_log import LazyLogger
from slatrail.application.service import SlatrailApplication
from slatrail.domain.contract_version import (
    SINCE_EVER,
    ContractBook,
    ContractVersion,
    canonical_content,
    content_sha256,
)
from slatrail.domain.contracts import Contracts, ContractsError, load_contracts
from slatrail.infra.errors import StoreMissingError, StoreUnavailableError, UsageError
from slatrail.infra.redact import redact_url
from slatrail.infra.settings import Settings
from slatrail.infra.store import (
    StoreLocation,
    open_application,
    parse_store_url,
    postgres_cause,
    store_error_text,
)

if TYPE_CHECKING:  # imported when first used: a command that never asks them never loads them
    from slatrail.infra.kafka import KafkaClients
    from slatrail.infra.read_model_store import ReadModelStore

SAMPLE_CONTRACTS = "contracts.sample.toml"
CONTRACTS_CHECK_S = 5.0  # how often `serve` asks whether a contract version was recorded
log = LazyLogger("slatrail.bootstrap")


def utc_now() -> datetime:
    return datetime.now(UTC)


def sample_contracts_text() -> str:
    return files("slatrail.infra").joinpath("data", SAMPLE_CONTRACTS).read_text(encoding="utf-8")


def read_contracts(path: Path | None) -> Contracts:
    """The contracts file at `path`, or the shipped sample."""
    text, source = read_contracts_text(path)
    return load_contracts(text, source)


def read_contracts_text(path: Path | None) -> tuple[str, str]:
    """The text of the contracts file at `path` (or of the shipped sample), and its name."""
    if path is None:
        return sample_contracts_text(), f"<sample {SAMPLE_CONTRACTS}>"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ContractsError(f"{path}: cannot read: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise ContractsError(
            f"{path}: not UTF-8 text (byte {error.start} is {error.object[error.start]:#04x}); "
            "save the contracts file as UTF-8"
        ) from None
    return text, str(path)


READ_MODEL_TABLE = "rm_audit_events"


def _has_read_models(location: StoreLocation, target: str) -> bool:
    """Whether the read-model database already holds slatrail's read-model tables."""
    if location.scheme == "sqlite":
        path = location.path
        if path.startswith("file:"):
            return True
        with contextlib.closing(sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                (READ_MODEL_TABLE,),
            ).fetchone()
        return found is not None
    import psycopg

    with psycopg.connect(target, autocommit=True) as conn:
        row = conn.execute("SELECT to_regclass(%s)", (READ_MODEL_TABLE,)).fetchone()
    return row is not None and row[0] is not None


def _check_given_contracts(book: ContractBook, text: str, source: str, now: datetime) -> None:
    """A `--contracts` file is never applied silently: it must be the version in force now (or
    the latest recorded); else the command is refused, saying how to record it."""
    sha256 = content_sha256(text, source)
    current = book.in_force(now)
    if sha256 in (current.sha256, book.latest.sha256):
        return
    canonical_content(text, source)  # an invalid file: say what is wrong with it
    raise UsageError(
        f"--contracts {source} differs from the recorded contract version {current.version} in "
        f"force (sha256 {current.sha256[:12]}…, file {sha256[:12]}…): the store measures every "
        f"incident by its recorded versions. Record the file with `slatrail contracts apply "
        f"{source} --effective-from T --reason TEXT`, or leave out --contracts (and "
        "SLATRAIL_CONTRACTS) to use the record"
    )


class _GivenContracts:
    """The given (or sample) contracts file as the application's source until it is handed
    the recorded versions, built when first asked: reading a store whose versions are
    recorded never needs it (nor the `holidays` package its calendars would ask)."""

    def __init__(self, container: Container) -> None:
        self._container = container

    def measuring(self, reported_at: datetime) -> Contracts:
        return self._container.contracts

    def for_period(self, at: datetime) -> Contracts:
        return self._container.contracts


@dataclass
class Container:
    settings: Settings
    clock: Callable[[], datetime] = utc_now
    _contracts: Contracts | None = None
    _app: SlatrailApplication | None = field(default=None, repr=False)
    _read_models: ReadModelStore | None = field(default=None, repr=False)
    _book: ContractBook | None = field(default=None, repr=False)
    first_version_from_file: bool = True  # `contracts apply` records its own file instead
    store_read_only: bool = False  # never create the event store (read-only commands)
    # a long-running process (`serve`) re-reads the contract versions when the record grew,
    # checked at most this often; None (one-shot commands): read once
    contracts_check_s: float | None = None
    monotonic: Callable[[], float] = time.monotonic
    _book_checked: float = field(default=0.0, repr=False)
    _recorded: int = field(default=0, repr=False)  # versions recorded when the book was read
    read_models_read_only: bool = False  # never create the read-model database

    @property
    def contracts(self) -> Contracts:
        if self._contracts is None:
            self._contracts = read_contracts(self.settings.contracts)
        return self._contracts

    @property
    def app(self) -> SlatrailApplication:
        if self._app is None:
            try:
                self._app = open_application(
                    self.settings.store,
                    _GivenContracts(self),
                    read_only=self.store_read_only,
                    connect_timeout_s=self.settings.store_connect_timeout_s,
                )
            except (StoreMissingError, StoreUnavailableError):
                if self.settings.contracts is not None:
                    self.contracts  # noqa: B018 - a broken --contracts file is the first problem
                raise
            if not self.store_read_only and self.first_version_from_file:
                # a writer judges new incidents by the record (as it grows, in `serve`)
                book = self.contract_book
                live = self.contracts_check_s is not None
                self._app.use_contract_book(LiveContracts(self) if live else book)
        return self._app

    @property
    def contract_book(self) -> ContractBook:
        """The recorded contract versions (docs/reference/contracts.md, *Versions*). A writing
        command on a store without any records the given (or sample) file as version 1; a
        read-only one reads such a store under that file, unrecorded."""
        if self._book is None:
            app = self.app
            book = app.contract_book()
            text, source = read_contracts_text(self.settings.contracts)
            if book is None:
                if self.store_read_only:
                    version = ContractVersion.unrecorded(self.contracts, text, self.clock())
                    book = ContractBook((version,))
                    recorded = 0
                else:
                    book = self._record_first_version(app, text, source)
                    recorded = book.latest.version
            else:
                if self.settings.contracts is not None:
                    _check_given_contracts(book, text, source, self.clock())
                recorded = book.latest.version
            self._book, self._recorded = book, recorded
            self._book_checked = self.monotonic()
        elif self.contracts_check_s is not None:
            self._follow_the_record()
        return self._book

    def _record_first_version(
        self, app: SlatrailApplication, text: str, source: str
    ) -> ContractBook:
        """Record the given file as version 1 of a store that has none. Another writer may
        record it in the same instant (two `serve`s started at once on a new store): its
        version stands, and the file given here is checked against it as on any later start."""
        try:
            app.record_contracts(
                text, source=source, effective_from=SINCE_EVER, actor="slatrail",
                reason="first use of the store", now=self.clock(),
            )  # fmt: skip
        except IntegrityError:
            log.info("contracts_recorded_by_another_writer")
            book = app.contract_book()
            if book is None:
                raise
            if self.settings.contracts is not None:
                _check_given_contracts(book, text, source, self.clock())
            app.use_contract_book(book)
            return book
        book = app.contract_book()
        assert book is not None
        return book

    def _follow_the_record(self) -> None:
        """Re-read the versions when the store's contract history has grown (the record is
        the truth: `contracts apply` in another process), asked at most every
        `contracts_check_s` seconds."""
        now = self.monotonic()
        if self.contracts_check_s is None or now - self._book_checked < self.contracts_check_s:
            return
        self._book_checked = now
        app = self.app
        if app.contract_history_version() == self._recorded:
            return
        fresh = app.contract_book()
        if fresh is None:
            return
        self._book, self._recorded = fresh, fresh.latest.version
        log.info("contract_versions_reloaded", versions=len(fresh.versions),
                 latest=fresh.latest.version)  # fmt: skip

    @property
    def live_contracts(self) -> LiveContracts:
        """The recorded versions as they are now: what a worker of `serve` measures by."""
        return LiveContracts(self)

    def contracts_known_at(self, as_known_at: datetime | None) -> ContractBook:
        """The versions recorded by `as_known_at` (all when None)."""
        return self.contract_book.known_at(as_known_at)

    @property
    def read_model_url(self) -> str:
        """settings.read_model, else next to a SQLite store (`x.db` → `x-read.db`)."""
        from slatrail.infra.read_model_store import default_read_model_url

        return self.settings.read_model or default_read_model_url(self.settings.store)

    @property
    def read_models(self) -> ReadModelStore:
        """The read-model database (`sla`, `audit`), opened on first use."""
        if self._read_models is None:
            self._read_models = self._open_read_models()
        return self._read_models

    def _open_read_models(self) -> ReadModelStore:
        url = self.read_model_url
        shown = redact_url(url)
        location = parse_store_url(url, what="read-model")
        if location.scheme == "sqlite":
            path = location.path
            if (
                self.read_models_read_only
                and not path.startswith("file:")
                and not os.path.exists(path)
            ):
                raise StoreMissingError(
                    f"no read models at {shown}: run `slatrail serve` or `slatrail replay` "
                    "first (check SLATRAIL_READ_MODEL)"
                )
            target = url
        else:
            target = location.libpq_url(self.settings.store_connect_timeout_s)
        try:
            if self.read_models_read_only and not _has_read_models(location, target):
                raise StoreMissingError(
                    f"no read models at {shown}: run `slatrail serve` or `slatrail replay` "
                    "first (check SLATRAIL_READ_MODEL)"
                )
            from slatrail.infra.read_model_store import ReadModelStore

            return ReadModelStore(target)
        except Exception as error:
            if not isinstance(error, sqlite3.Error | PersistenceError) and not type(
                error
            ).__module__.startswith("psycopg"):
                raise
            if location.scheme == "sqlite":
                cause = store_error_text(error, location)
            else:
                cause = postgres_cause(error, location, self.settings.store_connect_timeout_s)
            raise StoreUnavailableError(f"cannot open the read models {shown}: {cause}") from None

    def kafka(self) -> KafkaClients:
        """Factory of Kafka clients from the settings; nothing connects until a client is built."""
        from slatrail.infra.kafka import KafkaClients

        return KafkaClients(self.settings)

    def close(self) -> None:
        if self._read_models is not None:
            self._read_models.close()
            self._read_models = None
        if self._app is not None:
            self._app.close()
            self._app = None


class LiveContracts:
    """A contract source that asks the container for the book on every use, so a running
    process follows newly recorded versions (`Container.contracts_check_s`)."""

    def __init__(self, container: Container) -> None:
        self.container = container

    @property
    def book(self) -> ContractBook:
        return self.container.contract_book

    def measuring(self, reported_at: datetime) -> Contracts:
        return self.book.measuring(reported_at)

    def for_period(self, at: datetime) -> Contracts:
        return self.book.for_period(at)
