"""What changed between two contract versions (`slatrail contracts diff`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# The sections a reader looks for, in the order shown; other top-level keys come last.
SECTIONS = (
    ("tiers", "tiers and targets"),
    ("calendars", "calendars and holidays"),
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
    order = {title: n for n, (_, title) in enumerate(SECTIONS)}
    return sorted(out, key=lambda c: (order.get(c.section, len(order)), c.path))


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
