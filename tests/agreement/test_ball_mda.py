"""Ball MDA (agreement/rules/ball.py; proofs/ball_mda.md): the rule against a brute-force
reference, its diameter guarantee, its backends, and its constants on runs and searches."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from agreement import constants as K
from agreement import run
from agreement.claims import measure_run
from agreement.inputs import make_inputs
from agreement.rules import backend, make_rule, mda_subset
from agreement.rules.ball import ball_mda, ball_selection
from proofs.constructions import ball_mda_round
from proofs.search import Candidate, Evaluator, check_candidate, search


def _brute(x: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Ball MDA by its definition: every i, its sorted distances, the least radius (lowest i
    on ties), the m-f nearest (itself first, then by distance, ties by index)."""
    m = len(x)
    q = m - f
    dist = [[float(np.linalg.norm(x[i] - x[j])) for j in range(m)] for i in range(m)]
    radii = [sorted(row)[q - 1] for row in dist]
    i = min(range(m), key=lambda k: (radii[k], k))
    near = sorted(range(m), key=lambda j: (dist[i][j], j != i, j))[:q]
    return x[sorted(near)].mean(axis=0), np.array(sorted(near))


def _diam(x: np.ndarray) -> float:
    return max((float(np.linalg.norm(a - b)) for a, b in itertools.combinations(x, 2)),
               default=0.0)


@pytest.mark.parametrize("seed", range(12))
def test_matches_the_brute_force_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, d = int(rng.integers(3, 10)), int(rng.integers(1, 5))
    f = int(rng.integers(0, (m - 1) // 2 + 1))
    x = rng.normal(size=(m, d))
    if seed % 3 == 0:  # integer grids: exact ties in radii and distances
        x = np.round(x * 2)
    want, S = _brute(x, f)
    np.testing.assert_allclose(ball_mda(x, f), want, rtol=1e-12, atol=1e-12)
    D = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(ball_selection(D, f)[1], S)


def _adversarial(rng: np.random.Generator, m: int, f: int, d: int) -> tuple[np.ndarray, int]:
    """m-f honest points in a unit cluster, f Byzantine values placed to be picked up: on the
    cluster's rim, stacked, or far away."""
    h = m - f
    x = rng.normal(size=(h, d))
    x /= max(_diam(x), 1e-12)
    kind = rng.integers(3)
    if kind == 0:
        b = x[rng.integers(h)] + rng.normal(size=(f, d)) * 0.9
    elif kind == 1:
        b = np.repeat(x[:1] + 0.95 * rng.normal(size=(1, d)), f, axis=0)
    else:
        b = rng.normal(size=(f, d)) * 50
    return np.concatenate([x, b]), h


@pytest.mark.parametrize("seed", range(30))
def test_chosen_set_within_twice_the_mda_diameter_and_the_honest_one(seed: int) -> None:
    """proofs/ball_mda.md Lemma 1: diam(S) <= 2·r_{i*} <= 2·diam(S_MDA) <= 2·Δ2(honest)."""
    rng = np.random.default_rng(seed)
    f = int(rng.integers(1, 4))
    m, d = 2 * f + 1 + int(rng.integers(0, 6)), int(rng.integers(1, 6))
    if seed % 2:
        x, h = _adversarial(rng, m, f, d)
    else:
        x, h = rng.normal(size=(m, d)), m - f
    D = ((x[:, None] - x[None]) ** 2).sum(-1)
    _, S, r2 = ball_selection(D, f)
    S_mda, dstar2 = mda_subset(D, f)
    tol = 1e-9 * (1 + math.sqrt(D.max()))
    assert _diam(x[S]) <= 2 * math.sqrt(r2) + tol
    assert math.sqrt(r2) <= math.sqrt(dstar2) + tol
    assert _diam(x[S]) <= 2 * _diam(x[S_mda]) + tol
    assert _diam(x[S]) <= 2 * _diam(x[:h]) + tol  # the first h rows are honest
    assert sum(1 for j in S if j < h) >= m - 2 * f  # the chosen set holds an honest value


def test_numpy_torch_and_batch_agree() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(13, 40))
    rule = make_rule("ball-mda", 3)
    masks = np.ones((4, 13), bool)
    masks[1, :2] = False
    masks[2, [4, 7, 11]] = False
    masks[3, 12] = False
    want = np.stack([rule(x[mk]) for mk in masks])
    np.testing.assert_allclose(rule.batch(x, masks), want, rtol=1e-12, atol=1e-12)
    xt = torch.from_numpy(x)
    got = rule.batch(xt, torch.from_numpy(masks))
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rule(xt).numpy(), want[0], rtol=1e-12, atol=1e-12)
    old = backend.FORCE_TORCH_OPS
    try:
        backend.FORCE_TORCH_OPS = True
        np.testing.assert_allclose(rule(xt).numpy(), want[0], rtol=1e-10, atol=1e-10)
    finally:
        backend.FORCE_TORCH_OPS = old
    x32 = x.astype(np.float32)
    assert rule(x32).dtype == np.float32


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="2f"):
        make_rule("ball-mda", 2)(np.zeros((4, 3)))
    bad = np.zeros((7, 2))
    bad[3, 1] = np.nan
    with pytest.raises(ValueError):
        make_rule("ball-mda", 1)(bad)


def _kappa_b_brute(n: int, f: int) -> float:
    """proofs/ball_mda.md Theorem 1's bound by its definition: the max over the common size
    c, the extra sizes e1 + e2 <= n - c and the Byzantine counts b (in the common part) and
    β1 + β2 <= f - b (outside it), with p = c - 2f and s_i = c - f + e_i."""
    best = 0.0
    for c in range(n - f, n + 1):
        p = c - 2 * f
        for e1 in range(n - c + 1):
            for e2 in range(n - c - e1 + 1):
                for b in range(f + 1):
                    for b1 in range(f - b + 1):
                        for b2 in range(f - b - b1 + 1):
                            v = sum(((f + e) * (1 + b / p) + bi * (1 - b / p)) / (c - f + e)
                                    for e, bi in ((e1, b1), (e2, b2)))
                            best = max(best, v)
    return best


def test_kappa_ball_is_its_definition_and_below_2kappa() -> None:
    for f in range(1, 5):
        for n in range(3 * f + 1, 8 * f + 3):
            two_kappa = 2 * K.mda_contraction(n, f) if n >= K.mda_min_n(f) else math.inf
            kb = _kappa_b_brute(n, f)
            want = min(kb, two_kappa)
            if K.resilient("ball-mda", n, f):
                assert K.ball_mda_contraction(n, f) == pytest.approx(want, rel=1e-12)
                assert kb < two_kappa  # the sharper bound is the one in force
            else:
                assert want >= 1 or n < 3 * f + 1
    assert K.ball_mda_contraction(16, 2) == pytest.approx(13 / 21)  # 2κ(16,2) = 12/13


def test_constants_region_and_dimension_free() -> None:
    assert [K.ball_mda_min_n(f) for f in range(5)] == [1, 6, 12, 17, 23]
    for f in range(1, 9):
        least = K.ball_mda_min_n(f)
        assert K.min_n("ball-mda", f) == least
        for n in range(3 * f + 1, least + 3 * f):  # the region is upward closed
            assert K.resilient("ball-mda", n, f) == (n >= least), (n, f)
        assert 5.5 * f < least <= 6 * f  # MDA's exact region: about 4.6f
    assert K.ball_mda_bias(16, 2) == pytest.approx(4 / 12 + 4 / 14)
    c = K.ball_mda_averaging_constant(64, 4)
    assert c == pytest.approx(K.ball_mda_bias(64, 4) / (1 - K.ball_mda_contraction(64, 4)))
    assert c == pytest.approx(0.3818, abs=1e-4)
    assert K.averaging_constant("ball-mda", 64, 4, 1) == K.averaging_constant(
        "ball-mda", 64, 4, 100_000) == c  # dimension-free
    assert K.contraction("ball-mda", 16, 2, 7) == K.ball_mda_contraction(16, 2)
    with pytest.raises(ValueError, match=r"κ_ball\(11,2\).*smallest n for f=2 is 12"):
        K.ball_mda_contraction(11, 2)
    # rounds="proven": the least T with κ_ball^T·D <= δ
    lam = K.ball_mda_contraction(16, 2)
    for k in (1, 5, 10):
        t = K.rounds_for_target("ball-mda", 16, 2, 9, 2.0**-k, 1.0)
        assert lam**t <= 2.0**-k and (t == 1 or lam ** (t - 1) > 2.0**-k)


def test_runs_at_16_2_contract_within_kappa_ball_under_split_and_targeted() -> None:
    """The ball-mda protocol in the simulator (witness gather, split attack, targeted
    scheduler): honest views differ and every round is within κ_ball(16,2) = 13/21; the
    round check is not vacuous (the same history fails a bound below what it reached)."""
    n, f = 16, 2
    bound = K.ball_mda_contraction(n, f)
    worst, hist = 0.0, None
    for seed in range(3):
        x = make_inputs("gaussian", n, 2, seed)
        res = run(x, f=f, protocol="ball-mda", rounds=3, strategy="split",
                  scheduler="targeted", seed=seed, attack_params={"scale": 0.05})
        assert res.complete and res.faults_against_honest == 0
        assert any(len({frozenset(o) for o in rnd.values()}) > 1 for rnd in res.views)
        d = res.diameters
        for r in range(res.rounds):
            assert d[r + 1] <= bound * d[r] + 1e-12 * max(1.0, d[0]), (seed, r, d)
            if d[r] > 0 and d[r + 1] / d[r] > worst:
                worst, hist = d[r + 1] / d[r], res.history
    assert worst > 0
    from agreement.claims import BY_NAME

    claim = BY_NAME["ball-mda-contraction"]
    assert measure_run(claim, bound, hist).holds
    assert not measure_run(claim, worst / 2, hist).holds


def _construction(n: int, f: int, d: int) -> Candidate:
    """proofs/ball_mda.md Proposition 4's round (:func:`proofs.constructions.ball_mda_round`)."""
    return ball_mda_round(n, f, d)


@pytest.mark.parametrize(("n", "f", "d"), [(12, 2, 1), (16, 2, 4), (17, 3, 2), (64, 4, 3)])
def test_kappa_alone_is_wrong_for_ball_mda(n: int, f: int, d: int) -> None:
    """The construction's round exceeds MDA's κ and β for f >= 2 (a claim with MDA's
    constants would be violated) and stays within κ_ball and ball-MDA's β: its value is
    (2f-1)/(n-2f) + 2f/(n-f) up to ε."""
    c = _construction(n, f, d)
    check_candidate(c, n, f)
    want = (2 * f - 1) / (n - 2 * f) + 2 * f / (n - f)
    got = Evaluator("ball-mda", n, f, "l2-contraction")(c)
    bias = Evaluator("ball-mda", n, f, "bias")(Candidate(c.x, c.b, c.v1, c.v1.copy()))
    for v in (got, bias):
        assert v == pytest.approx(want, abs=5e-3)
        assert K.mda_contraction(n, f) < v <= K.ball_mda_contraction(n, f)
        assert K.mda_bias(n, f) < v <= K.ball_mda_bias(n, f)


def test_the_search_respects_kappa_ball_and_passes_mda_kappa() -> None:
    """At (16, 2, 4) the worst-case search finds ball-MDA rounds above MDA's κ and β, and
    none above the proven κ_ball and β."""
    n, f, d = 16, 2, 4
    res = search("ball-mda", n, f, d, "l2-contraction", 6000, seed=0)
    check_candidate(res.candidate, n, f)
    assert K.mda_contraction(n, f) < res.worst <= K.ball_mda_contraction(n, f)
    res = search("ball-mda", n, f, d, "bias", 6000, seed=0)
    check_candidate(res.candidate, n, f)
    assert K.mda_bias(n, f) < res.worst <= K.ball_mda_bias(n, f)
