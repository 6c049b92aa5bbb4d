"""Operator errors: a problem with how slatrail was invoked or with what it was pointed at.

The CLI catches `OperatorError` once and prints `slatrail: <message>` (one line, no traceback)
with the error's exit code. See docs/decisions.md ("Operator errors and exit codes").
"""

from __future__ import annotations

EXIT_FINDING = 1  # the command ran and found a problem (rejections, differences, no store)
EXIT_USAGE = 2  # bad flags, values, URLs, files or settings; a store that cannot be opened
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in slatrail (one line; traceback with --log-level debug)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class OperatorError(Exception):
    """An error the operator can fix; its message names the problem, never a secret."""

    exit_code = EXIT_USAGE


class UsageError(OperatorError):
    """A flag, file or setting slatrail cannot use (exit 2)."""


class StoreMissingError(OperatorError):
    """A read-only command pointed at a store that does not exist (exit 1)."""

    exit_code = EXIT_FINDING


class EmptyStoreError(StoreMissingError):
    """`verify` of a store that holds no events: nothing was checked (exit 1)."""


class StoreUnavailableError(OperatorError):
    """The store cannot be opened or reached: refused, timeout, authentication failed (exit 2)."""
