"""Subset rules: MDA against enumeration, MVE (fast and exact) against cvxpy enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import agreement.rules as R
from agreement.rules import gram, prepare
from agreement.rules.mvee import khachiyan, mvee
from agreement.rules.subsets import mda_subset, mve_choice, mve_subsets

from . import rules_reference as ref


def view(seed: int, m: int, d: int, outliers: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d))
    if outliers:
        X[rng.choice(m, outliers, replace=False)] += 20.0 * rng.standard_normal(d)
    return X


def gram_of(X: np.ndarray) -> np.ndarray:
    return gram(prepare(X, "test"), "test").G


# --------------------------------------------------------------------------------------------
# MDA


@pytest.mark.parametrize("m,f,d", [(3, 1, 2), (5, 2, 3), (7, 1, 4), (9, 3, 10), (12, 4, 1),
                                   (19, 3, 50), (8, 0, 3)])
@pytest.mark.parametrize("seed", [0, 1])
def test_mda_matches_enumeration(m: int, f: int, d: int, seed: int) -> None:
    X = view(seed * 100 + m, m, d, outliers=f)
    S, diam = ref.mda_subset(X, f)
    got, d2 = mda_subset(ref.dist2(X), f)
    assert tuple(got) == S
    assert np.isclose(np.sqrt(d2), diam, rtol=1e-12)
    np.testing.assert_allclose(R.mda(X, f), X[list(S)].mean(0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_mda_ties_take_the_lexicographically_first_subset(seed: int) -> None:
    # small integer coordinates: exact arithmetic, many exact ties (duplicates, equal diameters)
    rng = np.random.default_rng(seed)
    m, f = 8, 3
    X = rng.integers(0, 3, size=(m, 2)).astype(float)
    S, diam = ref.mda_subset(X, f)
    got, d2 = mda_subset(ref.dist2(X), f)
    assert tuple(got) == S and np.sqrt(d2) == diam
    np.testing.assert_allclose(R.mda(X, f), X[list(S)].mean(0), rtol=1e-15)


def test_mda_ignores_far_outliers_and_duplicates() -> None:
    honest = view(3, 6, 5)
    X = np.vstack([honest[:3], [honest[0] + 1e4], honest[3:], [honest[1] - 1e4]])
    y = R.mda(X, 2)
    np.testing.assert_allclose(y, honest.mean(0), rtol=1e-10)
    X = np.vstack([honest, honest[:2]])  # Byzantine copies of honest values
    S, _ = ref.mda_subset(X, 2)
    np.testing.assert_allclose(R.mda(X, 2), X[list(S)].mean(0), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# MVE


def test_mvee_helper_against_cvxpy() -> None:
    pytest.importorskip("cvxpy")
    rng = np.random.default_rng(7)
    for n, d in [(8, 2), (10, 3), (5, 4), (6, 1), (9, 2)]:
        X = rng.standard_normal((n, d)) * rng.uniform(0.1, 10, d)
        fast, exact = mvee(X), mvee(X, "exact")
        c, lv, r = ref.mvee_explicit(X)  # plain cvxpy in SVD coordinates: ~1e-4 accurate
        assert fast.dim == exact.dim == r
        np.testing.assert_allclose(fast.center, c, atol=1e-3 * np.ptp(X))
        np.testing.assert_allclose(exact.center, c, atol=1e-3 * np.ptp(X))
        assert abs(fast.log_volume - lv) < 1e-4 and abs(exact.log_volume - lv) < 1e-4
        # fast (tol 1e-7) against the whitened, tightly solved exact path
        np.testing.assert_allclose(fast.center, exact.center, atol=1e-5 * np.ptp(X))
        assert abs(fast.log_volume - exact.log_volume) < 1e-6
        np.testing.assert_allclose(fast.weights.sum(), 1.0)
        assert (fast.weights >= 0).all()
        # every point lies in the fast ellipsoid, scaled by (1 + small)
        Xc = X - fast.center
        Sigma = (fast.weights[:, None] * Xc).T @ Xc
        q = np.einsum("ij,jk,ik->i", Xc, np.linalg.inv(Sigma), Xc)
        assert q.max() <= d * (1 + 1e-5)


def test_mvee_of_a_simplex_is_centred_at_its_mean() -> None:
    X = view(2, 5, 30)  # 5 affinely independent points in R^30: a 4-simplex
    e = mvee(X)
    assert e.dim == 4
    np.testing.assert_allclose(e.center, X.mean(0), atol=1e-12)
    # volume: the Löwner ellipsoid of a simplex, (x-c)ᵀ Σ⁻¹ (x-c) <= r, Σ = covariance
    Xc = X - X.mean(0)
    lam = np.linalg.eigvalsh(Xc @ Xc.T / 5)[1:]
    assert np.isclose(e.log_volume, 0.5 * np.log(lam).sum() + 2 * np.log(4))


def test_mvee_degenerate_sets() -> None:
    p = np.arange(5.0)
    single = mvee(p[None, :])
    assert single.dim == 0 and single.log_volume == -np.inf
    np.testing.assert_array_equal(single.center, p)
    dup = mvee(np.vstack([p, p, p]))
    assert dup.dim == 0
    np.testing.assert_allclose(dup.center, p)
    # collinear points in R^5: the segment between the extremes
    rng = np.random.default_rng(0)
    t = rng.standard_normal(7)
    a, b = rng.standard_normal(5), rng.standard_normal(5)
    X = a + t[:, None] * b
    line = mvee(X)
    assert line.dim == 1
    np.testing.assert_allclose(line.center, a + (t.max() + t.min()) / 2 * b, atol=1e-6)
    assert np.isclose(line.log_volume, np.log(np.ptp(t) * np.linalg.norm(b) / 2), atol=1e-6)


def test_khachiyan_batch_equals_single_and_converges() -> None:
    rng = np.random.default_rng(3)
    P = rng.standard_normal((6, 9, 3))
    res = khachiyan(P, 1e-9)
    assert res.converged.all()
    for b in range(6):
        one = khachiyan(P[b : b + 1], 1e-9)
        np.testing.assert_allclose(one.weights[0], res.weights[b], atol=1e-12)
        np.testing.assert_allclose(one.log_volume[0], res.log_volume[b])


@pytest.mark.parametrize("m,f,d", [(5, 1, 2), (6, 2, 3), (5, 1, 8), (7, 1, 2), (3, 1, 4)])
def test_mve_matches_cvxpy_enumeration(m: int, f: int, d: int) -> None:
    pytest.importorskip("cvxpy")
    X = view(m * 10 + d, m, d, outliers=1)
    S, c, lv, r = ref.mve(X, f)
    G = gram_of(X)
    fast = mve_choice(G, f)
    assert tuple(fast.subset) == S and fast.dim == r
    assert abs(fast.log_volume - lv) < 1e-4
    scale = np.ptp(X[list(S)])
    y_fast, y_exact = R.mve(X, f), R.mve(X, f, method="exact")
    np.testing.assert_allclose(y_fast, c, atol=1e-3 * scale)
    np.testing.assert_allclose(y_exact, c, atol=1e-3 * scale)
    np.testing.assert_allclose(y_fast, y_exact, atol=1e-5 * scale)
    np.testing.assert_allclose(R.mve(X, f, center="mean"), X[list(S)].mean(0), rtol=1e-12)


@pytest.mark.parametrize("m,f,d", [(7, 2, 2), (6, 1, 3), (8, 2, 9)])
def test_mve_fast_volumes_match_exact(m: int, f: int, d: int) -> None:
    pytest.importorskip("cvxpy")
    X = view(m + f + d, m, d, outliers=f)
    G = gram_of(X)
    S1, r1, lv1, w1, _ = mve_subsets(G, f, "fast")
    S2, r2, lv2, w2, _ = mve_subsets(G, f, "exact")
    np.testing.assert_array_equal(S1, S2)
    np.testing.assert_array_equal(r1, r2)
    # fast log-volumes are those of enclosing ellipsoids within (r/2)·log(1 + O(tol)) of the
    # optimum
    np.testing.assert_allclose(lv1, lv2, atol=1e-6)
    Xs = [X[list(s)] for s in S1]
    c1 = np.stack([w @ x for w, x in zip(np.concatenate(w1), Xs, strict=True)])
    c2 = np.stack([w @ x for w, x in zip(np.concatenate(w2), Xs, strict=True)])
    np.testing.assert_allclose(c1, c2, atol=1e-5 * np.ptp(X))


def test_mve_prefers_affinely_degenerate_subsets() -> None:
    # 6 collinear points in R^5 and one point off the line: the 6 collinear ones (dimension 1)
    # beat every subset with the off-line point (dimension 2), even if those are smaller.
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(5), rng.standard_normal(5)
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 10.0])
    X = np.vstack([a + t[:, None] * b, a + 0.01 * rng.standard_normal(5)])
    c = mve_choice(gram_of(X), 1)
    assert tuple(c.subset) == (0, 1, 2, 3, 4, 5) and c.dim == 1
    np.testing.assert_allclose(R.mve(X, 1), a + 5.0 * b, atol=1e-6)
    np.testing.assert_allclose(R.mve(X, 1, center="mean"), X[:6].mean(0), rtol=1e-12)


def test_mve_duplicates_and_tiny_sets() -> None:
    X = view(4, 5, 3)
    Xd = np.vstack([X, X[1], X[1]])  # two Byzantine copies of an honest value
    S, _, _, r = ref.mve(Xd, 2) if _has_cvxpy() else (None, None, None, None)
    c = mve_choice(gram_of(Xd), 2)
    # subsets holding the value 1 three times have 3 distinct points: a triangle (dimension 2)
    # beats the dimension-3 subsets; its centre is the triangle's centroid
    assert c.dim == 2 and {1, 5, 6} <= set(c.subset)
    np.testing.assert_allclose(R.mve(Xd, 2), Xd[sorted(set(c.subset) - {5, 6})].mean(0),
                               atol=1e-6)
    if S is not None:
        assert tuple(c.subset) == S and c.dim == r
    # m = 3, f = 1: the closest pair, centre its midpoint
    Y = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    np.testing.assert_allclose(R.mve(Y, 1), [0.5, 0.0], atol=1e-9)
    # m = 1, f = 0
    np.testing.assert_array_equal(R.mve(Y[:1], 0), Y[0])


def _has_cvxpy() -> bool:
    try:
        import cvxpy  # noqa: F401
    except ImportError:
        return False
    return True


def test_mve_refuses_too_many_subsets() -> None:
    X = view(1, 9, 3)
    with pytest.raises(ValueError, match=r"C\(9, 2\) = 36 subsets, more than max_subsets=10"):
        R.make_rule("mve", 2, max_subsets=10)(X)


def test_mve_large_d_depends_on_gram_only() -> None:
    # the same geometry embedded in R^3 and (rotated) in R^2000 gives the same subset and centre
    rng = np.random.default_rng(5)
    X = rng.standard_normal((6, 3))
    Q, _ = np.linalg.qr(rng.standard_normal((2000, 3)))
    Y = X @ Q.T + 7.0
    np.testing.assert_allclose(R.mve(Y, 1), R.mve(X, 1) @ Q.T + 7.0, atol=1e-9)
    np.testing.assert_allclose(R.mda(Y, 2), R.mda(X, 2) @ Q.T + 7.0, atol=1e-9)


def test_mve_all_subsets_enumerated_in_order() -> None:
    X = view(6, 6, 2)
    S, r, lv, _, _ = mve_subsets(gram_of(X), 2)
    assert [tuple(s) for s in S] == list(itertools.combinations(range(6), 4))
    assert (r == 2).all() and np.isfinite(lv).all()


def test_mve_far_outlier_does_not_hide_honest_directions() -> None:
    """Regression: with a relative rank tolerance of 1e-10, a Byzantine vector ~3e6 away made
    every subset containing it look 1-dimensional (its honest directions fell below
    1e-10·λ_max), so those subsets "won" and the output was dragged ~1e6 away."""
    rng = np.random.default_rng(3)
    honest = rng.integers(0, 2, size=(6, 4)).astype(np.float64)  # cube corners, 6 of them
    for scale in (1e3, 1e6):
        X = np.concatenate([scale * rng.standard_normal((1, 4)), honest])
        y = R.mve(X, 1)
        assert (y >= honest.min(0) - 1e-9).all() and (y <= honest.max(0) + 1e-9).all(), scale


def test_khachiyan_is_affine_equivariant_on_elongated_sets() -> None:
    """Regression: an elongated set (axes 1e7 : 1) made the unwhitened M(u) singular. The log
    volume shifts by log(1e7) and the weights (hence the centre) do not change."""
    P = view(5, 8, 3)
    S = np.diag([1e7, 1.0, 1e-3])
    a = khachiyan(P[None], 1e-9)
    b = khachiyan((P @ S)[None], 1e-9)
    assert a.converged.all() and b.converged.all()
    np.testing.assert_allclose(b.log_volume - a.log_volume, np.log(1e7 * 1e-3), rtol=1e-6)
    np.testing.assert_allclose(a.weights, b.weights, atol=1e-6)


def test_mve_near_duplicates_are_not_a_spurious_dimension() -> None:
    """Regression (found by proofs' search): four duplicates and one point 7.5e-4 away in 1-D
    showed a rounding eigenvalue (7.8e-16) above the old noise floor (6.0e-16); the subset was
    taken for 2-dimensional and Khachiyan's M(u) became singular (LinAlgError)."""
    v = np.array([0.8242253989667967] + [0.8234757226456948] * 4 + [-0.19636910468732743])
    for center in ("ellipsoid", "mean"):
        y = R.mve(v[:, None], 1, center=center)
        assert np.isfinite(y).all()
        # the least-range 5-subset drops -0.196: its midpoint / mean
        sub = v[:5]
        want = 0.5 * (sub.min() + sub.max()) if center == "ellipsoid" else sub.mean()
        np.testing.assert_allclose(y, [want], rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", range(20))
def test_mve_in_one_dimension_is_least_range_midpoint(seed: int) -> None:
    """docs/theory.md §5.2: volumes compared in R^d when d < m-f-1; in 1-D the volume is the range,
    so MVE is the midpoint of the (m-f)-subset of least range, and its mean variant is MDA."""
    rng = np.random.default_rng(seed)
    m, f = int(rng.integers(5, 10)), int(rng.integers(1, 3))
    x = rng.standard_normal(m) * 10 ** rng.uniform(-3, 3) + rng.uniform(-1e3, 1e3)
    s = np.sort(x)
    q = m - f
    widths = s[q - 1:] - s[: m - q + 1]
    # the output is the midpoint of a window of least width (several within the solver's
    # relative tolerance may tie)
    best = np.flatnonzero(widths <= widths.min() * (1 + 1e-6))
    y = float(R.mve(x[:, None], f)[0])
    mids = 0.5 * (s[best] + s[best + q - 1])
    assert np.min(np.abs(mids - y)) <= 1e-7 * widths.min() + 1e-12 * np.abs(x).max()
    np.testing.assert_allclose(R.mve(x[:, None], f, center="mean"), R.mda(x[:, None], f),
                               rtol=1e-12, atol=1e-12 * np.abs(x).max())


@pytest.mark.parametrize("rule", ["mda", "mve", "krum"])
@pytest.mark.parametrize("offset_exp", [20, 33, 40])
@pytest.mark.parametrize("seed", range(3))
def test_gram_rules_are_equivariant_under_a_large_common_offset(
    rule: str, offset_exp: int, seed: int
) -> None:
    """rule(X + c) = rule(X) + c for an offset c = 2^k up to 2^40 times the spread. The values
    are multiples of 2^-6 within [-4, 4], so X + c is exact and the two views hold the same
    points. Regression: at a relative spread below ~1e-8 every squared distance of the
    uncentred Gram matrix cancelled to 0 and the medoid recentring never ran (MDA took the
    first subset: the bias violation of tests/proofs' test_mda_bias_at_a_common_offset)."""
    rng = np.random.default_rng(seed)
    m, f, d = 11, 2, 3
    x = np.round(rng.normal(size=(m, d)) * 64) / 64
    x[:2] += 3.0  # two far-ish values, first in the view (the order that found the defect)
    c = np.full(d, 2.0**offset_exp)
    r = R.make_rule(rule, f)
    want = np.asarray(r(x), dtype=np.float64)
    # the same subset: outputs equal up to the rounding of a weighted sum of m values at the
    # offset's scale (16 ulps of c; MVE also up to the Khachiyan tolerance of its centre);
    # two subsets' outputs differ by ~0.03-0.1 here
    atol = max(2.0 ** (offset_exp - 48), 1e-6 if rule == "mve" else 0.0)
    got = np.asarray(r(x + c), dtype=np.float64) - c
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)
    got_b = np.asarray(r.batch(x + c, np.ones((1, m), bool)), dtype=np.float64)[0] - c
    np.testing.assert_allclose(got_b, want, rtol=0, atol=atol)
