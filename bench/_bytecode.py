"""Whole-process benchmarks time slatrail as installed, with its modules' bytecode written.

`pip install` (not editable) writes it once at install; an editable install writes it at the
first start, and not at all where `PYTHONDONTWRITEBYTECODE` is set (as on this project's CI
machines), so every start would compile every module again: 0.03–0.1 s of a command's
start-up that no installed copy pays."""

from __future__ import annotations

import compileall

import slatrail


def compile_slatrail() -> None:
    """Write the bytecode of every slatrail module (`py_compile` writes it whatever
    `PYTHONDONTWRITEBYTECODE` says)."""
    for folder in slatrail.__path__:
        compileall.compile_dir(folder, quiet=1)
