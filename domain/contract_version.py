"""Contract versions: the contracts as recorded history (reference/contracts.md, *Versions*).

`ContractHistory` is the one aggregate holding every recorded version, hash-chained like an
incident's events. `ContractBook` is what the projections read: the versions known at some
instant, and the one rule choosing which version measures an incident (`measuring`).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Protocol

from eventsourcing.domain import Aggregate

from slatrail.domain.calendars import CalendarError, HolidayTable, package_holiday_table
from slatrail.domain.contracts import Contracts, ContractsError, load_contracts_data
from slatrail.domain.model import GENESIS_HASH, canonical_json, chain_hash, format_instant

CONTRACTS_ID = uuid.UUID("6f1d7c1e-52a4-5b8e-9a57-5c1a7a7e0c01")
# Version 1 recorded on a store's first use is in force from the beginning of time.
SINCE_EVER = datetime(1970, 1, 1, tzinfo=UTC)


class ContractSource(Protocol):
    """What the projections ask of contracts: one file (`Contracts`) or recorded versions."""

    def measuring(self, reported_at: datetime) -> Contracts: ...

    def for_period(self, at: datetime) -> Contracts: ...


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def canonical_content(text: str, source: str) -> tuple[Contracts, str, str]:
    """Validate a contracts file; return it built, its canonical content (JSON of its tables,
    keys sorted: comments and layout do not count) and that content's SHA-256."""
    plain = _plain_tables(text, source)
    contracts = load_contracts_data(plain, source)
    return contracts, *_canonical(plain)


def content_sha256(text: str, source: str) -> str:
    """The SHA-256 of a contracts file's canonical content, without validating it (a file
    equal to a recorded version was validated when that version was recorded)."""
    return _canonical(_plain_tables(text, source))[1]


def _canonical(plain: dict[str, Any]) -> tuple[str, str]:
    """(canonical content, its SHA-256) of a contracts file's tables."""
    content = canonical_json(plain).decode("utf-8")
    return content, hashlib.sha256(content.encode("utf-8")).hexdigest()


def _plain_tables(text: str, source: str) -> dict[str, Any]:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ContractsError(f"{source}: not valid TOML: {error}") from error
    plain: dict[str, Any] = _plain(raw)
    return plain


def contracts_from_content(content: str, source: str, holidays: str = "") -> Contracts:
    """A recorded version built: its content, and its recorded holiday tables when it has them
    (a version recorded before tables were recorded asks the `holidays` package)."""
    return load_contracts_data(json.loads(content), source, holiday_tables_of(holidays, source))


def holiday_tables_of(holidays: str, source: str) -> dict[str, HolidayTable] | None:
    """The holiday tables of a version's `holidays` text (None: none recorded)."""
    if not holidays:
        return None
    try:
        data = json.loads(holidays)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return {str(c): HolidayTable.from_json(str(c), t) for c, t in data.items()}
    except (ValueError, CalendarError) as error:
        raise ContractsError(f"{source}: the recorded holiday tables: {error}") from error


def holiday_tables_text(contracts: Contracts) -> str:
    """The canonical JSON of the holiday tables of every country the contracts' calendars
    name, as the installed `holidays` package gives them ("" when none is named): what a
    version records, so that its figures never change with the package."""
    countries = contracts.holiday_countries()
    if not countries:
        return ""
    try:
        tables = {c: package_holiday_table(c).as_json() for c in countries}
    except CalendarError as error:
        raise ContractsError(f"{contracts.source}: {error}") from error
    return canonical_json(tables).decode("utf-8")


def text_sha256(text: str) -> str:
    """SHA-256 of a recorded text ("" for none)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else ""


def version_fields(
    *,
    version: int,
    sha256: str,
    effective_from: datetime,
    recorded_at: datetime,
    actor: str,
    reason: str,
    holidays_sha256: str = "",
) -> dict[str, Any]:
    """What a version's hash covers (the content and the holiday tables through their SHA-256;
    versions recorded before tables were recorded have none, and their hash stays as it was)."""
    fields = {
        "version": version,
        "sha256": sha256,
        "effective_from": format_instant(effective_from),
        "recorded_at": format_instant(recorded_at),
        "actor": actor,
        "reason": reason,
    }
    if holidays_sha256:
        fields["holidays_sha256"] = holidays_sha256
    return fields


class ContractHistory(Aggregate):
    # Stored topics are names in the record (docs/architecture.md, *Stored topics*).
    TOPIC = "domain.contract_version:ContractHistory"

    class Event(Aggregate.Event):
        content: str
        sha256: str
        effective_from: datetime
        actor: str
        reason: str
        source: str
        prev_hash: str
        hash: str
        holidays: str  # the holiday tables' canonical JSON ("" when no calendar names a country)

        # Version 1 of the stored state had no holiday tables (eventsourcing's upcasting).
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["holidays"] = ""

        def apply(self, aggregate: ContractHistory) -> None:
            aggregate.head_hash = self.hash
            aggregate.head_sha256 = self.sha256

    class Created(Event, Aggregate.Created):  # eventsourcing's default; histories begin Started
        TOPIC = "domain.contract_version:ContractHistory.Created"

    class Started(Event, Aggregate.Created):
        TOPIC = "domain.contract_version:ContractHistory.Started"

    class VersionRecorded(Event):
        TOPIC = "domain.contract_version:ContractHistory.VersionRecorded"

    EVENT_TOPICS: ClassVar[tuple[str, ...]] = (
        "domain.contract_version:ContractHistory.Started",
        "domain.contract_version:ContractHistory.VersionRecorded",
    )

    def __init__(self) -> None:
        self.head_hash = GENESIS_HASH
        self.head_sha256 = ""

    @classmethod
    def start(
        cls, text: str, *, source: str, effective_from: datetime, actor: str, reason: str,
        now: datetime,
    ) -> ContractHistory:  # fmt: skip
        """Version 1."""
        fields = _version(text, source, 1, effective_from, actor, reason, now, GENESIS_HASH)
        return cls._create(cls.Started, id=CONTRACTS_ID, **fields)

    def apply_version(
        self, text: str, *, source: str, effective_from: datetime, actor: str, reason: str,
        now: datetime,
    ) -> None:  # fmt: skip
        """Record the next version."""
        fields = _version(
            text, source, self.version + 1, effective_from, actor, reason, now, self.head_hash
        )
        self.trigger_event(self.VersionRecorded, **fields)


def _version(
    text: str, source: str, version: int, effective_from: datetime, actor: str, reason: str,
    now: datetime, prev_hash: str,
) -> dict[str, Any]:  # fmt: skip
    if effective_from.tzinfo is None:
        raise ValueError("effective_from needs a time zone")
    if not actor.strip() or not reason.strip():
        raise ContractsError("a contract version needs an actor and a reason")
    contracts, content, sha256 = canonical_content(text, source)
    holidays = holiday_tables_text(contracts)
    hashed = version_fields(
        version=version, sha256=sha256, effective_from=effective_from, recorded_at=now,
        actor=actor, reason=reason, holidays_sha256=text_sha256(holidays),
    )  # fmt: skip
    return {
        "timestamp": now,
        "content": content,
        "sha256": sha256,
        "effective_from": effective_from,
        "actor": actor,
        "reason": reason,
        "source": source,
        "prev_hash": prev_hash,
        "hash": chain_hash(prev_hash, hashed),
        "holidays": holidays,
    }


@dataclass(frozen=True)
class ContractVersion:
    """One recorded version, built."""

    version: int
    contracts: Contracts
    content: str
    sha256: str
    effective_from: datetime
    recorded_at: datetime
    actor: str
    reason: str
    source: str
    prev_hash: str
    hash: str
    holidays: str = ""  # the recorded holiday tables' canonical JSON ("" when none)

    @property
    def holidays_sha256(self) -> str:
        return text_sha256(self.holidays)

    @classmethod
    def from_event(cls, event: ContractHistory.Event) -> ContractVersion:
        version = event.originator_version
        source = f"<contract version {version}>"
        return cls(
            version=version,
            contracts=contracts_from_content(event.content, source, event.holidays),
            content=event.content,
            sha256=event.sha256,
            effective_from=event.effective_from,
            recorded_at=event.timestamp,
            actor=event.actor,
            reason=event.reason,
            source=event.source,
            prev_hash=event.prev_hash,
            hash=event.hash,
            holidays=event.holidays,
        )

    @classmethod
    def unrecorded(cls, contracts: Contracts, text: str, now: datetime) -> ContractVersion:
        """The given file standing in as version 1 of a store that has none recorded (a
        read-only command on a store written before versions were recorded)."""
        _, content, sha256 = canonical_content(text, contracts.source)
        return cls(
            1, contracts, content, sha256, SINCE_EVER, now, "slatrail",
            "the contracts given (no version recorded yet)", contracts.source, GENESIS_HASH, "",
        )  # fmt: skip

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "effective_from": format_instant(self.effective_from),
            "recorded_at": format_instant(self.recorded_at),
            "actor": self.actor,
            "reason": self.reason,
            "source": self.source,
            "sha256": self.sha256,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
            "holiday_tables": {
                country: {k: table[k] for k in ("source", "first_year", "last_year")}
                for country, table in self._tables().items()
            },
            "holidays_sha256": self.holidays_sha256 or None,
        }

    def _tables(self) -> dict[str, Any]:
        return dict(json.loads(self.holidays)) if self.holidays else {}

    def as_json(self) -> dict[str, Any]:
        return {**self.summary(), "content": json.loads(self.content), "holidays": self._tables()}


@dataclass(frozen=True)
class ContractBook:
    """The contract versions known at some instant, in version order (never empty)."""

    versions: tuple[ContractVersion, ...]
    _ordered: tuple[ContractVersion, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.versions:
            raise ValueError("a ContractBook needs at least one version")
        ordered = sorted(self.versions, key=lambda v: (v.effective_from, v.version))
        object.__setattr__(self, "_ordered", tuple(ordered))

    def known_at(self, as_known_at: datetime | None) -> ContractBook:
        """Only the versions recorded by `as_known_at`; version 1 always counts as known (it is
        the contract the store began with)."""
        if as_known_at is None:
            return self
        known = tuple(v for v in self.versions if v.recorded_at <= as_known_at)
        return ContractBook(known or self.versions[:1])

    def version(self, number: int) -> ContractVersion | None:
        return next((v for v in self.versions if v.version == number), None)

    def customers(self) -> set[str]:
        """Every customer contracted in any of these versions."""
        return {name for v in self.versions for name in v.contracts.spec.customers}

    @property
    def latest(self) -> ContractVersion:
        return self.versions[-1]

    def in_force(self, at: datetime) -> ContractVersion:
        """The version in force at `at`: the latest `effective_from` not after `at`, and of two
        with the same `effective_from` the later recorded; before every `effective_from`, the
        earliest in force."""
        ordered = self._ordered
        chosen = ordered[0]
        for candidate in ordered[1:]:
            if candidate.effective_from > at:
                break
            chosen = candidate
        return chosen

    def measuring_version(self, reported_at: datetime) -> ContractVersion:
        """THE rule: an incident is measured, whole, under the version in force at its
        `reported` time (a tier upgrade applies to incidents reported after it; a calendar
        correction to incidents reported from its `effective_from` on)."""
        return self.in_force(reported_at)

    def measuring(self, reported_at: datetime) -> Contracts:
        return self.measuring_version(reported_at).contracts

    def for_period(self, at: datetime) -> Contracts:
        """Figures of a period (the month's customers, tier, availability target, credits):
        the version in force at the period's last instant `at`."""
        return self.in_force(at).contracts

    def versions_in(self, start: datetime, end: datetime) -> list[ContractVersion]:
        """The versions that measure incidents reported in [start, end), or the period."""
        chosen = {self.in_force(start).version}
        chosen.update(
            self.in_force(v.effective_from).version
            for v in self.versions
            if start <= v.effective_from < end
        )
        return [v for v in self.versions if v.version in chosen]
