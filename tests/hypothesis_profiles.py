"""A pytest plugin (`-p hypothesis_profiles` in pyproject): property tests run derandomized,
so a test run is reproducible and CI never fails on an example no earlier run drew.
`HYPOTHESIS_PROFILE=explore python -m pytest ...` draws fresh random examples instead."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
