"""``--method byzsgd``: Byzantine workers and servers (learning/methods/byzsgd.py): the command
line, convergence under every server attack (and the collapse of a non-robust variant under
the same attack), the gather's rank bound after every gather, resilience, traffic, seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from learning.cli import main
from learning.learn import TrainConfig, train
from learning.methods import METHODS
from learning.methods.byzsgd import ByzSGD
from learning.protocols.gather import median_gather_bounds, median_gather_rank


def config(**kw) -> TrainConfig:
    base = dict(method="byzsgd", n=10, f=1, n_servers=7, f_servers=2, attack="sign-flip",
                steps=100, hidden=16, eval_every=100)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def recorded(monkeypatch):
    """Runs of ``byzsgd`` whose method instances (with every gather's (t, pre, post)) land in
    the returned list."""
    made: list[ByzSGD] = []

    class Recorded(ByzSGD):
        record_gathers = True

        def __init__(self, setup):
            super().__init__(setup)
            made.append(self)

    monkeypatch.setitem(METHODS, "byzsgd", Recorded)
    return made


def test_the_command_line_runs_and_reports_accuracy_bytes_and_messages(capsys):
    rc = main(["train", "--method", "byzsgd", "--n-servers", "7", "--f-servers", "2",
               "--n", "10", "--f", "3", "--attack", "sign-flip", "--json", "--steps", "20",
               "--hidden", "16", "--gather-every", "10", "--no-progress"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "byzsgd" and out["attack"] == "sign-flip"
    assert 0 <= out["accuracy_min"] <= out["accuracy_mean"] <= 1
    messages = 20 * 2 * 7 * 10 + 2 * 7 * 6
    assert out["messages"] == messages and out["bytes"] % messages == 0
    assert out["bytes"] // messages == 4 * (64 * 16 + 16 + 16 * 10 + 10)  # d · 4 bytes
    assert "payload only" in out["traffic"]


@pytest.fixture(scope="module")
def free_accuracy() -> float:
    return train(config(attack="none")).accuracy_min


ROBUST = {"auto": {}, "equivocate": {"equivocate_scale": 10.0}, "stale": {}, "none": {},
          "gaussian": {}}


@pytest.mark.parametrize("server_attack", sorted(ROBUST))
def test_training_converges_with_byzantine_servers(server_attack, free_accuracy):
    """f_servers = 2 Byzantine servers (and a sign-flipping worker): the honest workers end
    within 5 points of the attack-free run, for every kind of Byzantine server."""
    res = train(config(server_attack=server_attack, method_params=dict(ROBUST[server_attack])))
    assert free_accuracy > 0.85
    assert res.accuracy_min >= free_accuracy - 0.05, (server_attack, res.accuracy_min)


@pytest.mark.parametrize("server_attack", ["auto", "equivocate", "gaussian"])
def test_without_gather_and_median_the_same_attack_collapses_training(server_attack,
                                                                      free_accuracy):
    """The check above can fail: with a mean model rule and no gather, the same Byzantine
    servers (sign-flipped, noisy or equivocating models) wreck the workers' models."""
    params = {"model_rule": "mean", **ROBUST[server_attack]}
    res = train(config(server_attack=server_attack, gather_every=10**6, method_params=params))
    robust = train(config(server_attack=server_attack, method_params=ROBUST[server_attack]))
    assert res.accuracy_min < 0.5 < free_accuracy - 0.3
    assert robust.accuracy_min - res.accuracy_min > 0.3


@pytest.mark.parametrize(("n_servers", "server_attack"),
                         [(7, "auto"), (8, "equivocate"), (9, "auto"), (9, "gaussian")])
def test_the_gather_bound_holds_after_every_gather(recorded, n_servers, server_attack):
    """After every gather, every honest server's model lies in the per-coordinate box of
    median_gather_bounds(pre, q_ps, f_ps) (learning/protocols/gather.py), in runs whose
    honest servers differ before the gather (asynchronous quorums of a sign-flip attack)."""
    f_ps = 2
    q = n_servers - f_ps
    train(config(n_servers=n_servers, f_servers=f_ps, f=3, server_attack=server_attack,
                 steps=30, gather_every=5, eval_every=30))
    method = recorded[-1]
    assert [t for t, _, _ in method.gathers] == [5, 10, 15, 20, 25, 30]
    rank = median_gather_rank(q, f_ps)
    strict = 0
    for _, pre, post in method.gathers:
        pre_np, post_np = pre.double().numpy(), post.double().numpy()
        assert np.ptp(pre_np, axis=0).max() > 0  # the honest servers disagree
        low, high = median_gather_bounds(pre_np, q, f_ps)
        assert (post_np >= low).all() and (post_np <= high).all()
        strict += int((high < pre_np.max(0)).any())
    assert (rank >= 2) == (strict == len(method.gathers))  # L >= 2 trims the extremes


def test_resilience_is_refused_below_the_bounds_with_flags_named(capsys):
    with pytest.raises(ValueError, match=r"n_servers >= 3 x f_servers \+ 1 \(n_servers=6"):
        train(config(n_servers=6, steps=1))
    with pytest.raises(ValueError, match=r"byzsgd \(its workers\) needs n >= 3f\+1"):
        train(config(n=9, f=3, steps=1))
    argv = ["train", "--method", "byzsgd", "--n-servers", "6", "--f-servers", "2",
            "--steps", "1", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--n-servers >= 3 x --f-servers + 1 (--n-servers 6" in err and "--unsafe" in err
    assert "n_servers" not in err


def test_unsafe_runs_below_the_bounds_with_warnings():
    with pytest.warns(RuntimeWarning, match="unsafe"):
        res = train(config(n_servers=4, f_servers=2, n=8, f=3, unsafe=True, steps=10,
                           eval_every=10))
    assert res.accuracy_min is not None and np.isfinite(res.loss)


@pytest.mark.parametrize(("kw", "match"), [
    ({"server_attack": "loud"}, r"unknown server_attack='loud'; known: .*equivocate.*stale"),
    ({"method_params": {"model_rul": "median"}}, r"no method_params key 'model_rul'"),
    ({"method_params": {"model_rule": "krum"}}, r"model_rule 'krum' needs 7 values"),
    ({"protocol": "nope"}, r"unknown rule 'nope'"),
])
def test_bad_settings_are_clear_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        train(config(steps=1, **kw))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_traffic_is_the_formula(dtype):
    res = train(config(steps=23, gather_every=5, eval_every=23, dtype=dtype))
    d = res.final_params.shape[1]
    messages = 23 * 2 * 7 * 10 + (23 // 5) * 7 * 6
    assert res.messages == messages
    assert res.bytes == messages * d * (4 if dtype == "float32" else 8)


def test_same_seed_same_run_and_another_seed_another():
    kw = dict(f=3, server_attack="equivocate", steps=25, gather_every=4, eval_every=25)
    a, b = train(config(**kw)), train(config(**kw))
    c = train(config(seed=1, **kw))
    assert torch.equal(a.final_params, b.final_params) and a.history == b.history
    assert not torch.equal(a.final_params, c.final_params)


def quorum_medians(honest, byz_rows, i, q, own):
    """Every ``numpy.median`` receiver ``i`` may output: over its Byzantine rows, (``own``:
    honest row i,) and any choice of honest rows filling the quorum to ``q``."""
    from itertools import combinations

    others = [k for k in range(len(honest)) if not (own and k == i)]
    fixed = list(byz_rows) + ([honest[i]] if own else [])
    return [np.median(np.stack(fixed + [honest[k] for k in c]), axis=0)
            for c in combinations(others, q - len(fixed))]


@pytest.mark.parametrize("own", [True, False])
def test_a_quorum_is_the_byzantine_vectors_then_honest_ones_and_its_median_numpys(own):
    """aggregate_quorums: receiver i's row is numpy.median of its finite Byzantine vectors,
    itself (for a gather) and honest rows to q in all; a non-finite vector never enters."""
    cfg = config(n_servers=8, f_servers=2)  # q = 6: an even quorum, the midpoint median
    from learning.methods.base import Setup

    gen = torch.Generator().manual_seed(3)
    method = ByzSGD(Setup(cfg, [0], list(range(1, 10)), [None, None], gen))
    rng = np.random.default_rng(0)
    honest = torch.as_tensor(rng.standard_normal((6, 5)))
    byz = torch.as_tensor(rng.standard_normal((6, 2, 5)) * 10)
    byz[0, 1, 2] = float("nan")  # receiver 0 gets one valid Byzantine vector only
    out = method.aggregate_quorums(method.gather_rule, honest, byz, 6, 6, own=own).numpy()
    for i in range(6):
        rows = [r for r in byz[i].numpy() if np.isfinite(r).all()]
        cands = quorum_medians(honest.numpy(), rows, i, 6, own)
        assert any(np.allclose(out[i], c, rtol=0, atol=1e-12) for c in cands), i
    shared = method.aggregate_quorums(method.model_rule, honest, byz[1], 3, 6, own=False)
    for i in range(3):
        cands = quorum_medians(honest.numpy(), list(byz[1].numpy()), i, 6, False)
        assert any(np.allclose(shared[i].numpy(), c, rtol=0, atol=1e-12) for c in cands)
