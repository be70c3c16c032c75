"""proofs/mve.md, 1-D: the implemented MVE rule is exactly "the (m-f)-subset of least range, its
midpoint" (Lemma 1 with γ = 1 since de568b0: the MVEE of a rank-1 set in closed form), and
what is still open (Proposition 9)."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

from agreement import constants as K
from agreement.rules import make_rule
from agreement.rules.mvee import khachiyan


def _least_range_outputs(x: np.ndarray, f: int, tol: float) -> tuple[list[float], list[float]]:
    """Midpoints and means of every (m-f)-subset whose range is within ``tol`` of the least."""
    q = len(x) - f
    subs = [np.array(s) for s in itertools.combinations(x, q)]
    ranges = np.array([s.max() - s.min() for s in subs])
    best = [s for s, r in zip(subs, ranges, strict=True) if r <= ranges.min() + tol]
    return [0.5 * (s.min() + s.max()) for s in best], [float(s.mean()) for s in best]


@pytest.mark.parametrize("n,f", [(7, 1), (13, 2)])
@pytest.mark.parametrize("grid", [False, True])
def test_1d_rule_is_least_range_midpoint(n, f, grid):
    # Lemma 1: no tolerance factor (γ = 1); with grid values, duplicates make rank-0 subsets
    # and ties (any least-range subset may win)
    rng = np.random.default_rng(3 + n + grid)
    for _ in range(10):
        m = int(rng.integers(n - f, n + 1))
        x = rng.normal(size=m)
        if grid:
            x = np.round(x * 2) / 2
        scale = float(np.abs(x).max())
        mids, means = _least_range_outputs(x, f, 1e-12 * scale)
        y = float(make_rule("mve", f)(x[:, None])[0])
        assert min(abs(y - c) for c in mids) <= 1e-12 * scale
        y = float(make_rule("mve", f, center="mean")(x[:, None])[0])
        assert min(abs(y - c) for c in means) <= 1e-12 * scale


def test_1d_mvee_is_exact_and_immediate():
    # the near-duplicate set that ran Khachiyan's 100,000 iterations (~6 s) before de568b0
    P = np.array([0.0, 0.0, 0.0, 1e-6, 1.0, 1.0])[None, :, None]
    res = khachiyan(P)
    assert res.log_volume[0] == math.log(0.5)
    assert bool(res.converged[0])
    assert res.weights[0].sum() == 1.0 and sorted(res.weights[0])[-2:] == [0.5, 0.5]
    t = time.perf_counter()
    y = make_rule("mve", 1)(P[0])
    assert time.perf_counter() - t < 1.0
    assert float(y[0]) == 0.5  # every 5-subset has range 1: the midpoint is 0.5


def test_1d_gamma_is_one():
    assert K.mve_range_factor(13, 2) == 1.0
    assert K.mve_bias(13, 2, 1) == pytest.approx(4 / 11 + 0.5, rel=1e-15)


@pytest.mark.parametrize("name", ["mve", "mda"])
@pytest.mark.parametrize("far", [1e300, 9e307])
def test_values_beyond_float64_squares_are_refused_not_misread(name, far):
    """proofs/mve.md Proposition 9 (found by this analysis, fixed): a value whose square
    overflows float64 made gram_of rescale, the honest entries underflowed to 0 and the
    subsets without it tied at key -inf (the first, holding a second Byzantine value, won:
    ratio 9.1e98), and above 2^1023 the rescaling itself raised OverflowError. Now the rule
    refuses such a view with a clear ValueError, and the protocols never let such a value into
    a view: it is invalid (netsim.messages.valid_vector), like NaN."""
    from netsim.messages import valid_vector

    n, f = 13, 2
    honest = np.linspace(0.0, 1.0, n - f)
    values = np.concatenate([[1e100, far], honest])[:, None]  # Byzantine nodes 0, 1 first
    with pytest.raises(ValueError, match="float64"):
        make_rule(name, f)(values)
    assert not valid_vector(np.array([far])) and valid_vector(np.array([1e100]))
    # without the invalid value, the view is fine and the bound holds
    y = float(make_rule(name, f)(np.delete(values, 1, axis=0))[0])
    assert abs(y - honest.mean()) <= K.mve_bias(n, f, 1) * (honest.max() - honest.min())
