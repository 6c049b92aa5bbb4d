"""The relay and the projection consumer depend on the ports they define, never on infra; the
read models' pure half (projections) holds no database code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported(module: Path) -> set[str]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "module", ["consumers/projections.py", "consumers/relay.py", "consumers/projection_ports.py"]
)
def test_the_relay_and_projection_consumer_never_import_infra(module: str) -> None:
    bad = {n for n in imported(ROOT / module) if n == "infra" or n.startswith("infra.")}
    assert not bad, f"{module} imports {sorted(bad)}"


def test_the_read_models_codec_holds_no_database_driver() -> None:
    names = imported(ROOT / "projections/read_models.py")
    drivers = {"sqlite3", "psycopg", "eventsourcing.sqlite", "eventsourcing.postgres"}
    assert not {n for n in names if n.split(".")[0] in {"sqlite3", "psycopg"} or n in drivers}
    assert not {n for n in names if n.startswith("infra")}


def test_kafka_python_is_imported_only_by_its_typed_adapter() -> None:
    offenders = []
    for module in sorted((ROOT / "infra").rglob("*.py")):
        if module.name == "kafka_client.py":
            continue
        if {n for n in imported(module) if n == "kafka" or n.startswith("kafka.")}:
            offenders.append(str(module.relative_to(ROOT)))
    assert offenders == []
