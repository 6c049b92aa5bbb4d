"""Whole-process benchmarks time slatrail as installed, with its modules' bytecode written.

`pip install` (not editable) writes it once at install; an editable install writes it at the
first start, and not at all where `PYTHONDONTWRITEBYTECODE` is set (as on this project's CI
machines), so every start would compile every module again: 0.03–0.1 s of a command's
start-up that no installed copy pays. `make install` runs this module too
(`python -m bench._bytecode`)."""

from __future__ import annotations

import compileall
import sys

import slatrail


def compile_slatrail() -> bool:
    """Write the bytecode of every slatrail module (`py_compile` writes it whatever
    `PYTHONDONTWRITEBYTECODE` says); False if a module did not compile."""
    return all([compileall.compile_dir(folder, quiet=1) for folder in slatrail.__path__])


if __name__ == "__main__":
    sys.exit(0 if compile_slatrail() else 1)
