"""Parsing instants given on the command line (`--as-of`, `--as-known-at`, `--from`)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime


def instant(text: str) -> datetime:
    """RFC 3339 with an offset (`2026-10-31T23:59:59Z`, `…+08:00`)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"not an RFC 3339 timestamp: {text!r} (e.g. 2026-10-31T23:59:59Z)"
        ) from error
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"timestamp needs an offset (Z or +08:00): {text!r}")
    return moment.astimezone(UTC)
