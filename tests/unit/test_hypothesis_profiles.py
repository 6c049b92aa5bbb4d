"""The Hypothesis profiles: `dev` is quick, `ci` runs the counts the property tests declare."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.hypothesis_profiles import CI, DEV, DEV_MINIMUM, examples, selected

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def profile() -> Iterator[Callable[[str], None]]:
    """Load a profile for one test; the session's comes back afterwards."""
    before = settings.get_current_profile_name()
    yield settings.load_profile
    settings.load_profile(before)


def test_dev_runs_a_tenth_of_the_declared_count_and_ci_all_of_it(
    profile: Callable[[str], None],
) -> None:
    profile(DEV)
    assert [examples(n) for n in (200, 120, 40, 8, 3)] == [20, 12, DEV_MINIMUM, DEV_MINIMUM, 3]
    assert settings().max_examples == 10
    profile(CI)
    assert [examples(n) for n in (200, 120, 40, 8, 3)] == [200, 120, 40, 8, 3]
    assert settings().max_examples == 100 and settings().derandomize


def test_the_profile_comes_from_hypothesis_profile_else_ci_else_dev(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert selected() == DEV
    monkeypatch.setenv("CI", "true")
    assert selected() == CI
    monkeypatch.setenv("HYPOTHESIS_PROFILE", DEV)
    assert selected() == DEV


def test_no_property_test_fixes_its_count_past_the_profile() -> None:
    fixed = [
        f"{path.relative_to(TESTS)}:{number}"
        for path in sorted(TESTS.rglob("*.py"))
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"max_examples\s*=\s*\d", text)
    ]
    assert fixed == [], "use max_examples=examples(N) (tests/hypothesis_profiles.py)"
