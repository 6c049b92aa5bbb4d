"""The test suite's own layout: helpers live in plain modules, unit tests stay in process."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent


def imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or "")


def test_no_module_imports_helpers_from_a_conftest() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for folder in (TESTS, ROOT / "bench")
        for path in sorted(folder.rglob("*.py"))
        for module in imported_modules(path)
        if module.rsplit(".", 1)[-1] == "conftest"
    ]
    assert offenders == [], "shared helpers belong in a plain module under tests/"


def test_no_unit_test_runs_the_cli() -> None:
    """Whole-CLI tests (the console script, `infra.cli.main`) are in tests/e2e."""
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in sorted((TESTS / "unit").glob("*.py"))
        for module in imported_modules(path)
        if module in ("slatrail.infra.cli", "subprocess")
    ]
    assert offenders == []
