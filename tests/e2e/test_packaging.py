"""The wheel installs one namespace, `slatrail.*`, and nothing else into site-packages: generic
top-level names (`domain`, `infra`, …) would collide with other distributions."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_only_the_slatrail_namespace_and_its_package_data(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("slatrail-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    dist_info = {top for top in tops if top.endswith(".dist-info")}
    assert len(dist_info) == 1 and tops == {"slatrail", *dist_info}
    assert not any(name.startswith("slatrail/__init__") for name in names)  # a namespace package
    for package in ("domain", "projections", "consumers", "infra"):
        assert f"slatrail/{package}/__init__.py" in names
        assert f"slatrail/{package}/py.typed" in names
    assert "slatrail/infra/data/contracts.sample.toml" in names
    assert "slatrail/infra/templates/report.html.j2" in names
    for data in ("templates/board.html.j2", "templates/board_rows.html.j2", "static/board.js",
                 "static/board.css", "static/favicon.svg"):  # fmt: skip
        assert f"slatrail/infra/web/{data}" in names
