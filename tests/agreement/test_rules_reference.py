"""Hand checks of the reference implementations of the robust rules
(:mod:`tests.agreement.rules_reference`)."""

from __future__ import annotations

import numpy as np

from .rules_reference import krum, krum_scores, mda_subset, median, mvee_explicit, trimmed_mean

# --------------------------------------------------------------------------------------------
# the references on hand-made examples


def test_reference_trimmed_mean_and_median_by_hand() -> None:
    X = np.array([[1.0], [100.0], [2.0], [-50.0], [3.0]])
    assert trimmed_mean(X, 1)[0] == 2.0
    assert trimmed_mean(X, 2)[0] == 2.0
    assert median(X)[0] == 2.0


def test_reference_krum_by_hand() -> None:
    # scores with m-f-2 = 2 neighbours: 1.25, 1.25, 3.25, ~1e4, 0.5
    X = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [100.0, 0.0], [0.5, 0.0]])
    assert np.allclose(krum_scores(X, 1)[[0, 1, 2, 4]], [1.25, 1.25, 3.25, 0.5])
    assert np.array_equal(krum(X, 1), [0.5, 0.0])


def test_reference_mda_by_hand() -> None:
    X = np.array([[0.0], [1.0], [10.0], [1.5]])
    S, diam = mda_subset(X, 1)
    assert S == (0, 1, 3) and diam == 1.5


def test_reference_mvee_of_a_square() -> None:
    import pytest

    pytest.importorskip("cvxpy")
    X = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    c, lv, r = mvee_explicit(X)
    # the MVEE of a square of side 2 is the circle of radius sqrt(2) around its centre
    assert r == 2
    assert np.allclose(c, [1.0, 1.0], atol=1e-6)
    assert abs(lv - np.log(2.0)) < 1e-5  # -log det A with A = I/sqrt(2)
