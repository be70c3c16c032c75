"""Kardam: the filters (Lipschitz, frequency), staleness dampening, the sans-IO protocols in
netsim's simulator (hostile input, replay, convergence) and ``--method kardam`` /
``async-sgd`` in the harness (docs/systems/kardam.md)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from learning.cli import main
from learning.learn import TrainConfig, train
from learning.protocols.kardam import (
    GRADIENT,
    MODEL,
    SERVER,
    GradientAttack,
    KardamFilter,
    ServerState,
    dampening,
    simulate_kardam,
)
from netsim.adversary import make_strategy
from netsim.messages import Send
from netsim.sim.adversary import CoreStrategy
from netsim.sim.schedulers import HeavyTail, Reorder

TARGET = np.linspace(-1.0, 1.0, 6)


def oracle(x: np.ndarray, version: int, worker: int) -> np.ndarray:
    """A noisy gradient of ½||x - TARGET||², seeded by (worker, version): pure."""
    rng = np.random.default_rng([worker, version])
    return (x - TARGET) + 0.1 * rng.standard_normal(x.shape)


def _norm(v: np.ndarray) -> float:
    return float(np.linalg.norm(v))


def _warm_state(window: int = 64) -> ServerState[np.ndarray]:
    """n = 4, f = 1: 16 fresh honest gradients, round robin (some filtered: noise)."""
    st: ServerState[np.ndarray] = ServerState(np.zeros(6), 4, 1, _norm, window=window)
    for k in range(16):
        w = 1 + k % 4
        st.process(w, st.t, oracle(st.model, st.t, w), 0.1)
    assert st.t >= 8 and sum(st.stats.accepted.values()) == st.t
    return st


def test_lipschitz_filter_refuses_a_large_gradient():
    st = _warm_state()
    limit, t = st.filter.threshold(), st.t
    assert math.isfinite(limit)
    out = st.process(2, st.t, 100.0 * oracle(st.model, st.t, 2), 0.1)
    assert out.status == "lipschitz" and out.verdict.coefficient > limit
    assert out.factor == 0.0 and st.t == t  # the model did not move


def test_stale_honest_gradient_is_dampened_not_dropped():
    st = _warm_state()
    tau, version = 5, st.t - 5
    ref = st.filter.reference(version)
    g_r, x_r = st.refs[ref]
    # a gradient as smooth as the honest ones (coefficient 0.5), computed 5 versions ago
    g = g_r + 0.5 * (st.models[version] - x_r)
    before = st.model.copy()
    out = st.process(3, version, g, 0.1)
    assert out.status == "accepted" and out.tau == tau
    assert out.factor == pytest.approx(math.exp(-0.1 * tau)) and out.factor < 1
    np.testing.assert_allclose(st.model, before - 0.1 * out.factor * g)
    assert dampening(tau, "inverse") == pytest.approx(1 / 6)


def test_window_bounds_memory_and_drops_only_beyond_it():
    st = _warm_state(window=4)
    assert len(st.models) == 4 and len(st.refs) <= 2
    out = st.process(1, st.t - 4, np.zeros(6), 0.1)
    assert out.status == "too-stale" and st.stats.refused["too-stale"][1] == 1


def test_frequency_filter_bounds_a_flooding_worker():
    n, f = 10, 3
    flt = KardamFilter(n, f)
    accepted = []
    for k in range(300):  # worker 1 floods: every other arrival is its
        w = 1 if k % 2 == 0 else 4 + (k // 2) % 7
        if flt.decide(w, k, None, None).accepted:
            accepted.append(w)
    # any 2f consecutive accepted come from 2f distinct workers ...
    assert all(len(set(accepted[i:i + 2 * f])) == 2 * f for i in range(len(accepted) - 2 * f))
    # ... so the flooder holds at most one update in 2f
    assert 0 < accepted.count(1) <= math.ceil(len(accepted) / (2 * f))


class Hostile(CoreStrategy):
    """Byzantine workers that, besides an honest core, send every kind of bad message."""

    def extra_receive(self, byz, sender, message, now):
        if type(message) is not Send or message.instance[0] != MODEL:
            return []
        v, x = message.instance[1], np.asarray(message.vector)
        g = x - TARGET
        return [
            (byz, SERVER, Send((MODEL, v, byz), g)),  # wrong channel
            (byz, SERVER, Send((GRADIENT, v, 9), g)),  # forged origin
            (byz, SERVER, Send((GRADIENT, v + 10**6, byz), g)),  # a future version
            (byz, SERVER, Send((GRADIENT, v, byz), np.full(6, np.nan))),  # invalid
            (byz, SERVER, Send((GRADIENT, v, byz), np.zeros(3))),  # wrong dimension
            (byz, 5, Send((MODEL, v, SERVER), x)),  # a model to an honest worker
            (byz, SERVER, b"\x07\x00garbage"),  # not a message at all
        ]


def test_sans_io_hostile_inputs_are_faults_and_the_run_converges():
    run = simulate_kardam(10, 3, oracle, np.zeros(6), steps=300, strategy=Hostile(), seed=2)
    kinds = {flt.kind for _, flt in run.faults}
    assert {"wrong-channel", "forged-origin", "future-version", "invalid-value",
            "not-the-server", "malformed"} <= kinds
    assert {flt.sender for _, flt in run.faults} <= {1, 2, 3}  # only Byzantine ones blamed
    assert run.updates == 300 and np.linalg.norm(run.model - TARGET) < 0.1


@pytest.mark.parametrize("name", ["flood", "forge", "garbage", "replay", "twins", "equivocate",
                                  "crash", "silent"])
def test_sans_io_under_netsims_strategies(name):
    run = simulate_kardam(10, 3, oracle, np.zeros(6), steps=150, strategy=make_strategy(name),
                          seed=0)
    assert run.updates == 150 and np.linalg.norm(run.model - TARGET) < 0.15
    assert {flt.sender for _, flt in run.faults} <= {1, 2, 3}


def test_sans_io_replay_is_identical_by_seed():
    a, b, c = (simulate_kardam(10, 3, oracle, np.zeros(6), steps=150, seed=s) for s in (4, 4, 5))
    assert a.model.tobytes() == b.model.tobytes() and a.model.tobytes() != c.model.tobytes()
    assert (a.accepted, a.filtered, a.staleness) == (b.accepted, b.filtered, b.staleness)
    assert a.faults == b.faults and a.metrics.as_dict() == b.metrics.as_dict()


@pytest.mark.parametrize("attack", ["sign-flip", "scaled", "gaussian"])
def test_sans_io_converges_under_heavy_tail_with_byzantine_workers(attack):
    run = simulate_kardam(10, 3, oracle, np.zeros(6), steps=600,
                          strategy=GradientAttack(attack, 10.0), scheduler="heavy-tail", seed=1)
    start = np.linalg.norm(TARGET)
    assert np.linalg.norm(run.model - TARGET) < 0.1 * start
    byz = sum(run.accepted.get(i, 0) for i in (1, 2, 3))
    assert byz <= run.updates / 2  # the frequency filter's bound (f of any 2f)
    # stale gradients were applied, dampened; only those beyond the window were dropped
    assert max(run.staleness) > 0 and min(run.stats.factors) < 1
    beyond = sum(c for tau, c in run.staleness.items() if tau >= 64)
    assert sum(run.filtered["too-stale"].values()) == beyond < run.updates / 100
    assert len(run.result.faults) == 0


def test_sans_io_fast_byzantine_links_get_a_bounded_share():
    heavy = HeavyTail()

    def fast_byzantine(src, dst, msg, now, rng):
        return 1e-3 if {src, dst} & {1, 2, 3} else heavy.delay(src, dst, msg, now, rng)

    run = simulate_kardam(10, 3, oracle, np.zeros(6), steps=120, strategy=GradientAttack(
        "scaled", 1.0), scheduler=Reorder(fast_byzantine), seed=0)
    received = {w: run.accepted.get(w, 0) + sum(c.get(w, 0) for c in run.filtered.values())
                for w in range(1, 11)}
    assert min(received[w] for w in (1, 2, 3)) > 3 * max(received[w] for w in range(4, 11))
    for w in (1, 2, 3):  # at most one update in 2f = 6 each, however fast
        assert run.accepted.get(w, 0) <= math.ceil(run.updates / 6)


def _acc(method: str, attack: str, **params) -> float:
    res = train(TrainConfig(method=method, attack=attack, attack_params=params, hidden=16,
                            steps=100, n=10, f=3, seed=0, eval_every=100))
    return float(res.accuracy_mean)


@pytest.mark.parametrize(("attack", "params"), [("sign-flip", {"scale": 3.0}),
                                                 ("gaussian", {})])
def test_kardam_trains_where_async_sgd_is_hurt(attack, params):
    kardam, plain = _acc("kardam", attack, **params), _acc("async-sgd", attack, **params)
    assert kardam > 0.3 and kardam > plain + 0.05, (kardam, plain)


def test_harness_starve_starves_a_worker_not_the_server():
    def rows(steps):
        return train(TrainConfig(method="kardam", scheduler="starve", attack="gaussian",
                                 hidden=8, steps=steps, n=10, f=3, eval_every=steps)
                     ).final_params

    short, long = rows(5), rows(20)
    assert torch.equal(short[-1], long[-1])  # the last honest worker never hears back
    assert not torch.equal(short[0], long[0])  # the others train


def test_cli_train_kardam_json(capsys):
    rc = main(["train", "--method", "kardam", "--n", "10", "--f", "3", "--attack", "sign-flip",
               "--json", "--steps", "12", "--hidden", "8", "--no-progress", "--method-param",
               "dampening=inverse", "--method-param", "window=8"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "kardam" and 0 <= out["accuracy_mean"] <= 1
    assert out["messages"] > 0 and out["bytes"] > 0 and "gradients up" in out["traffic"]


def test_cli_refuses_unknown_method_params(capsys):
    args = ["train", "--steps", "2", "--hidden", "8", "--no-progress"]
    assert main([*args, "--method", "kardam", "--method-param", "gamma=1"]) == 2
    err = capsys.readouterr().err
    assert "gamma" in err and "--method-param" in err and "beta, dampening, window" in err
    assert main([*args, "--method", "async-sgd", "--method-param", "beta=1"]) == 2
    assert "none (no filters" in capsys.readouterr().err
    assert main([*args, "--method", "kardam", "--method-param", "dampening=linear"]) == 2
    assert "exp, inverse" in capsys.readouterr().err
