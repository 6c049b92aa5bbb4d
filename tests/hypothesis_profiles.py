"""Hypothesis profiles: `dev`, the default, is quick; `ci` runs every property test in full.

`HYPOTHESIS_PROFILE=dev|ci` selects one (as does pytest's `--hypothesis-profile`); unset, `CI`
set selects `ci` (`.ci/run` sets `HYPOTHESIS_PROFILE=ci` too). An explicit `max_examples` in
`@settings` overrides every profile, so a property test declares its full count through
`examples(n)`: n under `ci`, a tenth of it (at least `DEV_MINIMUM`) under `dev`.
"""

from __future__ import annotations

import os

from hypothesis import settings

CI = "ci"
DEV = "dev"
DEV_SHARE = 10
DEV_MINIMUM = 5

# Hypothesis's own `ci` profile (derandomized, no example database, failure blobs printed),
# at its default count of 100 for the tests that declare none.
settings.register_profile(CI, settings.get_profile("ci"))
settings.register_profile(DEV, max_examples=DEV_SHARE)


def selected() -> str:
    """The profile this run asks for: HYPOTHESIS_PROFILE, else `ci` under CI, else `dev`."""
    name = os.environ.get("HYPOTHESIS_PROFILE", "").strip()
    if name:
        return name
    return CI if os.environ.get("CI") else DEV


def examples(full: int) -> int:
    """How many examples a property test declaring `full` runs under the active profile."""
    if settings.get_current_profile_name() == DEV:
        return min(full, max(DEV_MINIMUM, full // DEV_SHARE))
    return full
