"""`slatrail schema`: the contracts under schemas/, printed by the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SLATRAIL = str(Path(sys.executable).parent / "slatrail")
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
ASYNCAPI_PARSER = Path(__file__).resolve().parents[1] / "data" / "asyncapi" / "parse.cjs"


def slatrail(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLATRAIL_")}
    return subprocess.run(
        [SLATRAIL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_schema_list_names_every_document_and_a_name_prints_its_checked_in_file(
    tmp_path: Path,
) -> None:
    listed = slatrail(tmp_path, "schema", "--list")
    assert listed.returncode == 0, listed.stderr
    rows = [row.split("\t") for row in listed.stdout.splitlines()]
    names = [name for name, _ in rows]
    assert names[:2] == ["message.reported", "message.triaged"]
    assert {"envelope", "dead-letter", "alert", "parked", "asyncapi"} <= set(names)
    shown_names = ("message.reported", "envelope", "dead-letter", "alert", "parked", "asyncapi")
    for name, path in (row for row in rows if row[0] in shown_names):
        shown = slatrail(tmp_path, "schema", name)
        assert shown.returncode == 0, (name, shown.stderr)
        assert shown.stdout == (SCHEMA_DIR / path).read_text(encoding="utf-8"), name
    assert json.loads(slatrail(tmp_path, "schema", "asyncapi").stdout)["asyncapi"] == "3.0.0"
    assert list(tmp_path.iterdir()) == [], "schema creates no store or file"


def test_schema_write_reproduces_the_checked_in_folder(tmp_path: Path) -> None:
    done = slatrail(tmp_path, "schema", "--write", "out")
    assert done.returncode == 0, done.stderr
    written = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.json"))
    assert written == sorted(p.relative_to(SCHEMA_DIR) for p in SCHEMA_DIR.rglob("*.json"))
    for relative in written:
        assert (tmp_path / "out" / relative).read_bytes() == (SCHEMA_DIR / relative).read_bytes()


def test_an_unknown_schema_name_is_a_usage_error_naming_the_known_ones(tmp_path: Path) -> None:
    done = slatrail(tmp_path, "schema", "message.closed")
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("slatrail: schema: no schema 'message.closed' (one of: message.reported,")
    )
    assert slatrail(tmp_path, "schema").returncode == 2


def _asyncapi_parser() -> str | None:
    """Why the official JavaScript parser cannot run here, or None when it can."""
    node = shutil.which("node")
    if node is None:
        return "node is not installed"
    found = subprocess.run(
        [node, "-e", "require.resolve('@asyncapi/parser')"], capture_output=True, check=False
    )
    if found.returncode != 0:
        return (
            "@asyncapi/parser is not on NODE_PATH (npm install --prefix DIR @asyncapi/parser@3; "
            "NODE_PATH=DIR/node_modules); the official-schema tests above still ran"
        )
    return None


def test_the_official_asyncapi_parser_accepts_the_document_when_node_has_it() -> None:
    """Optional: the reference parser also checks what a JSON Schema cannot (references,
    operation messages belonging to their channel), reading the payload files through `$ref`."""
    missing = _asyncapi_parser()
    if missing is not None:
        pytest.skip(missing)
    script = ASYNCAPI_PARSER
    done = subprocess.run(
        ["node", str(script), str(SCHEMA_DIR / "asyncapi.json")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    diagnostics = [json.loads(text) for text in done.stdout.splitlines() if text.startswith("{")]
    assert done.returncode == 0 and not [d for d in diagnostics if d["severity"] == 0], (
        done.stdout + done.stderr
    )
