"""The claims table (agreement.claims): one source of truth for the proven bounds, one
evaluator with one tolerance rule, explicit verdicts (holds / violated / no-claim), and the
CLI's "within bound" fields derived from it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from agreement import CONFIGS, cli, run
from agreement import claims as T
from agreement.inputs import make_inputs


def test_every_claim_names_a_proof_and_a_known_measure():
    assert len({c.name for c in T.CLAIMS}) == len(T.CLAIMS)
    for c in T.CLAIMS:
        assert c.measure in T.MEASURES and c.protocol in CONFIGS
        assert ".md" in c.proof and c.statement
        for n, f, d in c.configs:
            bound, why = c.bound_at(n, f, d)
            assert (bound is None) == bool(why)
    # the proven protocols and the baselines
    assert set(T.PROTOCOLS) == {"trimmed-mean", "mda", "mve", "ball-mda", "nnm"}


def test_bounds_come_from_the_constants_and_refuse_below_resilience():
    from agreement import constants as K

    assert T.BY_NAME["mda-contraction"].bound_at(13, 2, 4) == (K.mda_contraction(13, 2), "")
    assert T.BY_NAME["tm-averaging"].bound_at(7, 2, 3)[0] == K.tm_averaging_constant(7, 2, 3)
    for c in T.CLAIMS:  # n = 3f: below every protocol's resilience
        bound, why = c.bound_at(3, 1, 1)
        assert bound is None and why
    bound, why = T.BY_NAME["mve-bias"].bound_at(7, 1, 2)
    assert bound is None and "no finite bound" in why


def test_one_tolerance_rule():
    # a few ulps of the dtype at the values' scale, plus a relative 1e-9 on the bound
    assert T.slack(np.array([1e6, -2e6])) == pytest.approx(64 * np.finfo(float).eps * 2e6)
    assert T.slack(np.array([1.0], dtype=np.float32)) == pytest.approx(
        64 * float(np.finfo(np.float32).eps))
    assert T.within(0.5 + 4e-10, 0.5, 1.0, 0.0)
    assert not T.within(0.5 + 1e-9, 0.5, 1.0, 0.0)
    assert T.within(1e-14, 0.0, 1.0, T.slack(np.array([1.0])))
    assert not T.within(1e-13, 0.0, 1.0, T.slack(np.array([1.0])))


def test_judge():
    assert T.judge(0.5, 0.6) == "holds"
    assert T.judge(0.61, 0.6) == "violated"
    assert T.judge(0.5, 0.6, best_known=0.58) == "search-too-short"
    assert T.judge(0.53, 0.6, best_known=0.58) == "holds"
    assert T.judge(700.0, None, best_known=624.5) == "no-claim"
    assert T.judge(0.2, None, best_known=624.5) == "search-too-short"
    assert T.judge(0.61, 0.6, best_known=0.7) == "violated"  # violated wins


@pytest.mark.parametrize("protocol", sorted(CONFIGS))
def test_evaluate_is_never_empty(protocol):
    for d in (1, 2):
        x = make_inputs("clusters", 13, d, 1)
        res = run(x, f=2, protocol=protocol, rounds=3, strategy="omniscient", engine="round",
                  seed=1)
        verdicts = T.evaluate(res)
        assert verdicts
        assert all(v.status in T.STATUSES and v.status != "search-too-short"
                   for v in verdicts.values())
        if protocol in T.PROTOCOLS and (protocol != "mve" or d == 1):
            assert all(v.status == "holds" for v in verdicts.values()), verdicts
            assert set(verdicts) == {c.name for c in T.claims_for(protocol)
                                     if c.bound_at(13, 2, d)[0] is not None}
        else:  # baselines; MVE's ellipsoid centre in d >= 2
            assert list(verdicts) == ["no-claim"] and protocol in verdicts["no-claim"].where


def test_a_tampered_run_is_violated_and_a_float32_run_holds():
    x = make_inputs("gaussian", 7, 3, 2)
    res = run(x, f=2, protocol="trimmed-mean", rounds=3, strategy="split", seed=2,
              engine="round")
    res.history[2] = 3 * res.history[1]  # ranges tripled, outside the honest box
    v = T.evaluate(res)
    assert v["tm-contraction"].status == "violated" and not v["tm-contraction"].holds
    assert "round 1" in v["tm-contraction"].where  # range after round 2 vs round 1
    assert v["tm-validity"].status == "violated"
    r32 = run(x.astype(np.float32), f=2, protocol="trimmed-mean", rounds=3,
              strategy="split", seed=2, engine="round")
    assert all(v.holds for v in T.evaluate(r32).values())


def test_role_status_for_the_cli_fields():
    v = {"mda-contraction": T.Verdict("mda-contraction", 0.6, 0.3, "holds"),
         "mda-averaging": T.Verdict("mda-averaging", 1.4, 2.0, "violated")}
    assert T.role_status(v, "contraction") is True
    assert T.role_status(v, "averaging") is False
    assert T.role_status(T.no_claim("median", "none"), "contraction") is None


@pytest.mark.parametrize("protocol,n,f,within", [("mda", 13, 2, True), ("median", 7, 2, None)])
def test_cli_reports_the_verdicts_of_the_table(capsys, protocol, n, f, within):
    rc = cli.main(["simulate", "--protocol", protocol, "--n", str(n), "--f", str(f),
                   "--dim", "3", "--rounds", "3", "--engine", "round", "--json"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["verdicts"]
    assert rep["contraction_within_bound"] is within
    assert rep["averaging_within_bound"] is within
    if within is None:
        assert rep["verdicts"]["no-claim"]["status"] == "no-claim"
        assert rep["verdicts"]["no-claim"]["bound"] is None
    else:
        assert rep["verdicts"]["mda-contraction"]["status"] == "holds"
        assert math.isclose(rep["verdicts"]["mda-contraction"]["bound"], 0.6)
