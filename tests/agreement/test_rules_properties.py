"""Property tests (hypothesis) of the guarantees the robust rules claim."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import agreement.rules as R
from agreement.rules import gram, prepare
from agreement.rules.subsets import mda_subset

from . import rules_reference as ref

SETTINGS = settings(max_examples=60, deadline=None)
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def views(draw: st.DrawFn, max_m: int = 13, max_d: int = 4, dtype: type = np.float64
          ) -> tuple[np.ndarray, int]:
    f = draw(st.integers(0, (max_m - 1) // 2))
    m = draw(st.integers(2 * f + 1, max_m))
    d = draw(st.integers(1, max_d))
    elements = finite if dtype == np.float64 else st.floats(-1e6, 1e6, width=32)
    X = draw(hnp.arrays(dtype, (m, d), elements=elements))
    return X, f


@SETTINGS
@given(views(), st.data())
def test_trimmed_mean_within_range_of_any_m_minus_f_values(vf: tuple, data: st.DataObject
                                                           ) -> None:
    X, f = vf
    m = len(X)
    y = R.trimmed_mean(X, f)
    S = data.draw(st.lists(st.integers(0, m - 1), min_size=m - f, max_size=m - f, unique=True))
    assert (X[S].min(0) <= y).all() and (y <= X[S].max(0)).all()
    order = np.sort(X, axis=0)  # the same, for all subsets at once: [x_(f+1), x_(m-f)]
    assert (order[f] <= y).all() and (y <= order[m - f - 1]).all()


@SETTINGS
@given(views(dtype=np.float32))
def test_trimmed_mean_float32_within_order_statistics(vf: tuple) -> None:
    X, f = vf
    y = R.trimmed_mean(X, f)
    order = np.sort(X, axis=0)
    assert y.dtype == np.float32
    assert (order[f] <= y).all() and (y <= order[len(X) - f - 1]).all()


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 5), st.data())
def test_trimmed_mean_stays_in_the_honest_range(f: int, extra: int, d: int,
                                                data: st.DataObject) -> None:
    h = f + extra  # honest values, f adversarial ones at the extremes (or anywhere)
    honest = data.draw(hnp.arrays(np.float64, (h, d), elements=st.floats(-1, 1)))
    byz = data.draw(hnp.arrays(np.float64, (f, d), elements=st.sampled_from([-1e30, 1e30, 7.0])))
    X = np.vstack([honest, byz])[data.draw(st.permutations(range(h + f)))]
    for y in (R.trimmed_mean(X, f), R.median(X)):
        assert (honest.min(0) <= y).all() and (y <= honest.max(0)).all()


@SETTINGS
@given(views(max_m=11, max_d=3))
def test_mda_output_within_the_diameter_of_every_chosen_point(vf: tuple) -> None:
    X, f = vf
    g = gram(prepare(X, "t"), "t")
    S, d2 = mda_subset(g.distances2(), f)
    y = R.mda(X, f)
    scale = max(1.0, float(np.abs(X).max()))
    diam = np.sqrt(d2)
    assert len(S) == len(X) - f
    assert (np.linalg.norm(X[S] - y, axis=1) <= diam + 1e-9 * scale).all()
    # the diameter is the least over all subsets (the reference enumerates them)
    _, best = ref.mda_subset(X, f)
    assert abs(diam - best) <= 1e-9 * scale


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 4), st.data())
def test_mda_ignores_adversarial_values(f: int, extra: int, d: int, data: st.DataObject) -> None:
    h = 2 * f + extra  # m = h + f >= 2f+1 honest majority view
    honest = data.draw(hnp.arrays(np.float64, (h, d), elements=st.floats(-1, 1)))
    byz = data.draw(hnp.arrays(np.float64, (f, d), elements=st.floats(-1e3, 1e3)))
    X = np.vstack([honest, byz])
    y = R.mda(X, f)
    delta = max(np.linalg.norm(a - b) for a in honest for b in honest)
    # the chosen set has diameter <= Δ(honest) and contains an honest point
    assert min(np.linalg.norm(honest - y, axis=1)) <= delta + 1e-9


@SETTINGS
@given(views(max_m=9, max_d=3), st.data())
def test_batch_equals_loop_property(vf: tuple, data: st.DataObject) -> None:
    X, f = vf
    m = len(X)
    name = data.draw(st.sampled_from(["trimmed-mean", "median", "mean", "mda"]))
    rule = R.make_rule(name, f)
    k = data.draw(st.integers(1, 4))
    masks = np.zeros((k, m), bool)
    for i in range(k):
        size = data.draw(st.integers(rule.min_size(), m))
        masks[i, data.draw(st.permutations(range(m)))[:size]] = True
    want = np.stack([rule(X[mk]) for mk in masks])
    np.testing.assert_allclose(rule.batch(X, masks), want, rtol=1e-9, atol=1e-9)


def test_median_midpoint_of_subnormals_stays_in_range() -> None:
    """Regression (found by test_trimmed_mean_stays_in_the_honest_range): the even-m median
    0.5·a + 0.5·b of two subnormals rounded to 0, below both; batch and torch paths too."""
    torch = pytest.importorskip("torch")
    X = np.array([[5e-324], [5e-324], [5e-324], [-1e30]])
    masks = np.array([[True, True, True, True], [True, True, True, False]])
    assert R.median(X)[0] == 5e-324
    assert (R.make_rule("median", 1).batch(X, masks) == 5e-324).all()
    T = torch.from_numpy(X)
    assert float(R.median(T)[0]) == 5e-324
