"""Parsing instants and periods given on the command line (`--as-of`, `--as-known-at`, `--from`,
`--to`, `--month`, `--quarter`).

Accepted range (docs/decisions.md, "Operator errors and exit codes"): instants from
1970-01-01T00:00:00Z up to, not including, 9999-01-01T00:00:00Z (UTC years 1970–9998, the
range of message timestamps); months 1970-01 to 9998-12; quarters 1970-Q1 to 9998-Q4. Anything
else is a usage error (exit 2) naming the value, never a traceback.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime

from slatrail.projections.availability import Month

FIRST_YEAR = 1970
LAST_YEAR = 9998
EARLIEST = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC)
LATEST = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC)  # exclusive
RANGE = f"{FIRST_YEAR}-01-01T00:00:00Z up to (not including) {LAST_YEAR + 1}-01-01T00:00:00Z"

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$", re.IGNORECASE)


def instant(text: str) -> datetime:
    """RFC 3339 with an offset (`2026-10-31T23:59:59Z`, `…+08:00`), within the accepted range."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"not an RFC 3339 timestamp: {text!r} (e.g. 2026-10-31T23:59:59Z)"
        ) from error
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"timestamp needs an offset (Z or +08:00): {text!r}")
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise argparse.ArgumentTypeError(f"timestamp {text!r} is out of range: from {RANGE}")
    return utc


def _year(text: str, year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise argparse.ArgumentTypeError(
            f"{text!r} is out of range: years {FIRST_YEAR} to {LAST_YEAR}"
        )


def month(text: str) -> Month:
    """`YYYY-MM`, 1970-01 to 9998-12."""
    match = _MONTH.match(text.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise argparse.ArgumentTypeError(f"not a month like 2026-10: {text!r}")
    _year(text, int(match.group(1)))
    return Month(int(match.group(1)), int(match.group(2)))


def quarter(text: str) -> list[Month]:
    """`YYYY-Qn`: its three months, 1970-Q1 to 9998-Q4."""
    match = _QUARTER.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a quarter like 2026-Q4: {text!r}")
    year, number = int(match.group(1)), int(match.group(2))
    _year(text, year)
    return [Month(year, 3 * (number - 1) + n) for n in (1, 2, 3)]
