"""Hypothesis profiles. CI (``CI`` set, as ``.ci/run`` runs) uses ``derandomize=True``: the
examples are a fixed function of each test, so a landing is never decided by a fresh random
draw. Local runs explore fresh examples every time (docs/architecture.md: "also sample fresh
ones"); a failure prints the example and a reproduction blob, to pin as a regression test."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE",
                                                                       "explore"))
