"""Resilience = where the proven contraction is below 1, one rule for every protocol:
MDA runs at n = 10, f = 2 (κ = 6/7) and contracts there under attack; (9, 2) is refused with
κ and the smallest n; every protocol's refusal or acceptance matches the function; the round
counts for a target are the least that the proven constants guarantee."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from agreement import AveragingAgreement, constants, run
from agreement.inputs import make_inputs
from agreement.protocol import CONFIGS, check_resilience, get_config
from agreement.rules import make_rule


def _kappa_brute(n: int, f: int) -> float:
    """κ(n,f) of proofs/mda.md Theorem 1 as its definition: the max over e1 + e2 <= f."""
    return max((f + e1) / (n - 2 * f + e1) + (f + e2) / (n - 2 * f + e2)
               for e1 in range(f + 1) for e2 in range(f + 1 - e1))


def test_mda_region_is_kappa_below_one() -> None:
    assert [constants.mda_min_n(f) for f in range(0, 4)] == [1, 5, 10, 14]
    for f in range(1, 11):
        least = constants.mda_min_n(f)
        assert _kappa_brute(least - 1, f) >= 1 or least - 1 < 3 * f + 1
        for n in range(3 * f + 1, least + 3 * f):
            k = _kappa_brute(n, f)
            assert constants.resilient("mda", n, f) == (k < 1) == (n >= least)
            if k < 1:
                assert constants.mda_contraction(n, f) == pytest.approx(k, rel=1e-12)
                assert constants.mda_averaging_constant(n, f) < math.inf
        # about 4.5f-4.7f: κ < 1 iff n > 4.5f for even f
        assert 4.5 * f < least <= 5 * f


def test_mda_at_10_2_runs_and_contracts_under_targeted_split() -> None:
    n, f, kappa = 10, 2, constants.mda_contraction(10, 2)
    assert kappa == pytest.approx(6 / 7)
    worst = 0.0
    for seed in range(4):
        x = make_inputs("gaussian", n, 2, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no unsafe, no warning
            res = run(x, f=f, protocol="mda", rounds=4, strategy="split",
                      scheduler="targeted", seed=seed, attack_params={"scale": 0.05})
        assert res.complete and res.faults_against_honest == 0
        # the honest views actually differed: two honest nodes, different origin sets
        assert any(len({frozenset(o) for o in rnd.values()}) > 1 for rnd in res.views)
        d = res.diameters
        for r in range(res.rounds):
            assert d[r + 1] <= kappa * d[r] + 1e-12 * max(1.0, d[0]), (seed, r, d)
            if d[r] > 0:
                worst = max(worst, d[r + 1] / d[r])
    assert worst > 0  # not a trivial run: the honest outputs did not all coincide


def test_mda_at_10_2_contracts_when_honest_members_of_views_differ() -> None:
    """Round level, adversarial views: views that differ in honest members too (the case
    ``e1, e2`` of proofs/mda.md Theorem 1 bounds), each round within κ."""
    n, f, kappa = 10, 2, constants.mda_contraction(10, 2)
    honest = set(range(f, n))
    for seed in range(4):
        x = make_inputs("gaussian", n, 2, seed)
        res = run(x, f=f, protocol="mda", rounds=3, strategy="split", engine="round",
                  views="omniscient", seed=seed, attack_params={"scale": 0.05})
        assert any(len({frozenset(set(o) & honest) for o in rnd.values()}) > 1
                   for rnd in res.views)
        d = res.diameters
        for r in range(res.rounds):
            assert d[r + 1] <= kappa * d[r] + 1e-12 * max(1.0, d[0])


def test_mda_at_9_2_is_refused_naming_kappa_and_10() -> None:
    x = np.zeros(3)
    with pytest.raises(ValueError, match=r"κ\(9,2\) = 1\.0000.*smallest n for f=2 is 10") as e:
        AveragingAgreement(0, 9, 2, x, protocol="mda", rounds=2)
    assert "unsafe=True" in str(e.value)
    with pytest.raises(ValueError, match="κ"):
        run(make_inputs("gaussian", 9, 2, 0), f=2, protocol="mda", rounds=2)
    with pytest.raises(ValueError, match="κ"):
        run(make_inputs("gaussian", 9, 2, 0), f=2, protocol="mda", rounds=2, engine="round")
    with pytest.warns(RuntimeWarning, match="unsafe"):
        AveragingAgreement(0, 9, 2, x, protocol="mda", rounds=2, unsafe=True)
    with pytest.raises(ValueError, match="κ"):
        constants.mda_contraction(9, 2)


def _accepts(protocol: str, n: int, f: int) -> bool:
    try:
        check_resilience(protocol, n, f)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("protocol", sorted(CONFIGS))
def test_every_protocol_matches_the_one_rule(protocol: str) -> None:
    cfg = get_config(protocol)
    for f in range(0, 5):
        need = make_rule(cfg.rule, f).min_size() + f  # views of n-f values for the rule
        least = cfg.min_n(f)
        assert least == max(constants.min_n(protocol, f), need)
        for n in range(f + 1, least + 6):
            expect = constants.resilient(protocol, n, f) and n >= need
            assert _accepts(protocol, n, f) == expect == (n >= least), (protocol, n, f)
            if not expect:
                with pytest.raises(ValueError, match=f"smallest n for f={f} is {least}"):
                    check_resilience(protocol, n, f)
                with pytest.warns(RuntimeWarning):
                    check_resilience(protocol, n, f, unsafe=True)
    k = constants.resilience_factor(protocol, 10, 3)
    if protocol == "trimmed-mean":
        assert k == pytest.approx(3 / 4)
    elif protocol in ("mda", "mve"):
        assert k == pytest.approx(_kappa_brute(10, 3))  # computed, and >= 1 there
    elif protocol == "ball-mda":
        assert k == pytest.approx(3.2667, abs=1e-4)  # κ_ball(10,3): >= 1, no resilience there
    else:
        assert k is None  # a baseline: no proven contraction, no claim
    assert cfg.resilience_text


@pytest.mark.parametrize(("protocol", "n", "f", "d"), [
    ("trimmed-mean", 4, 1, 1), ("trimmed-mean", 4, 1, 50), ("trimmed-mean", 7, 2, 3),
    ("trimmed-mean", 10, 3, 4810), ("trimmed-mean", 10, 1, 100), ("mda", 5, 1, 3),
    ("mda", 10, 2, 7), ("mda", 13, 2, 1), ("mda", 14, 3, 2),
])
def test_rounds_for_target_is_the_least_proven_count(protocol, n, f, d) -> None:
    """``rounds_for_target`` is the least T >= 1 with ``scale·c^T·D <= δ``: trimmed-mean
    ``scale = min(√d, √(n-1))``, ``c = λ``; mda ``scale = 1``, ``c = κ``."""
    if protocol == "trimmed-mean":
        c, scale = constants.tm_contraction(n, f), min(math.sqrt(d), math.sqrt(n - 1))
    else:
        c, scale = constants.mda_contraction(n, f), 1.0
    for k in range(1, 12):
        for D in (1.0, 3.7):
            delta = 2.0**-k
            t = constants.rounds_for_target(protocol, n, f, d, delta=delta, input_diameter=D)
            assert t >= 1 and scale * c**t * D <= delta * (1 + 1e-12)
            if t > 1:
                assert scale * c ** (t - 1) * D > delta * (1 - 1e-12)
    # exact boundaries: λ = 1/2, d = 1 (scale 1): T = k exactly, never k + 1 from rounding
    assert [constants.rounds_for_target("trimmed-mean", 4, 1, 1, 2.0**-k, 1.0)
            for k in range(1, 40)] == list(range(1, 40))
    assert constants.tm_rounds(10, 3, 4810, 6) == 19  # the closed form, same count
    assert constants.rounds_for_target("trimmed-mean", 10, 3, 4810, 2.0**-6, 1.0) == 19
