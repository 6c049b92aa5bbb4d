"""Support contracts as data (contracts.md): calendars, tiers, targets, credits, customers.

`load_contracts(text, source)` parses the TOML text; every problem is reported as
`ContractsError("<source>: <key>: <problem>")`.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from slatrail.domain.calendars import (
    AlwaysCalendar,
    BusinessCalendar,
    Calendar,
    CalendarError,
    HolidayTable,
)
from slatrail.domain.durations import parse_duration
from slatrail.domain.model import Priority

METRICS = ("response", "workaround", "resolution", "postmortem")
POSTMORTEM_CALENDAR = AlwaysCalendar("24x7")


class ContractsError(ValueError):
    """A contracts file that cannot be used, naming the file, the key and the problem."""


def _duration(value: object) -> int:
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"expected a duration string like '2h', got {value!r}")


Duration = Annotated[int, BeforeValidator(_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarSpec(_Model):
    kind: Literal["24x7", "business"]
    timezone: str | None = None
    weekdays: list[str] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    hours: list[str] = Field(default_factory=list)
    holidays: str | None = None
    extra_holidays: list[date] = Field(default_factory=list)
    extra_workdays: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _business_needs_zone_and_hours(self) -> CalendarSpec:
        if self.kind == "business":
            if not self.timezone:
                raise ValueError("a business calendar needs a timezone")
            if not self.hours:
                raise ValueError("a business calendar needs hours")
        return self


class PriorityTargets(_Model):
    """The targets of one priority; `{}` (no calendar, no target) says it has none."""

    calendar: str | None = None
    response: Duration | None = None
    workaround: Duration | None = None
    resolution: Duration | None = None

    @model_validator(mode="after")
    def _targets_need_a_calendar(self) -> PriorityTargets:
        if self.calendar is None and any((self.response, self.workaround, self.resolution)):
            raise ValueError("a priority with targets needs a calendar")
        return self


class Tier(_Model):
    availability_target: Annotated[float, Field(gt=0, le=100)]
    P1: PriorityTargets | None = None
    P2: PriorityTargets | None = None
    P3: PriorityTargets | None = None
    P4: PriorityTargets | None = None

    @model_validator(mode="after")
    def _defines_p1_to_p4(self) -> Tier:
        missing = [p.value for p in Priority if getattr(self, p.value) is None]
        if missing:
            raise ValueError(
                f"a tier must define P1, P2, P3 and P4; missing {', '.join(missing)} "
                f"(write `{missing[0]} = {{}}` for a priority without targets)"
            )
        return self

    def for_priority(self, priority: Priority) -> PriorityTargets | None:
        targets: PriorityTargets | None = getattr(self, priority.value)
        return targets


class Limits(_Model):
    """Bounds on what a message may claim (docs/decisions.md, "Bounds")."""

    max_impact_lead: Duration = 7 * 86400


class CreditRule(_Model):
    below: Literal["target"] | Annotated[float, Field(gt=0, le=100)]
    percent: Annotated[float, Field(ge=0, le=100)]


class Customer(_Model):
    tier: str
    name: str | None = None
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        """A reporting zone that exists, else the file is refused at load, naming the key
        (not a traceback later in `report`)."""
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                raise ValueError(
                    f"unknown time zone {value!r} (an IANA name like Europe/Berlin)"
                ) from None
        return value


Level = Annotated[int, Field(ge=1, le=4)]
MetricName = Literal["response", "workaround", "resolution", "postmortem"]
_ALL_METRICS: tuple[MetricName, ...] = ("response", "workaround", "resolution", "postmortem")


class EscalationPolicy(_Model):
    """Levels reached automatically (clocks.md); a manual `escalated` raises to at least its level.

    See docs/escalation.md. The at-risk threshold is the contracts' `at_risk_threshold` (the
    same instant the clock's status becomes `at_risk`).
    """

    at_risk_level: Level = 2
    breached_level: Level = 3
    overrun_level: Level = 4
    overrun_ratio: Annotated[float, Field(gt=1, le=100)] = 2.0
    p1_breached_level: Level = 4
    manual_override: bool = True
    metrics: list[MetricName] = Field(default_factory=lambda: list(_ALL_METRICS))
    level_names: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=lambda: ["support engineer", "expert", "engineering/R&D", "management"],
        min_length=4,
        max_length=4,
    )

    @model_validator(mode="after")
    def _levels_rise_with_severity(self) -> EscalationPolicy:
        order = [
            ("at_risk_level", self.at_risk_level),
            ("breached_level", self.breached_level),
            ("overrun_level", self.overrun_level),
        ]
        for (low_name, low), (high_name, high) in itertools.pairwise(order):
            if high < low:
                raise ValueError(
                    f"{high_name} ({high}) must not be below {low_name} ({low}): "
                    "a worse condition cannot call for a lower level"
                )
        if self.p1_breached_level < self.breached_level:
            raise ValueError(
                f"p1_breached_level ({self.p1_breached_level}) must not be below "
                f"breached_level ({self.breached_level})"
            )
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"metrics lists a clock twice: {self.metrics}")
        return self

    def level_name(self, level: int) -> str:
        return self.level_names[level - 1]


class ContractsSpec(_Model):
    at_risk_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.75
    postmortem_within: Duration = 120 * 3600
    calendars: dict[str, CalendarSpec] = Field(default_factory=dict)
    tiers: dict[str, Tier]
    credits: list[CreditRule] = Field(default_factory=list)
    customers: dict[str, Customer] = Field(default_factory=dict)
    escalation: EscalationPolicy = EscalationPolicy()
    limits: Limits = Limits()

    @model_validator(mode="after")
    def _references_resolve(self) -> ContractsSpec:
        for tier_name, tier in self.tiers.items():
            for priority in Priority:
                targets = tier.for_priority(priority)
                if (
                    targets is not None
                    and targets.calendar is not None
                    and targets.calendar not in self.calendars
                ):
                    raise ValueError(
                        f"tiers.{tier_name}.{priority}.calendar: unknown calendar "
                        f"{targets.calendar!r} (known: {sorted(self.calendars)})"
                    )
        for customer_name, customer in self.customers.items():
            if customer.tier not in self.tiers:
                raise ValueError(
                    f"customers.{customer_name}.tier: unknown tier {customer.tier!r} "
                    f"(known: {sorted(self.tiers)})"
                )
        return self


@dataclass(frozen=True, slots=True)
class Target:
    """The target of one metric for one (tier, priority): seconds (None = no target)."""

    seconds: int | None
    calendar: Calendar


@dataclass(frozen=True)
class Contracts:
    spec: ContractsSpec
    calendars: dict[str, Calendar]
    source: str = "<contracts>"
    _always: Calendar = field(default_factory=lambda: AlwaysCalendar("24x7"))

    @property
    def at_risk_threshold(self) -> float:
        return self.spec.at_risk_threshold

    @property
    def postmortem_within_s(self) -> int:
        return self.spec.postmortem_within

    @property
    def escalation(self) -> EscalationPolicy:
        return self.spec.escalation

    @property
    def max_impact_lead_s(self) -> int:
        return self.spec.limits.max_impact_lead

    def measuring(self, reported_at: datetime) -> Contracts:
        """One contracts file measures every incident (a `ContractBook` chooses per incident)."""
        return self

    def for_period(self, at: datetime) -> Contracts:
        return self

    def holiday_countries(self) -> list[str]:
        """The `holidays` country codes its calendars name, sorted."""
        return sorted({c.holidays for c in self.spec.calendars.values() if c.holidays})

    def customer(self, name: str) -> Customer | None:
        return self.spec.customers.get(name)

    def tier_of(self, customer: str) -> tuple[str, Tier] | None:
        found = self.spec.customers.get(customer)
        if found is None:
            return None
        return found.tier, self.spec.tiers[found.tier]

    def target(self, customer: str, priority: Priority, metric: str) -> Target:
        """Target and calendar of `metric` for this customer's tier at `priority`."""
        if metric == "postmortem":
            return Target(self.spec.postmortem_within, POSTMORTEM_CALENDAR)
        tier = self.tier_of(customer)
        targets = tier[1].for_priority(priority) if tier else None
        if targets is None or targets.calendar is None:
            return Target(None, self._always)
        seconds: int | None = getattr(targets, metric)
        return Target(seconds, self.calendars[targets.calendar])

    def credit_percent(self, availability_percent: float, tier: Tier) -> float:
        """Largest credit whose threshold the availability falls under; 0 if none."""
        best = 0.0
        for rule in self.spec.credits:
            threshold = tier.availability_target if rule.below == "target" else rule.below
            if availability_percent < threshold:
                best = max(best, rule.percent)
        return best


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<top level>"


def _build_calendar(
    name: str, spec: CalendarSpec, holiday_tables: Mapping[str, HolidayTable] | None
) -> Calendar:
    if spec.kind == "24x7":
        return AlwaysCalendar(name)
    assert spec.timezone is not None
    table = None
    if holiday_tables is not None and spec.holidays is not None:
        table = holiday_tables.get(spec.holidays)
        if table is None:
            raise CalendarError(f"no recorded holiday table for holidays = {spec.holidays!r}")
    return BusinessCalendar(
        name,
        timezone=spec.timezone,
        weekdays=spec.weekdays,
        hours=spec.hours,
        holidays_country=spec.holidays,
        extra_holidays=spec.extra_holidays,
        extra_workdays=spec.extra_workdays,
        holiday_table=table,
    )


def load_contracts(text: str, source: str = "<contracts>") -> Contracts:
    """Parse and validate the TOML text of a contracts file."""
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ContractsError(f"{source}: not valid TOML: {error}") from error
    return load_contracts_data(raw, source)


def load_contracts_data(
    raw: dict[str, Any],
    source: str = "<contracts>",
    holiday_tables: Mapping[str, HolidayTable] | None = None,
) -> Contracts:
    """Validate the parsed document of a contracts file (TOML tables, or their canonical JSON
    as a recorded contract version holds it). `holiday_tables` (a recorded version's, by
    country code) are the only holidays the calendars then know; without them the calendars
    ask the `holidays` package."""
    try:
        spec = ContractsSpec.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{_location(e['loc'])}: {e['msg']}"
            + (f" (got {e['input']!r})" if e["type"] != "missing" and e.get("input") else "")
            for e in error.errors(include_url=False)
        )
        raise ContractsError(f"{source}: {problems}") from error
    calendars: dict[str, Calendar] = {}
    for name, calendar_spec in spec.calendars.items():
        try:
            calendars[name] = _build_calendar(name, calendar_spec, holiday_tables)
        except CalendarError as error:
            raise ContractsError(f"{source}: calendars.{name}: {error}") from error
    return Contracts(spec=spec, calendars=calendars, source=source)
