"""Contract durations such as `15m`, `2h`, `25h30m`, `120h`."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")

MAX_DURATION_DAYS = 3660
"""The longest duration accepted (about ten years): a longer SLA target is a typo, and a due
time that far ahead is meaningless (docs/decisions.md)."""
_MAX_DURATION_S = MAX_DURATION_DAYS * 86400


def parse_duration(text: str) -> int:
    """Seconds in an `NdNhNmNs` duration (each part optional, at least one present, > 0, at
    most `MAX_DURATION_DAYS` days)."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None or not any(match.groupdict().values()):
        raise ValueError(f"not a duration like '15m', '2h' or '25h30m': {text!r}")
    shown = text.strip() if len(text.strip()) <= 40 else text.strip()[:40] + "…"
    too_long = ValueError(
        f"duration {shown!r} is longer than {MAX_DURATION_DAYS} days, the longest slatrail accepts"
    )
    if any(v is not None and len(v.lstrip("0")) > 12 for v in match.groupdict().values()):
        raise too_long  # no need to read a number of digits a target never has
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    seconds = (
        parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60
    ) + parts.get("s", 0)
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    if seconds > _MAX_DURATION_S:
        raise too_long
    return seconds


def format_duration(seconds: float) -> str:
    """`1h30m`-style rendering of a number of seconds (rounded down to the second)."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if secs or not out:
        out += f"{secs}s"
    return out
