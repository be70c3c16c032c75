"""LEARN and the baselines: the acceptance run, agreement of honest models, collapse of plain
averaging, the equivalence of docs/theory.md §2 on quadratic losses, determinism, engines,
errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from agreement import constants
from agreement.attacks import alie as agreement_alie
from agreement.attacks import alie_z
from learning.attacks import AttackHook, check_attack
from learning.data import Dataset, synthetic
from learning.learn import TrainConfig, train
from learning.models import Swarm, make_model


@pytest.mark.slow
def test_acceptance_digits_alie_trimmed_mean():
    """The issue's acceptance command (n=10, f=3, alie, trimmed mean, 300 steps, seed 0)."""
    res = train(TrainConfig(dataset="digits", n=10, f=3, attack="alie",
                            protocol="trimmed-mean", steps=300, seed=0))
    assert res.accuracy_mean >= 0.85, res.as_dict()
    assert res.accuracy_min >= 0.85
    # the proven schedule (default): rounds_for_target per step, then 1 parameter round
    proven = [constants.rounds_for_target("trimmed-mean", 10, 3, 4810, 2.0 ** -max(
        1, math.ceil(math.log2(t))), 1.0) for t in range(1, 301)]
    assert res.gradient_rounds == proven
    assert res.agreement_rounds == sum(proven) + 300


def test_digits_alie_trimmed_mean_short():
    """The acceptance setting, 100 steps (the 300-step run is in the slow suite)."""
    res = train(TrainConfig(dataset="digits", n=10, f=3, attack="alie",
                            protocol="trimmed-mean", steps=100, seed=0, eval_every=100))
    assert res.accuracy_min >= 0.85, res.as_dict()


def test_dsgd_collapses_under_sign_flip_learn_does_not():
    common = dict(n=10, f=3, steps=120, seed=1, attack="sign-flip")
    dsgd = train(TrainConfig(method="dsgd", **common))
    learn = train(TrainConfig(method="learn", **common))
    assert dsgd.accuracy_mean < 0.2
    assert learn.accuracy_min > 0.6


def test_deterministic_replay():
    cfg = dict(n=7, f=2, steps=25, attack="gaussian", seed=5, hidden=16)
    a = train(TrainConfig(**cfg))
    b = train(TrainConfig(**cfg))
    assert torch.equal(a.final_params, b.final_params)
    c = train(TrainConfig(**{**cfg, "seed": 6}))
    assert not torch.equal(a.final_params, c.final_params)


def test_parameter_round_keeps_honest_models_together():
    cfg = dict(n=10, f=3, steps=40, attack="alie", hidden=16, seed=2, eval_every=10)
    with_round = train(TrainConfig(**cfg))
    without = train(TrainConfig(**cfg, param_rounds=0))
    assert with_round.diameter < 0.1 * without.diameter
    # and the diameter does not grow over the run (agreement every step)
    assert with_round.history[-1]["diameter"] <= with_round.history[0]["diameter"] + 1e-6


@pytest.mark.parametrize("attack", ["nan", "mimic", "ipm", "dissensus", "label-flip"])
def test_attacks_run_on_every_method(attack):
    for method in ("learn", "server", "dsgd"):
        res = train(TrainConfig(method=method, attack=attack, n=7, f=2, steps=8,
                                hidden=8, eval_every=8))
        assert res.accuracy_mean is not None and np.isfinite(res.test_loss)


def test_nan_is_never_used():
    """Non-finite Byzantine vectors enter no view: the run equals the silent one."""
    cfg = dict(n=7, f=2, steps=10, hidden=8, seed=3)
    silent = train(TrainConfig(attack="none", **cfg))
    nan = train(TrainConfig(attack="nan", **cfg))
    assert torch.equal(silent.final_params, nan.final_params)


def test_divergence_is_named_not_a_rule_error():
    """Honest gradients that overflow (lr far too large) end the run with an error that says
    training diverged and names --lr, not the rule's "view contains non-finite values"."""
    cfg = TrainConfig(dataset="least-squares", model="mlp", n=7, f=2, attack="alie",
                      steps=100, lr=0.5, seed=0)
    with pytest.raises(ValueError, match=r"training diverged at step \d+.*--lr"):
        train(cfg)


def test_message_engine_runs_the_protocol():
    cfg = dict(n=4, f=1, steps=4, hidden=4, batch_size=8, engine="message", eval_every=4)
    res = train(TrainConfig(attack="alie", **cfg))
    assert res.messages > 0 and res.bytes > 0 and res.traffic.startswith("measured")
    assert res.faults == 0
    assert res.diameter < 1.0
    bad = train(TrainConfig(attack="nan", **cfg))
    assert bad.faults > 0  # invalid vectors are recorded faults, never used
    eq = train(TrainConfig(attack="equivocate", **cfg))
    assert np.isfinite(eq.test_loss)


def test_resilience_and_bad_input():
    with pytest.raises(ValueError, match=r"κ\(10,3\).*smallest n for f=3 is 14"):
        train(TrainConfig(protocol="mda", n=10, f=3, steps=1))
    with pytest.raises(ValueError, match="unknown attack"):
        train(TrainConfig(attack="nope", steps=1))
    with pytest.raises(ValueError, match="unknown method"):
        train(TrainConfig(method="nope", steps=1))
    with pytest.raises(ValueError, match="protocol-level"):
        train(TrainConfig(attack="equivocate", steps=1))
    with pytest.raises(ValueError, match="takes no parameter"):
        check_attack("sign-flip", {"z": 1.0})
    with pytest.raises(ValueError, match="worker momentum"):  # both compound: divergence
        TrainConfig(momentum=0.9, worker_momentum=0.9).validate()
    with pytest.warns(RuntimeWarning, match="unsafe"):
        res = train(TrainConfig(protocol="mda", n=7, f=2, steps=3, hidden=4, unsafe=True,
                                rounds="log"))
    assert np.isfinite(res.test_loss)
    # below the resilience no round count is proven: a clear error, not a made-up count
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match='rounds="log"'):
        train(TrainConfig(protocol="mda", n=7, f=2, steps=3, hidden=4, unsafe=True))


def _proven(protocol: str, n: int, f: int, d: int, steps: int) -> list[int]:
    return [constants.rounds_for_target(protocol, n, f, d, delta=2.0 ** -max(
        1, math.ceil(math.log2(t))), input_diameter=1.0) for t in range(1, steps + 1)]


def test_default_schedule_is_the_proven_count_per_step():
    cfg = TrainConfig(n=10, f=3, steps=9, hidden=8, attack="alie", eval_every=9)
    assert cfg.rounds == "proven"
    res = train(cfg)
    d = 64 * 8 + 8 + 8 * 10 + 10  # the digits MLP with 8 hidden units
    assert res.gradient_rounds == _proven("trimmed-mean", 10, 3, d, 9)
    # λ = 3/4 and min(√d, √(n-1)) = 3: T = ceil((N_t + log2 3) / log2(4/3)), 7 at t = 1, 2
    assert res.gradient_rounds[:3] == [7, 7, 9]
    assert res.as_dict()["gradient_rounds"] == res.gradient_rounds
    assert res.agreement_rounds == sum(res.gradient_rounds) + 9


def test_proven_count_at_64_steps_digits_mlp():
    """(10,3) trimmed mean, the digits MLP (d = 4810): N_64 = 6 and
    3·(3/4)^T <= 2^-6 first at T = 19 (18.27 rounded up), against 6 raw rounds."""
    cfg = TrainConfig(n=10, f=3, steps=64)
    assert [cfg.rounds_at(t, 4810) for t in (1, 2, 32, 33, 64)] == [7, 7, 16, 19, 19]
    assert cfg.rounds_at(64, 4810) == constants.rounds_for_target(
        "trimmed-mean", 10, 3, 4810, 2.0**-6, 1.0) == 19
    assert 3 * 0.75**19 <= 2.0**-6 < 3 * 0.75**18


def test_log_and_integer_rounds_still_work():
    common = dict(n=7, f=2, steps=6, hidden=4, eval_every=6)
    log = train(TrainConfig(rounds="log", **common))
    assert log.gradient_rounds == [1, 1, 2, 2, 3, 3]
    fixed = train(TrainConfig(rounds=2, **common))
    assert fixed.gradient_rounds == [2] * 6 and fixed.agreement_rounds == 12 + 6
    with pytest.raises(ValueError, match="'proven', 'log' or an integer"):
        TrainConfig(rounds="fast").validate()
    with pytest.raises(ValueError, match="'proven', 'log' or an integer"):
        TrainConfig(rounds=0).validate()


@pytest.mark.parametrize("protocol", ["median", "krum", "mean", "mve"])
def test_proven_rounds_need_a_proven_contraction(protocol):
    n = 12 if protocol == "krum" else 10
    with pytest.raises(ValueError, match=f'rounds="proven".*{protocol}.*rounds="log"'):
        train(TrainConfig(protocol=protocol, n=n, f=2, steps=1, hidden=4))
    res = train(TrainConfig(protocol=protocol, n=n, f=2, steps=2, hidden=4, rounds="log",
                            eval_every=2))
    assert res.gradient_rounds == [1, 1]
    # the baselines need no round count
    train(TrainConfig(method="server", protocol="median", n=10, f=2, steps=1, hidden=4))


def test_mda_trains_at_10_2_without_unsafe():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = train(TrainConfig(protocol="mda", n=10, f=2, steps=3, hidden=4, attack="alie",
                                eval_every=3))
    # κ(10,2) = 6/7: T = ceil(N_t / log2(7/6)) = 5 for N_t = 1, 9 for N_t = 2
    assert res.gradient_rounds == _proven("mda", 10, 2, res.final_params.shape[1], 3) \
        == [5, 5, 9]
    assert np.isfinite(res.test_loss)


def test_alie_reuses_the_agreement_layer_formula():
    rng = np.random.default_rng(0)
    honest = rng.standard_normal((7, 11))
    hook = AttackHook("alie", 10, 3, torch.Generator())
    got = hook(torch.as_tensor(honest), 3).numpy()
    want = agreement_alie(honest, 3, rng, n=10)
    assert np.allclose(got, want)
    hook = AttackHook("alie", 10, 3, torch.Generator(), {"z": 2.0})
    got = hook(torch.as_tensor(honest), 3).numpy()
    assert np.allclose(got[0], honest.mean(0) + 2.0 * honest.std(0))
    assert alie_z(10, 3) == pytest.approx(0.5244, abs=1e-3)


def test_swarm_gradients_equal_per_model_autograd():
    torch.manual_seed(0)
    model = make_model("cnn", (1, 8, 8), 10)
    sw = Swarm(model, "classification")
    theta = sw.init.expand(3, -1).clone() + 0.01 * torch.randn(3, sw.d)
    x, y = torch.randn(3, 5, 1, 8, 8), torch.randint(0, 10, (3, 5))
    g, loss = sw.grads(theta, x, y)
    for i in range(3):
        torch.nn.utils.vector_to_parameters(theta[i], model.parameters())
        model.zero_grad()
        li = nn.functional.cross_entropy(model(x[i]), y[i])
        li.backward()
        want = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        assert torch.allclose(g[i], want, atol=1e-5)
        assert torch.allclose(loss[i], li)


class _Centre(nn.Module):
    """θ in R^d; the output ignores the input: node j's loss is ½||θ - x_j||²."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(d, dtype=torch.float64))

    def forward(self, a):
        return self.theta.expand(a.shape[0], -1)


@pytest.mark.parametrize("attack", ["alie", "dissensus", "sign-flip", "gaussian", "ipm"])
@pytest.mark.parametrize("seed", [0, 1])
def test_quadratic_losses_give_averaging_agreement(attack, seed):
    """docs/theory.md §2, learning => agreement: with L_j(θ) = ½||θ - x_j||², ∇L̄(θ) = θ - x̄ and
    K = Δ2(x), so LEARN must reach ||θ̄ - x̄|| <= (1+δ)·C·Δ2(x), δ the final honest diameter,
    C the trimmed-mean averaging constant of agreement.constants."""
    n, f, d = 10, 3, 3
    x = np.random.default_rng(seed).standard_normal((n, d)) * np.array([1.0, 3.0, 0.3])
    ds = Dataset("quadratic", "quadratic", np.zeros((n, 1)), x, np.zeros((1, 1)),
                 x[:1], 0, node_index=[np.array([j]) for j in range(n)])
    res = train(TrainConfig(dataset=ds, model=_Centre(d), n=n, f=f, attack=attack,
                            steps=80, lr=0.3, momentum=0.0, weight_decay=0.0, batch_size=1,
                            dtype="float64", seed=seed, eval_every=80))
    honest = x[f:]
    xbar = honest.mean(0)
    spread = max(np.linalg.norm(a - b) for a in honest for b in honest)
    theta_bar = res.final_params.mean(0).numpy()
    delta = res.diameter
    C = constants.averaging_constant("trimmed-mean", n, f, d)
    assert np.linalg.norm(theta_bar - xbar) <= (1 + delta) * C * spread
    assert delta < 0.02 * spread  # and the honest models agree (N_t rounds: ~λ^7 at t = 80)


def test_synthetic_least_squares_reaches_the_optimum_without_heterogeneity():
    """K = 0 (every node labels with w*): LEARN under ALIE reaches the optimum of the honest
    loss up to the noise; with heterogeneity it stops at a floor (docs/theory.md §6: (1+δ)·C·K)."""
    common = dict(model="linear", n=7, f=2, attack="alie", steps=300, lr=0.05,
                  momentum=0.5, weight_decay=0.0, dtype="float64", seed=0)
    iid = train(TrainConfig(dataset=synthetic("least-squares", 7, heterogeneity=0.0), **common))
    het = train(TrainConfig(dataset=synthetic("least-squares", 7, heterogeneity=1.0), **common))
    assert iid.grad_norm < 0.05 and iid.distance_to_optimum < 0.05
    assert het.grad_norm > 5 * iid.grad_norm


def test_accelerator_code_path_on_cpu(monkeypatch):
    """The rules' torch (accelerator) path, forced on CPU tensors: the values never leave
    torch, and the run matches the numpy path up to float32 rounding."""
    from agreement.rules import backend

    cfg = dict(n=7, f=2, steps=15, hidden=8, attack="alie", seed=4, eval_every=15)
    ref = train(TrainConfig(**cfg))
    monkeypatch.setattr(backend, "FORCE_TORCH_OPS", True)
    forced = train(TrainConfig(**cfg))
    assert torch.allclose(ref.final_params, forced.final_params, atol=1e-4)


def test_a_new_method_is_one_class_and_one_registry_entry(monkeypatch):
    """learning.methods' extension point: a method registered in METHODS (here a trusted
    average of the honest gradients) runs through train unchanged, and equals the server
    method with the mean rule when no Byzantine vector is sent; the other methods' numbers
    do not move."""
    from learning.methods import METHODS, Method, StepInput, Traffic

    class HonestAverage(Method):
        name = "honest-average"

        def step(self, s: StepInput) -> torch.Tensor:
            return s.descend(s.sent.mean(dim=0).expand_as(s.sent))

        def traffic(self, d: int, itemsize: int) -> Traffic:
            return Traffic(0, 0, "none (an oracle)")

    cfg = dict(n=7, f=2, steps=12, hidden=8, seed=3, eval_every=12, protocol="mean")
    before = train(TrainConfig(method="server", **cfg))
    monkeypatch.setitem(METHODS, HonestAverage.name, HonestAverage)
    new = train(TrainConfig(method=HonestAverage.name, **cfg))
    after = train(TrainConfig(method="server", **cfg))
    assert torch.equal(before.final_params, after.final_params)
    assert torch.allclose(new.final_params, before.final_params, atol=1e-5)
    assert new.traffic == "none (an oracle)" and new.gradient_rounds == []


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_learn_on_cuda():
    res = train(TrainConfig(device="cuda", attack="alie", steps=60, seed=0))
    assert res.final_params.device.type == "cuda"
    assert res.accuracy_mean > 0.5
    cpu = train(TrainConfig(device="cpu", attack="alie", steps=60, seed=0))
    assert abs(res.accuracy_mean - cpu.accuracy_mean) < 0.1
