"""Command-line options several commands share (time travel, read-model answers)."""

from __future__ import annotations

import argparse

from slatrail.infra.timearg import instant


def add_read_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from-read-model",
        action="store_true",
        help="answer from the read model kept by `slatrail serve` (SLATRAIL_READ_MODEL) "
        "instead of the event store",
    )


def add_time_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as-of",
        type=instant,
        help="event time to answer as of (default: --as-known-at if given, else now)",
    )
    parser.add_argument(
        "--as-known-at",
        type=instant,
        help="answer with only what had been recorded by this instant",
    )
