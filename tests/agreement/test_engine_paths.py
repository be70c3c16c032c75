"""The round engine's fast paths give the plain path's results bit for bit.

:class:`agreement.engine.RoundEngine` skips work on its direct path (random views with a
callable or silent attack): no copy of the honest rows when no Byzantine row enters, no
boolean gather when every Byzantine row is valid, the validity flags of a CPU block judged on
its numpy view, no view draws when every view is forced (``h = n - f`` without Byzantine rows),
one rule call without ``np.unique`` when every honest node has the same view. Each must give
the same honest outputs, views and row ids as the plain form (tests/agreement/
engine_reference.py) in every round, for every rule, gather, view chooser, attack form
(name, value-attack function, per-receiver function, learning hook), value form (numpy,
torch) and dtype.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agreement.engine import RoundEngine, valid_flags, valid_rows
from agreement.rules import make_rule
from learning.attacks import AttackHook

from .engine_reference import ReferenceEngine

D = 24


def _noisy(honest, f, rng):
    """A value attack that draws from the engine's generator and sometimes sends NaN."""
    v = honest.mean(axis=0) + rng.standard_normal((f, honest.shape[1]))
    v[rng.random(f) < 0.3] = np.nan
    return v


def _equivocate(honest, f, rng):
    return np.repeat((honest + 0.5)[:, None, :], f, axis=1)


_equivocate.per_receiver = True  # type: ignore[attr-defined]

HOOKS = ("alie", "mimic", "nan", "tailored", "optimal-alie")
ATTACKS = ("silent", "alie", "split", "nan", "outlier", "omniscient", _noisy, _equivocate,
           *(f"hook:{a}" for a in HOOKS))


def _attack(spec, n, f, seed):
    if isinstance(spec, str) and spec.startswith("hook:"):
        gen = torch.Generator()
        gen.manual_seed(seed)
        hook = AttackHook(spec[5:], n, f, gen)
        hook.rule = make_rule("trimmed-mean", f)
        return hook
    return spec


def _trace(cls, n, f, byz, rule, gather, views, spec, x, seed, rounds=3):
    b = f if byz is None else len(byz)
    attack = _attack(spec, n, f, seed)
    eng = cls(n, f, rule, gather=gather, attack=attack, views=views, byzantine_ids=byz,
              seed=seed)
    own = torch.linspace(-1, 1, b * D, dtype=torch.float64).reshape(b, D)
    out = []
    for _ in range(rounds):
        if isinstance(attack, AttackHook):
            attack.own = own.to(x.dtype) if torch.is_tensor(x) else None
        x, plan = eng.step(x)
        host = x.numpy() if torch.is_tensor(x) else x
        out.append((host.dtype.str, host.tobytes(), plan.masks.tobytes(),
                    plan.node_of_row.tobytes()))
    return out


def _run(cls, *args):
    try:
        return _trace(cls, *args)
    except (ValueError, TypeError) as exc:  # the same refusal on both paths
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("n,f,byz", [(10, 3, None), (7, 2, [1]), (10, 3, []), (13, 4, [0, 5, 9])])
@pytest.mark.parametrize("rule", ["trimmed-mean", "median", "mda", "mean"])
def test_fast_paths_equal_the_plain_path_bit_for_bit(n, f, byz, rule) -> None:
    cases = 0
    for gather in ("witness", "first-quorum"):
        for views in ("random", "omniscient"):
            for spec in ATTACKS:
                for form in ("np32", "t32", "t64"):
                    hook = isinstance(spec, str) and spec.startswith("hook:")
                    if hook and form.startswith("np") and views == "random":
                        continue  # hooks take torch values on the direct path
                    seed = cases % 5
                    rng = np.random.default_rng(seed)
                    h = n - (f if byz is None else len(byz))
                    x = rng.standard_normal((h, D)).astype(
                        np.float32 if form.endswith("32") else np.float64)
                    xs = torch.from_numpy(x) if form.startswith("t") else x
                    args = (n, f, byz, rule, gather, views, spec, xs, seed)
                    assert _run(RoundEngine, *args) == _run(ReferenceEngine, *args), args
                    cases += 1
    assert cases > 100


def test_valid_flags_are_valid_rows_on_the_host() -> None:
    rows = np.array([[1.0, 2.0], [np.nan, 0.0], [np.inf, 1.0], [3.0, -np.inf], [1e300, 1e300]])
    for dt in (np.float32, np.float64):
        with np.errstate(over="ignore"):
            block = rows.astype(dt)
        want = np.asarray(valid_rows(block))
        assert valid_flags(block).tolist() == want.tolist()
        t = torch.from_numpy(block)
        assert valid_flags(t).tolist() == valid_rows(t).cpu().numpy().tolist() == want.tolist()
        assert valid_flags(t[:0]).shape == (0,)


def test_silent_rounds_share_one_rule_call_and_keep_a_fresh_output() -> None:
    x = torch.randn(7, D)
    eng = RoundEngine(10, 3, "trimmed-mean", attack="silent", seed=0)
    y, plan = eng.step(x)
    assert plan.masks.all() and y.shape == (7, D) and y.is_contiguous()
    y[0] += 1  # the rows are not views of one another
    assert not torch.equal(y[0], y[1])


@pytest.mark.parametrize("strategy", ["split", "alie", "silent", "tailored", "nan"])
def test_round_level_run_equals_the_reference_engine(strategy) -> None:
    from agreement import run
    from agreement.inputs import make_inputs

    x = make_inputs("gaussian", 13, 30, 1).astype(np.float32)
    res = run(x, f=4, rounds=4, engine="round", strategy=strategy, views="random", seed=3)
    honest = list(range(4, 13))
    eng = ReferenceEngine(13, 4, "trimmed-mean", attack=strategy, views="random", seed=3,
                          byzantine_ids=[0, 1, 2, 3])
    hist, plans = eng.run(x[honest], 4)
    assert np.stack(hist).tobytes() == res.history.tobytes()
    assert res.views == [
        {honest[j]: tuple(int(p.node_of_row[k]) for k in np.flatnonzero(p.masks[j]))
         for j in range(len(honest))} for p in plans]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("f", [0, 1, 4])
def test_split_values_are_the_repeated_extremes(dtype, f) -> None:
    """``split`` writes its (2, f, d) block once: the same array as stacking the repeated
    low and high vectors."""
    from agreement.attacks import split, split_sides

    x = np.random.default_rng(f).standard_normal((9, 17)).astype(dtype)
    _, u = split_sides(x)
    proj = x @ u
    width = float(proj.max() - proj.min())
    low = x[int(np.argmin(proj))] - 0.5 * width * u
    high = x[int(np.argmax(proj))] + 0.5 * width * u
    want = np.stack([np.repeat(low[None], f, 0), np.repeat(high[None], f, 0)])
    got = split(x, f, np.random.default_rng(0))
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()
