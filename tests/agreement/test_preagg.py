"""Pre-aggregation stages (ARC, NNM) composed with any rule by name (agreement.rules.preagg),
and the protocols built on them (agreement.protocol: nnm, composed names; docs/theory.md §5.5).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agreement import get_config, run
from agreement.claims import MEASURED, MEASURED_BY_NAME, evaluate
from agreement.inputs import make_inputs
from agreement.protocol import check_resilience
from agreement.rules import (
    ARC,
    NNM,
    backend,
    make_rule,
    parse_composition,
)
from agreement.rules.preagg import arc, arc_count, arc_scales, composition_name

# -- ARC --------------------------------------------------------------------------------------


def test_arc_count_is_floor_of_2_f_over_m_times_m_minus_f() -> None:
    for m in range(1, 30):
        for f in range(0, m):
            k = arc_count(m, f)
            assert k == math.floor(2 * f * (m - f) / m)
            assert 0 <= k <= m // 2
    assert arc_count(10, 3) == 4 and arc_count(7, 2) == 2 and arc_count(5, 0) == 0


def test_arc_clips_the_k_largest_to_the_k_plus_1_th_norm() -> None:
    # byzfl's documented example: f = 1, m = 3: k = 1, C = ||(4, 5, 6)||
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    y = arc(x, 1)
    np.testing.assert_allclose(y[:2], x[:2])
    np.testing.assert_allclose(y[2], x[2] * np.linalg.norm(x[1]) / np.linalg.norm(x[2]))
    np.testing.assert_allclose(y[2], [4.41004009, 5.04004582, 5.67005155], rtol=1e-8)
    # m = 10, f = 3: k = 4 vectors of norms 10, 9, 8, 7 clipped to the 5th largest, 6
    norms = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], dtype=float)
    rng = np.random.default_rng(0)
    u = rng.standard_normal((10, 4))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = u * norms[:, None]
    _, c, k = arc_scales(norms, 3)
    assert k == 4 and c == 6.0
    out = arc(v, 3)
    assert int((np.abs(out - v).max(axis=1) > 0).sum()) == 4
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.minimum(norms, 6.0))
    np.testing.assert_allclose(out / np.linalg.norm(out, axis=1)[:, None], u)  # directions kept
    assert arc(v, 0) is not v and np.array_equal(arc(v, 0), v)  # f = 0: nothing clipped


def test_arc_handles_huge_finite_values_and_rejects_nan() -> None:
    x = np.array([[1e200, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = arc(x, 1)  # k = 1: the huge one clipped to norm sqrt(2)
    np.testing.assert_allclose(np.linalg.norm(y[0]), math.sqrt(2))
    with pytest.raises(ValueError, match="non-finite"):
        make_rule("arc+mean", 1)(np.array([[np.nan, 0.0], [1.0, 1.0], [2.0, 0.0]]))


# -- composition by name ------------------------------------------------------------------------


def _manual(view: np.ndarray, f: int, stages: tuple[str, ...], rule: str) -> np.ndarray:
    """The chain by hand: each stage's output view fed to the next, then the rule."""
    from agreement.rules import nnm

    v = np.asarray(view, dtype=np.float64)
    for s in stages:
        v = arc(v, f) if s == "arc" else nnm(v, f)
    return make_rule(rule, f)(v)


@pytest.mark.parametrize("name", ["arc+nnm+trimmed-mean", "nnm+krum", "arc+median", "arc+mda",
                                  "nnm+mda", "arc+nnm+geometric-median", "arc+nnm+bulyan"])
def test_composition_equals_the_manual_chain_numpy_torch_batch(name: str) -> None:
    f = 2
    stages, last = parse_composition(name)
    rule = make_rule(name, f)
    assert composition_name(rule) == name
    rng = np.random.default_rng(1)
    m, d = 14, 5
    x = rng.standard_normal((m, d)) + 3.0
    x[:f] *= 40.0  # two far vectors: ARC clips, NNM mixes them away
    want = _manual(x, f, stages, last)
    tol = 1e-6 if last == "geometric-median" else 1e-9  # Weiszfeld stops at a relative 1e-7
    np.testing.assert_allclose(rule(x), want, rtol=tol, atol=tol)
    # torch: CPU (numpy path) and the accelerator code path forced on CPU
    t = torch.as_tensor(x)
    for force in (False, True):
        backend.FORCE_TORCH_OPS = force
        try:
            y = rule(t)
            assert isinstance(y, torch.Tensor) and y.dtype == torch.float64
            np.testing.assert_allclose(y.numpy(), want, rtol=tol, atol=tol)
            masks = np.ones((3, m), bool)
            masks[1, [3, 7]] = False
            masks[2, [0]] = False
            yb = rule.batch(t, torch.as_tensor(masks))
            for i, mk in enumerate(masks):
                np.testing.assert_allclose(yb[i].numpy(), _manual(x[mk], f, stages, last),
                                           rtol=tol, atol=tol)
        finally:
            backend.FORCE_TORCH_OPS = False
    yb = rule.batch(x, masks)
    assert isinstance(yb, np.ndarray) and yb.shape == (3, d)


def test_plus_syntax_builds_the_stage_rules_and_nnm_inner_still_works() -> None:
    assert make_rule("nnm+krum", 1) == NNM(1, inner="krum") == make_rule("nnm", 1, inner="krum")
    assert make_rule("arc+nnm+trimmed-mean", 2) == ARC(2, inner="nnm+trimmed-mean")
    assert make_rule("arc+multi-krum", 1, k=3) == ARC(1, inner="multi-krum",
                                                      inner_params={"k": 3})
    assert make_rule("nnm", 1) == NNM(1)  # nnm alone: NNM then the trimmed mean
    assert make_rule("arc+nnm+krum", 1).min_size() == 5  # krum's 2f+3
    x = np.random.default_rng(2).standard_normal((9, 3)).astype(np.float32)
    assert make_rule("arc+nnm+trimmed-mean", 2)(x).dtype == np.float32


@pytest.mark.parametrize("name, match", [
    ("", "empty rule name"),
    ("   ", "empty rule name"),
    ("arc++trimmed-mean", "empty part"),
    ("+krum", "empty part"),
    ("trimmed-mean+nnm", "is a rule, not a pre-aggregation stage"),
    ("bogus+krum", "unknown pre-aggregation stage"),
    ("arc+nnm", "ends with the pre-aggregation stage"),
    ("nnm+arc+krum", "in the order arc, nnm"),
    ("arc+arc+krum", "at most once"),
    ("nnm+bogus", "unknown rule 'bogus'"),
    ("arc", "is a pre-aggregation stage, not a rule"),
])
def test_composition_errors_name_what_to_change(name: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_rule(name, 1)


def test_stage_classes_refuse_inner_rules_in_the_wrong_place() -> None:
    with pytest.raises(ValueError, match="cannot start with 'nnm'"):
        NNM(1, inner="nnm")
    with pytest.raises(ValueError, match="cannot start with 'arc'"):
        NNM(1, inner="arc+krum")
    with pytest.raises(ValueError, match="cannot start with 'arc'"):
        ARC(1, inner="arc+krum")


# -- protocols ----------------------------------------------------------------------------------


def test_composed_protocols_get_a_config_built_on_the_fly() -> None:
    cfg = get_config("arc+nnm+trimmed-mean")
    assert (cfg.gather, cfg.rule) == ("witness", "arc+nnm+trimmed-mean")
    assert "measured, not proven" in cfg.guarantee
    assert get_config("nnm").rule == "nnm" and "measured, not proven" in get_config("nnm").guarantee
    assert get_config("ball-mda").rule == "ball-mda"
    # resilience: n >= 3f+1 and views of n-f values that fit NNM (2f+1) and the rule
    assert cfg.min_n(3) == 10 and get_config("nnm+krum").min_n(2) == 9  # krum: n-f >= 2f+3
    check_resilience("arc+nnm+trimmed-mean", 10, 3)
    with pytest.raises(ValueError, match="3f\\+1"):
        check_resilience("nnm", 9, 3)
    with pytest.raises(ValueError, match="protocol's rule"):
        get_config("nnm+geometric-median")
    with pytest.raises(ValueError, match="unknown protocol"):
        get_config("nnm-but-wrong")


def test_nnm_agrees_in_the_simulator_under_split_and_targeted() -> None:
    """The nnm protocol (witness gather, split attack, targeted scheduler) reaches agreement:
    honest views differ, the diameter shrinks over the rounds, and the one proven claim
    (proofs/nnm.md Proposition 1, the box excess) holds on every round; the composed protocol
    has no proven claim (no-claim)."""
    n, f = 10, 3
    for seed in range(2):
        x = make_inputs("gaussian", n, 2, seed)
        res = run(x, f=f, protocol="nnm", rounds=6, strategy="split", scheduler="targeted",
                  seed=seed, attack_params={"scale": 0.05})
        assert res.complete and res.faults_against_honest == 0
        assert any(len({frozenset(o) for o in rnd.values()}) > 1 for rnd in res.views)
        assert res.diameters[-1] < 0.05 * res.diameters[0], res.diameters
        verdicts = evaluate(res)
        assert set(verdicts) == {"nnm-box"} and verdicts["nnm-box"].holds, verdicts
        res = run(x, f=f, protocol="arc+nnm+trimmed-mean", rounds=2, strategy="split",
                  scheduler="targeted", seed=seed, attack_params={"scale": 0.05})
        assert res.complete and set(evaluate(res)) == {"no-claim"}


def test_composed_protocol_runs_at_both_engine_levels() -> None:
    x = make_inputs("gaussian", 7, 3, 0)
    for engine in ("message", "round"):
        res = run(x, f=2, protocol="arc+nnm+trimmed-mean", rounds=3, strategy="sign-flip-mean",
                  seed=0, engine=engine)
        assert res.complete and res.diameters[-1] <= res.diameters[0]


def test_measured_constants_are_what_verify_reports() -> None:
    """MEASURED (claims table) is the worst round of ``python -m proofs verify``: replay the
    nnm contraction row at (7, 1, 1) with the seed verify gives it."""
    from proofs.verify import PROTOCOLS, check_claim, jobs

    for c, (n, f, d), i in jobs(PROTOCOLS):
        if c.name == "nnm-contraction" and (n, f, d) == (7, 1, 1):
            row = check_claim(c, n, f, d, seed=i)
            break
    else:  # pragma: no cover
        raise AssertionError("no nnm-contraction row at (7, 1, 1)")
    assert row.status == "no-claim" and row.worst == MEASURED[("nnm-contraction", 7, 1, 1)]
    assert row.kind == "measured"
    assert "measured, not proven" in MEASURED_BY_NAME["nnm-contraction"].statement
    assert all(MEASURED_BY_NAME[k[0]].bound_at(*k[1:])[0] is None for k in MEASURED)


def test_nnm_then_tm_stays_within_f_over_n_minus_2f_of_the_honest_box() -> None:
    """proofs/nnm.md Proposition 1 on random rounds with far and near Byzantine values."""
    rng = np.random.default_rng(5)
    for n, f, d in ((7, 2, 2), (10, 3, 3), (13, 4, 1)):
        rule = make_rule("nnm", f)
        eps = f / (n - 2 * f)
        for _ in range(60):
            h = n - f
            x = rng.standard_normal((h, d))
            b = x[rng.integers(h, size=f)] + rng.choice([0.5, 3.0, 50.0]) * \
                rng.standard_normal((f, d))
            vals = np.concatenate([x, b])
            m = int(rng.integers(n - f, n + 1))
            keep = rng.permutation(n)[:m]
            mask = np.zeros(n, bool)
            mask[keep] = True
            y = rule(vals[mask])
            diam = max(np.linalg.norm(p - q) for p in x for q in x)
            lo, hi = x.min(axis=0), x.max(axis=0)
            assert (y >= lo - eps * diam - 1e-12).all() and (y <= hi + eps * diam + 1e-12).all()


def test_learn_collaborative_sgd_and_proven_rounds() -> None:
    from learning.learn import check_proven
    from learning.optim import CollaborativeSGD, InProcessNetwork

    with pytest.raises(ValueError, match='rounds="proven" needs a proven contraction'):
        check_proven("arc+nnm+trimmed-mean")
    with pytest.raises(ValueError, match="proven contraction"):
        CollaborativeSGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1,
                         node=InProcessNetwork(4).endpoint(0), f=1, protocol="nnm")
    opt = CollaborativeSGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1,
                           node=InProcessNetwork(4).endpoint(0), f=1,
                           protocol="arc+nnm+trimmed-mean", rounds="log")
    assert opt.node.protocol == "arc+nnm+trimmed-mean"


def test_server_baseline_with_arc_nnm_tm_beats_plain_tm_under_sign_flip() -> None:
    """Trusted server, digits, n = 10, f = 3, sign-flip, 100 steps: ARC + NNM + TM ends with a
    higher honest accuracy than TM alone (0.875 vs 0.780 at seed 0)."""
    from learning.learn import TrainConfig, train

    acc = {}
    for p in ("trimmed-mean", "arc+nnm+trimmed-mean"):
        cfg = TrainConfig(method="server", protocol=p, dataset="digits", n=10, f=3,
                          attack="sign-flip", steps=100, seed=0, hidden=16)
        acc[p] = train(cfg).accuracy_mean
    assert acc["arc+nnm+trimmed-mean"] > acc["trimmed-mean"] + 0.03, acc
