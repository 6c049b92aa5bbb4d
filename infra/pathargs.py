"""Checking output paths given on the command line (`--output`, `--rejected`, `--out-dir`)
before any work is done, so a typo is one line and exit 2, never a traceback afterwards."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from slatrail.infra.errors import UsageError


def _nearest_existing(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if candidate.exists():
            return candidate
    return Path(".")


def _check_file(text: str, *, create_parents: bool) -> Path:
    path = Path(text)
    if not text or text.endswith(os.sep):
        raise argparse.ArgumentTypeError(f"{text!r} is not a file name")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory: give a file name")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise argparse.ArgumentTypeError(f"{text} is not writable")
        return path
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: {parent} is not a directory")
    if not create_parents and not parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: directory {parent} does not exist")
    existing = _nearest_existing(parent)
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: {existing} is not writable")
    return path


def output_file(text: str) -> Path:
    """A file to write in an existing, writable directory."""
    return _check_file(text, create_parents=False)


def output_file_in_new_dirs(text: str) -> Path:
    """A file to write; missing parent directories are created."""
    return _check_file(text, create_parents=True)


def output_dir(text: str) -> Path:
    """A directory to write into (created if missing)."""
    path = Path(text)
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"cannot use {text} as a directory: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write into {text}: {existing} is not writable")
    return path


def cannot_write(path: Path | str, error: OSError) -> UsageError:
    """The error for an output that failed while writing (disk full, read-only file system…)."""
    return UsageError(f"cannot write {path}: {error.strerror or error}")
