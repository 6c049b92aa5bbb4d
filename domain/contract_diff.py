"""What changed between two contract versions (`slatrail contracts diff`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# The sections a reader looks for, in the order shown; other top-level keys come last.
SECTIONS = (
    ("tiers", "tiers and targets"),
    ("calendars", "calendars and holidays"),
    ("holiday_tables", "recorded holiday tables"),
    ("customers", "customers"),
    ("credits", "credits"),
    ("escalation", "escalation policy"),
)
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    old: Any  # _MISSING when added
    new: Any  # _MISSING when removed

    @property
    def section(self) -> str:
        top = self.path.split(".", 1)[0]
        return next((title for key, title in SECTIONS if key == top), "other settings")

    def text(self) -> str:
        if self.old is _MISSING:
            return f"{self.path}: added {_shown(self.new)}"
        if self.new is _MISSING:
            return f"{self.path}: removed (was {_shown(self.old)})"
        lists = isinstance(self.old, list) and isinstance(self.new, list)
        if lists and _scalars(self.old, self.new):
            added = [v for v in self.new if v not in self.old]
            removed = [v for v in self.old if v not in self.new]
            if added or removed:
                parts = [f"+ {_shown(v)}" for v in added] + [f"- {_shown(v)}" for v in removed]
                return f"{self.path}: {', '.join(parts)}"
        return f"{self.path}: {_shown(self.old)} → {_shown(self.new)}"

    def as_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "path": self.path,
            "old": None if self.old is _MISSING else self.old,
            "new": None if self.new is _MISSING else self.new,
        }


def _scalars(*lists: list[Any]) -> bool:
    return all(not isinstance(v, dict | list) for items in lists for v in items)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def diff_contents(old_content: str, new_content: str) -> list[Change]:
    """Every changed leaf of two canonical contents, by section, then path."""
    out: list[Change] = []
    _walk("", json.loads(old_content), json.loads(new_content), out)
    return _in_order(out)


def _in_order(changes: list[Change]) -> list[Change]:
    """By section (in `SECTIONS` order, other settings last), then path."""
    order = {title: n for n, (_, title) in enumerate(SECTIONS)}
    return sorted(changes, key=lambda c: (order.get(c.section, len(order)), c.path))


def diff_versions(
    old_content: str, new_content: str, old_holidays: str, new_holidays: str
) -> list[Change]:
    """`diff_contents`, and what changed in the recorded holiday tables: each date added to or
    removed from a country's days off or working days by year, and the tables' source and
    years. A side without tables (recorded before tables were) shows each country of the other
    side as one change, summarised."""
    out = diff_contents(old_content, new_content)
    old = json.loads(old_holidays) if old_holidays else None
    new = json.loads(new_holidays) if new_holidays else None
    tables: list[Change] = []
    if old is not None and new is not None:
        _walk("holiday_tables", old, new, tables)
    elif old is not None or new is not None:
        for country, table in sorted((old or new or {}).items()):
            summary = f"{table['source']}, years {table['first_year']}–{table['last_year']}"
            tables.append(
                Change(
                    f"holiday_tables.{country}",
                    summary if old is not None else _MISSING,
                    summary if new is not None else _MISSING,
                )
            )
    return _in_order(out + tables)


def _walk(path: str, old: Any, new: Any, out: list[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            _walk(
                f"{path}.{key}" if path else key,
                old.get(key, _MISSING), new.get(key, _MISSING), out,
            )  # fmt: skip
        return
    if old != new:
        out.append(Change(path, old, new))


def render_diff(old_version: int, new_version: int, changes: list[Change]) -> str:
    lines = [f"contract version {old_version} → {new_version}: {len(changes)} change(s)"]
    section = None
    for change in changes:
        if change.section != section:
            section = change.section
            lines.append(f"{section}:")
        lines.append(f"  {change.text()}")
    return "\n".join(lines)
