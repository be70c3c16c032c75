"""The robust rules of agreement: references, types, batches, preconditions, edge cases."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys

import numpy as np
import pytest

import agreement.rules as R
from agreement.rules import backend

from . import rules_reference as ref

NAMES = [
    "ball-mda",
    "bulyan",
    "centered-clipping",
    "geometric-median",
    "krum",
    "mda",
    "mean",
    "median",
    "multi-krum",
    "mve",
    "nnm",
    "trimmed-mean",
]

# expected precondition expressions (in the error messages) and min sizes, at f = 2
MIN_SIZE = {
    "ball-mda": ("2f+1", 5),
    "bulyan": ("4f+3", 11),
    "centered-clipping": ("2f+1", 5),
    "geometric-median": ("2f+1", 5),
    "krum": ("2f+3", 7),
    "mda": ("2f+1", 5),
    "mean": ("1", 1),
    "median": ("2f+1", 5),
    "multi-krum": ("2f+3", 7),
    "mve": ("2f+1", 5),
    "nnm": ("2f+1", 5),
    "trimmed-mean": ("2f+1", 5),
}
LABEL = {
    "ball-mda": "ball_mda",
    "bulyan": "bulyan",
    "centered-clipping": "centered_clipping",
    "geometric-median": "geometric_median",
    "krum": "krum",
    "mda": "mda",
    "mean": "mean",
    "median": "median",
    "multi-krum": "multi_krum",
    "mve": "mve",
    "nnm": "nnm",
    "trimmed-mean": "trimmed_mean",
}


def view(seed: int, m: int, d: int, dtype: type = np.float64, outliers: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d))
    if outliers:
        X[rng.choice(m, outliers, replace=False)] += 50.0 * rng.standard_normal(d)
    return X.astype(dtype)


def tol(dtype: object) -> dict[str, float]:
    return {"rtol": 1e-10, "atol": 1e-10} if dtype == np.float64 else {"rtol": 2e-5,
                                                                          "atol": 2e-5}


# --------------------------------------------------------------------------------------------
# registry and interface


def test_registry_names() -> None:
    assert R.rule_names() == NAMES
    assert sorted(R.RULES) == NAMES
    for name in NAMES:
        rule = R.make_rule(name, 2)
        assert rule.name == name and rule.f == 2
        assert isinstance(rule, R.Rule)
        _, size = MIN_SIZE[name]
        assert rule.min_size() == size, name


def test_unknown_rule_lists_the_names() -> None:
    with pytest.raises(ValueError, match=r"unknown rule 'kurm'.*known rules: ball-mda, bulyan, "):
        R.make_rule("kurm", 1)


def test_rules_are_frozen_and_comparable() -> None:
    rule = R.make_rule("trimmed-mean", 2)
    with pytest.raises(AttributeError):
        rule.f = 3  # type: ignore[misc]
    assert rule == R.TrimmedMean(2)
    assert hash(rule) == hash(R.TrimmedMean(2))
    assert R.make_rule("nnm", 1, inner="krum") == R.NNM(1, "krum")


def test_rule_parameters() -> None:
    assert R.make_rule("multi-krum", 1, k=3).k == 3
    assert R.make_rule("mve", 1, method="exact", center="mean").method == "exact"
    assert R.make_rule("nnm", 1, inner="geometric-median", inner_params={"tol": 1e-9}
                      ).inner_rule() == R.GeometricMedian(1, tol=1e-9)
    with pytest.raises(ValueError, match="unknown rule 'nope'"):
        R.make_rule("nnm", 1, inner="nope")
    with pytest.raises(ValueError, match="method must be 'fast' or 'exact'"):
        R.make_rule("mve", 1, method="slow")
    with pytest.raises(ValueError, match="center must be 'ellipsoid' or 'mean'"):
        R.make_rule("mve", 1, center="median")
    with pytest.raises(ValueError, match="tau > 0"):
        R.make_rule("centered-clipping", 1, tau=-1.0)
    with pytest.raises(ValueError, match="k >= 1"):
        R.make_rule("multi-krum", 1, k=0)
    with pytest.raises(TypeError):
        R.make_rule("krum", 1, nonsense=3)


def test_docstrings_state_precondition_and_guarantee() -> None:
    for name in NAMES:
        doc = R.RULES[name].__doc__ or ""
        assert "Precondition" in doc and "Guarantee" in doc, name


def test_importing_agreement_does_not_import_torch() -> None:
    code = (
        "import sys, numpy as np; import agreement, agreement.rules as R; "
        "R.mve(np.eye(5), 1); R.trimmed_mean(np.eye(5), 1); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------
# against the references


@pytest.mark.parametrize("m,f,d", [(5, 2, 7), (9, 3, 40), (16, 5, 300), (8, 0, 3), (64, 10, 50)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_trimmed_mean_matches_full_sort(m: int, f: int, d: int, dtype: type) -> None:
    X = view(m * 100 + f, m, d, dtype, outliers=f)
    y = R.trimmed_mean(X, f)
    assert y.dtype == dtype and y.shape == (d,)
    np.testing.assert_allclose(y, ref.trimmed_mean(X, f), **tol(dtype))


@pytest.mark.parametrize("m", [1, 2, 5, 8, 17])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_median_matches_numpy(m: int, dtype: type) -> None:
    X = view(m, m, 333, dtype)
    y = R.median(X)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, np.median(X, axis=0))


def test_median_chunks_cover_large_d() -> None:
    X = view(1, 6, 100_003, np.float32)  # several column chunks, the last one partial
    np.testing.assert_array_equal(R.median(X), np.median(X, axis=0))
    np.testing.assert_allclose(R.trimmed_mean(X, 2), ref.trimmed_mean(X, 2), rtol=1e-6,
                               atol=1e-6)


def test_mean() -> None:
    X = view(3, 7, 11)
    np.testing.assert_allclose(R.mean(X), X.mean(axis=0), rtol=1e-12)


@pytest.mark.parametrize("m,f,d", [(7, 2, 5), (12, 3, 30), (9, 1, 1)])
def test_krum_and_multi_krum_match_explicit_distances(m: int, f: int, d: int) -> None:
    X = view(m + f, m, d, outliers=f)
    np.testing.assert_array_equal(R.krum(X, f), ref.krum(X, f))
    for k in (1, 3, m - f):
        np.testing.assert_allclose(R.multi_krum(X, f, k), ref.multi_krum(X, f, k), rtol=1e-12)
    np.testing.assert_allclose(R.multi_krum(X, f), ref.multi_krum(X, f, m - f), rtol=1e-12)


@pytest.mark.parametrize("m,f,d", [(3, 0, 4), (7, 1, 6), (11, 2, 20), (13, 2, 1)])
def test_bulyan_matches_reference(m: int, f: int, d: int) -> None:
    X = view(m * 7 + f, m, d, outliers=f)
    np.testing.assert_allclose(R.bulyan(X, f), ref.bulyan(X, f), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m,d", [(5, 3), (9, 2), (12, 40)])
def test_geometric_median_minimises_the_sum_of_distances(m: int, d: int) -> None:
    scipy_opt = pytest.importorskip("scipy.optimize")
    X = view(m * d, m, d, outliers=1)
    z = R.geometric_median(X, tol=1e-12, max_iter=5000)
    res = scipy_opt.minimize(lambda v: ref.geometric_median_objective(X, v), np.median(X, 0),
                             method="Nelder-Mead" if d <= 3 else "BFGS",
                             options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000}
                             if d <= 3 else {"gtol": 1e-10})
    fz = ref.geometric_median_objective(X, z)
    assert fz <= res.fun + 1e-7 * abs(res.fun)
    np.testing.assert_allclose(z, res.x, atol=1e-3)  # the minimiser is unique (not collinear)


def test_geometric_median_weiszfeld_fixed_point() -> None:
    X = view(5, 8, 30)
    z = R.geometric_median(X, tol=1e-14, max_iter=10_000)
    w = 1.0 / np.linalg.norm(X - z, axis=1)
    # the stopping rule is on the objective (|ΔF| <= tol·F), so the point is ~sqrt(tol)-accurate
    np.testing.assert_allclose(z, (w[:, None] * X).sum(0) / w.sum(), atol=1e-6)


@pytest.mark.parametrize("tau", [None, 0.5, 3.0])
@pytest.mark.parametrize("iterations", [1, 4])
def test_centered_clipping_matches_reference(tau: float | None, iterations: int) -> None:
    X = view(11, 9, 12, outliers=2)
    y = R.centered_clipping(X, tau, iterations, f=2)
    np.testing.assert_allclose(y, ref.centered_clipping(X, tau, iterations, np.median(X, 0), 2),
                               rtol=1e-10, atol=1e-10)
    c = X[3] + 0.1
    y = R.centered_clipping(X, tau, iterations, center=c, f=2)
    np.testing.assert_allclose(y, ref.centered_clipping(X, tau, iterations, c, 2),
                               rtol=1e-10, atol=1e-10)


def test_centered_clipping_center_is_validated() -> None:
    X = view(1, 5, 4)
    with pytest.raises(ValueError, match=r"center must have shape \(4,\)"):
        R.centered_clipping(X, 1.0, 1, center=np.zeros(3))
    with pytest.raises(ValueError, match="center contains non-finite"):
        R.centered_clipping(X, 1.0, 1, center=np.array([0.0, np.nan, 0, 0]))


@pytest.mark.parametrize("f", [0, 1, 3])
def test_nnm_matches_reference(f: int) -> None:
    X = view(f + 40, 8, 6, outliers=f)
    np.testing.assert_allclose(R.nnm(X, f), ref.nnm(X, f), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("inner", ["trimmed-mean", "median", "krum", "geometric-median", "mda",
                                   "bulyan", "mve", "centered-clipping", "mean"])
def test_nnm_rule_is_inner_rule_on_mixed_view(inner: str) -> None:
    f = 1
    X = view(77, 9, 5, outliers=f)
    got = R.make_rule("nnm", f, inner=inner)(X)
    want = R.make_rule(inner, f)(ref.nnm(X, f))
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-7)


# --------------------------------------------------------------------------------------------
# types: numpy, torch, sequences


def rule_for(name: str, f: int) -> R.Rule:
    return R.make_rule(name, f)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_matches_numpy(name: str, dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    f = 1
    X = view(5, 9, 17, getattr(np, dtype), outliers=f)
    rule = rule_for(name, f)
    want = rule(X)
    assert isinstance(want, np.ndarray) and want.dtype == X.dtype and want.shape == (17,)
    T = torch.from_numpy(X.copy())
    got = rule(T)  # CPU tensors go through numpy: identical arithmetic
    assert isinstance(got, torch.Tensor) and got.dtype == T.dtype and got.device == T.device
    np.testing.assert_array_equal(got.numpy(), want)
    monkeypatch.setattr(backend, "FORCE_TORCH_OPS", True)  # the accelerator code path
    got = rule(T)
    assert isinstance(got, torch.Tensor) and got.dtype == T.dtype and got.shape == (17,)
    np.testing.assert_allclose(got.numpy(), want, **tol(X.dtype))


def test_torch_low_precision_dtypes_are_kept() -> None:
    torch = pytest.importorskip("torch")
    X = view(2, 7, 10)
    for dt in (torch.float16, torch.bfloat16):
        y = R.trimmed_mean(torch.tensor(X, dtype=dt), 2)
        assert y.dtype == dt
        np.testing.assert_allclose(y.float().numpy(), ref.trimmed_mean(X, 2), atol=0.05)
    y = R.median(X.astype(np.float16))
    assert y.dtype == np.float16


def test_integer_inputs_are_promoted_to_float64() -> None:
    X = np.array([[1, 2], [3, 4], [5, 60]])
    y = R.trimmed_mean(X, 1)
    assert y.dtype == np.float64 and np.array_equal(y, [3.0, 4.0])


@pytest.mark.parametrize("name", ["trimmed-mean", "krum", "mda"])
def test_sequences_of_vectors(name: str) -> None:
    torch = pytest.importorskip("torch")
    X = view(9, 7, 5)
    rule = rule_for(name, 1)
    want = rule(X)
    np.testing.assert_array_equal(rule(list(X)), want)
    np.testing.assert_array_equal(rule(tuple(X)), want)
    got = rule([torch.from_numpy(v.copy()) for v in X])
    assert isinstance(got, torch.Tensor)
    np.testing.assert_array_equal(got.numpy(), want)
    with pytest.raises(TypeError, match="mixes torch tensors"):
        rule([torch.from_numpy(X[0].copy()), *X[1:]])
    with pytest.raises(ValueError, match="same length"):
        rule([X[0], X[1][:3], *X[2:]])


# --------------------------------------------------------------------------------------------
# batches


def random_masks(seed: int, k: int, m: int, need: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    masks = np.zeros((k, m), bool)
    for i in range(k):
        size = rng.integers(need, m + 1)
        masks[i, rng.choice(m, size, replace=False)] = True
    masks[0] = True  # the full view
    return masks


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_equals_loop(name: str, dtype: type) -> None:
    f = 1 if name in ("bulyan", "mve") else 2
    m = 11 if name != "mve" else 7
    X = view(21, m, 23, dtype, outliers=f)
    rule = rule_for(name, f)
    masks = random_masks(4, 6, m, rule.min_size())
    got = rule.batch(X, masks)
    assert got.shape == (6, 23) and got.dtype == dtype
    want = np.stack([rule(X[mk]) for mk in masks])
    np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("name", ["trimmed-mean", "median", "mean"])
@pytest.mark.parametrize("m,f,k", [(16, 5, 10), (7, 2, 30), (33, 4, 5), (5, 0, 3)])
def test_coordinate_batch_equals_loop_many_shapes(name: str, m: int, f: int, k: int) -> None:
    X = view(m + k, m, 1500, np.float32, outliers=f)
    X[:, :10] = np.round(X[:, :10])  # ties
    rule = rule_for(name, f)
    masks = random_masks(m * k, k, m, rule.min_size())
    want = np.stack([rule(X[mk]) for mk in masks])
    np.testing.assert_allclose(rule.batch(X, masks), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_batch_torch_paths(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    f = 1
    m = 9 if name != "mve" else 6
    X = view(8, m, 13, np.float32, outliers=f)
    rule = rule_for(name, f)
    masks = random_masks(9, 4, m, rule.min_size())
    want = rule.batch(X, masks)
    T = torch.from_numpy(X.copy())
    got = rule.batch(T, torch.from_numpy(masks))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), want)
    monkeypatch.setattr(backend, "FORCE_TORCH_OPS", True)
    got = rule.batch(T, masks)
    np.testing.assert_allclose(got.numpy(), want, rtol=2e-5, atol=2e-5)


def test_batch_validation() -> None:
    X = view(1, 6, 4)
    rule = R.TrimmedMean(2)
    with pytest.raises(ValueError, match=r"masks must have shape \(k, m=6\)"):
        rule.batch(X, np.ones((2, 5), bool))
    masks = np.ones((3, 6), bool)
    masks[2, :2] = False
    with pytest.raises(ValueError, match=r"trimmed_mean needs m >= 2f\+1 values, got m=4 with "
                                         r"f=2 \(batch mask row 2\)"):
        rule.batch(X, masks)
    with pytest.raises(TypeError, match="masks must be boolean"):
        rule.batch(X, np.full((1, 6), 0.5))
    assert rule.batch(X, np.ones((1, 6), int)).shape == (1, 4)
    assert rule.batch(X, np.zeros((0, 6), bool)).shape == (0, 4)


# --------------------------------------------------------------------------------------------
# preconditions and invalid input


@pytest.mark.parametrize("name", NAMES)
def test_precondition_at_the_limit(name: str) -> None:
    f = 2
    rule = rule_for(name, f)
    expr, size = MIN_SIZE[name]
    X = view(3, size, 6, outliers=min(f, size - 1) if size > 1 else 0)
    y = rule(X)  # exactly at the limit: defined
    assert y.shape == (6,) and np.isfinite(y).all()
    if size > 1:
        msg = f"{LABEL[name]} needs m >= {expr} values, got m={size - 1} with f={f}"
        with pytest.raises(ValueError, match=re.escape(msg)):
            rule(X[:-1])


def test_precondition_message_example() -> None:
    with pytest.raises(ValueError, match=re.escape(
            "trimmed_mean needs m >= 2f+1 values, got m=4 with f=2")):
        R.trimmed_mean(np.zeros((4, 3)), 2)
    with pytest.raises(ValueError, match=re.escape("krum needs m >= 2f+3 values, got m=4")):
        R.krum(np.zeros((4, 3)), 1)
    with pytest.raises(ValueError, match=re.escape("bulyan needs m >= 4f+3 values")):
        R.bulyan(np.zeros((6, 3)), 1)
    with pytest.raises(ValueError, match=re.escape("multi_krum needs m >= k values, got m=5")):
        R.multi_krum(np.zeros((5, 3)), 0, 6)


@pytest.mark.parametrize("name", NAMES)
def test_negative_or_non_integer_f(name: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{LABEL[name]} needs f >= 0, got f=-1")):
        R.make_rule(name, -1)
    with pytest.raises(TypeError, match="f must be an integer"):
        R.make_rule(name, 1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_rejected(name: str, bad: float) -> None:
    rule = rule_for(name, 1)
    m = max(rule.min_size(), 5)
    for dtype in (np.float64, np.float32):
        for pos in [(0, 0), (m - 1, 4), (m // 2, 2)]:
            X = view(2, m, 5, dtype)
            X[pos] = bad
            with pytest.raises(ValueError, match="non-finite"):
                rule(X)
            with pytest.raises(ValueError, match="non-finite"):
                rule.batch(X, np.ones((2, m), bool))


def test_non_finite_rejected_on_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(backend, "FORCE_TORCH_OPS", True)
    for name in NAMES:
        X = torch.from_numpy(view(2, 11, 5))
        X[3, 1] = float("nan")
        with pytest.raises(ValueError, match="non-finite"):
            rule_for(name, 1)(X)


@pytest.mark.parametrize("name", NAMES)
def test_bad_shapes_are_rejected(name: str) -> None:
    rule = rule_for(name, 0)
    with pytest.raises(ValueError, match=r"2-D \(m, d\)"):
        rule(np.zeros(5))
    with pytest.raises(ValueError, match=r"2-D \(m, d\)"):
        rule(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="empty view"):
        rule(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="empty view"):
        rule([])
    with pytest.raises(ValueError, match="dimension d=0"):
        rule(np.zeros((3, 0)))
    with pytest.raises(TypeError, match="expected a numpy array"):
        rule(42)
    with pytest.raises(TypeError, match="unsupported dtype"):
        rule(np.zeros((3, 2), complex))


# --------------------------------------------------------------------------------------------
# edge cases


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_identical_vectors_are_a_fixed_point(name: str, dtype: type) -> None:
    rule = rule_for(name, 2)
    m = rule.min_size() + 1
    v = view(1, 1, 9, dtype)[0]
    y = rule(np.tile(v, (m, 1)))
    np.testing.assert_allclose(y, v, rtol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_duplicated_vectors_with_outliers(name: str) -> None:
    # honest values: 6 copies of 3 distinct vectors; 2 far outliers. Output stays near them.
    f = 2
    base = view(4, 3, 8)
    X = np.vstack([base, base, [base[0] + 1e3], [base[1] - 1e3], base[2:]])[: 11]
    rule = rule_for(name, f)
    if len(X) < rule.min_size():
        X = np.vstack([X, base])
    y = rule(X)
    assert np.linalg.norm(y - base.mean(0)) < 10 if name != "mean" else True
    masks = random_masks(1, 3, len(X), rule.min_size())
    np.testing.assert_allclose(rule.batch(X, masks), np.stack([rule(X[mk]) for mk in masks]),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_one_dimensional_values(name: str) -> None:
    f = 1
    rule = rule_for(name, f)
    X = view(6, max(rule.min_size(), 7), 1, outliers=f)
    y = rule(X)
    assert y.shape == (1,)
    refs = {
        "trimmed-mean": lambda: ref.trimmed_mean(X, f),
        "median": lambda: ref.median(X),
        "mean": lambda: X.mean(0),
        "krum": lambda: ref.krum(X, f),
        "multi-krum": lambda: ref.multi_krum(X, f, len(X) - f),
        "bulyan": lambda: ref.bulyan(X, f),
        "mda": lambda: ref.mda(X, f),
        "nnm": lambda: ref.trimmed_mean(ref.nnm(X, f), f),
    }
    if name in refs:
        np.testing.assert_allclose(y, refs[name](), rtol=1e-12, atol=1e-12)
    if name == "mve":  # in 1-D the MVEE is the segment: the m-f values of least range
        S = np.sort(X[:, 0])
        q = len(S) - f
        j = int(np.argmin(S[q - 1 :] - S[: f + 1]))
        np.testing.assert_allclose(y, [(S[j] + S[j + q - 1]) / 2], rtol=1e-6)


def test_huge_values_are_rescaled_not_overflowed() -> None:
    X = view(5, 9, 4) * 1e200
    X[0] = 1e300
    for name in ("krum", "mda", "geometric-median", "multi-krum", "mve"):
        y = rule_for(name, 1)(X)
        assert np.isfinite(y).all() and not np.allclose(y, X[0]), name
    np.testing.assert_array_equal(R.krum(X, 1), ref.krum(X / 1e200, 1) * 1e200)


def test_far_outliers_keep_honest_distances_accurate() -> None:
    # honest values: a tight cluster far from the origin; a Byzantine value much farther. The
    # Gram matrix must be recentred, or float64 cancellation decides the MDA subset.
    rng = np.random.default_rng(0)
    d, m, f = 2000, 7, 1
    honest = 1e6 + 1e-3 * rng.standard_normal((m - f, d))
    X = np.vstack([honest, np.full(d, 1e13)])
    S, _ = ref.mda_subset(X - 1e6, f)  # reference in well-conditioned coordinates
    y = R.mda(X, f)
    np.testing.assert_allclose(y - 1e6, X[list(S)].mean(0) - 1e6, atol=1e-9)
    np.testing.assert_array_equal(R.krum(X, f), ref.krum(X - 1e6, f) + 1e6)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.mark.cuda
@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_numpy(name: str) -> None:
    """Every rule and its batch on CUDA tensors: the result stays on the device, with the
    input's dtype, and equals the numpy result to float tolerance."""
    import torch

    f = 1
    m = 9 if name != "mve" else 6
    X = view(21, m, 13, np.float32, outliers=f)
    rule = rule_for(name, f)
    T = torch.from_numpy(X.copy()).cuda()
    got = rule(T)
    assert got.is_cuda and got.dtype == torch.float32
    np.testing.assert_allclose(got.cpu().numpy(), rule(X), rtol=2e-5, atol=2e-5)
    masks = random_masks(22, 4, m, rule.min_size())
    got = rule.batch(T, masks)
    assert got.is_cuda
    np.testing.assert_allclose(got.cpu().numpy(), rule.batch(X, masks), rtol=2e-5, atol=2e-5)


@pytest.mark.cuda
@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA device")
def test_round_engine_on_cuda_keeps_the_device() -> None:
    import torch

    from agreement.engine import RoundEngine

    n, f = 10, 3
    x = torch.from_numpy(view(23, n - f, 50, np.float32)).cuda()
    eng = RoundEngine(n, f, "trimmed-mean", attack="alie", seed=0)
    hist, _ = eng.run(x, 5)
    assert all(h.is_cuda for h in hist)
    ranges = [float((h.max(0).values - h.min(0).values).max()) for h in hist]
    lam = f / (n - 2 * f)
    assert all(b <= lam * a + 1e-5 for a, b in itertools.pairwise(ranges))


@pytest.mark.parametrize("name", NAMES)
def test_batch_of_one_view_is_the_single_view_rule(name: str) -> None:
    """One view goes through the single-view kernel: identical to calling the rule."""
    torch = pytest.importorskip("torch")
    X = view(31, 9, 13, np.float32, outliers=1)
    mk = np.ones((1, 9), bool)
    mk[0, 4] = False
    rule = rule_for(name, 1)
    want = rule(X[mk[0]])
    got = rule.batch(X, mk)
    assert got.shape == (1, 13) and got.dtype == X.dtype
    np.testing.assert_array_equal(got[0], want)
    got_t = rule.batch(torch.from_numpy(X.copy()), torch.from_numpy(mk))
    assert isinstance(got_t, torch.Tensor) and got_t.shape == (1, 13)
    np.testing.assert_array_equal(got_t.numpy()[0], want)
