"""Imports go one way: infra → consumers → application → projections → domain.

The rule is in docs/architecture.md ("The layer rule"). An AST walk over every .py file of the
five packages: a module may import its own layer or a lower one, never a higher one, and never
a first-party module outside the layer graph (`tests`, `bench`, …). Both `domain.x` and
`slatrail.domain.x` count as the layer `domain`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NAMESPACE = "slatrail."
"""The installed namespace prefix. Set it to "slatrail." once every import uses the namespace:
then a bare `import domain…` fails too (it would load a second copy of the package)."""

LAYERS = ("infra", "consumers", "application", "projections", "domain")
"""Highest first: a layer may import the layers after it."""

PENDING: frozenset[str] = frozenset()
"""Modules still importing `infra.kafka_envelope` until the event-codec work (helper "tracking")
lands; the test below fails once one of them is clean, so this set only shrinks — to empty."""

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = frozenset(
    {"slatrail", *LAYERS}
    | {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    | {p.stem for p in ROOT.glob("*.py")}
)
"""Top-level names that are this repository's own code (everything else is a dependency)."""


def _rank(layer: str) -> int:
    return LAYERS.index(layer)


def _targets(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    """The absolute module names an import statement in `module` names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        return [node.module or ""]
    base = [*module.split(".")[: -node.level], *([node.module] if node.module else [])]
    if node.module:
        return [".".join(base)]
    return [".".join([*base, alias.name]) for alias in node.names]


def violations(source: str, module: str, namespace: str = NAMESPACE) -> list[str]:
    """Every import of `source` (the text of `module`, e.g. `consumers.inbound`) that breaks
    the layer rule, as `module: imports target (why)`."""
    own = module.removeprefix("slatrail.").split(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for target in _targets(node, module):
            parts = target.split(".")
            if parts[0] not in FIRST_PARTY:
                continue  # the standard library or a dependency
            named = parts[1:] if parts[0] == "slatrail" else parts
            layer = named[0] if named else ""
            where = f"{module} line {node.lineno}: imports {target}"
            if layer not in LAYERS:
                found.append(f"{where} (not a module of the layer graph {' → '.join(LAYERS)})")
            elif _rank(layer) < _rank(own):
                found.append(f"{where} ({own} may not import the higher layer {layer})")
            elif namespace and parts[0] != namespace.rstrip("."):
                found.append(f"{where} (bare import: use {namespace}{target})")
    return found


def package_modules(root: Path = ROOT) -> list[tuple[Path, str]]:
    """(file, module name) of every .py file of the five packages under `root` (a package's
    `__init__.py` is `pkg.__init__`, so that its relative imports resolve from `pkg`)."""
    return [
        (path, ".".join(path.relative_to(root).with_suffix("").parts))
        for layer in LAYERS
        for path in sorted((root / layer).rglob("*.py"))
    ]


def scan(root: Path = ROOT, namespace: str = NAMESPACE) -> list[str]:
    return [
        problem
        for path, module in package_modules(root)
        for problem in violations(path.read_text(encoding="utf-8"), module, namespace)
    ]


def test_every_package_exists_and_holds_modules() -> None:
    held = {module.split(".")[0] for _, module in package_modules()}
    assert held == set(LAYERS)


def test_no_module_imports_a_higher_layer_or_a_module_outside_the_layers() -> None:
    problems = [p for p in scan() if p.split(" ")[0] not in PENDING]
    assert not problems, "\n".join(problems)


def test_every_pending_module_still_needs_its_exemption() -> None:
    offending = {problem.split(" ")[0] for problem in scan()}
    cleaned = sorted(PENDING - offending)
    assert not cleaned, f"remove {cleaned} from PENDING: they follow the layer rule now"


# -- the check itself can fail -------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from infra.store import open_application", "slatrail.consumers.inbound"),
        ("import slatrail.infra.wire", "slatrail.application.service"),
        ("from consumers.streams import Record", "slatrail.application.queries"),
        ("from application.outcomes import Outcome", "slatrail.projections.sla"),
        ("from projections.sla import sla_view", "slatrail.domain.model"),
        ("from slatrail.infra.wire import decode", "slatrail.consumers.inbound"),
        ("from slatrail.consumers import inbound", "slatrail.domain.incident"),
        ("def f():\n    from infra.kafka import KafkaClients\n", "slatrail.consumers.relay"),
        ("from .. import infra", "slatrail.consumers.inbound"),
        ("from tests.memory_broker import MemoryBroker", "slatrail.consumers.streams"),
        ("import bench.timer", "slatrail.infra.cli"),
        ("from slatrail.web import app", "slatrail.infra.cli"),
    ],
)
def test_an_upward_or_outside_import_is_reported(source: str, module: str) -> None:
    assert len(violations(source, module)) == 1


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from slatrail.domain.model import IncidentEvent", "slatrail.infra.cli"),
        ("from slatrail.projections.sla import sla_view", "slatrail.application.queries"),
        ("from slatrail.application.outcomes import Outcome", "slatrail.consumers.inbound"),
        ("from slatrail.consumers.streams import Record", "slatrail.infra.kafka"),
        ("from . import model", "slatrail.domain.incident"),
        (
            "import json\nfrom pydantic import BaseModel\nimport eventsourcing.domain",
            "slatrail.domain.x",
        ),
    ],
)
def test_a_same_or_lower_layer_import_is_allowed(source: str, module: str) -> None:
    assert violations(source, module) == []


def test_bare_imports_fail_only_once_the_namespace_is_in_place() -> None:
    source = "from domain.model import IncidentEvent\nfrom slatrail.domain import clocks\n"
    assert violations(source, "slatrail.infra.cli", namespace="") == []
    [problem] = violations(source, "slatrail.infra.cli", namespace="slatrail.")
    assert "bare import" in problem and "line 1" in problem


def test_a_violating_file_in_a_package_tree_fails_the_scan(tmp_path: Path) -> None:
    for layer in LAYERS:
        (tmp_path / layer).mkdir()
        (tmp_path / layer / "__init__.py").write_text('"""x"""\n')
    (tmp_path / "domain" / "model.py").write_text("import json\n")
    assert scan(tmp_path) == []
    (tmp_path / "projections" / "sla.py").write_text("from consumers.runtime import Worker\n")
    [problem] = scan(tmp_path)
    assert problem.startswith("projections.sla line 1: imports consumers.runtime")
