"""Zeno (learning.methods.zeno), the suspicion-based rule of the server baseline: it holds
where the mean collapses, its scores rank a far-off or an ascent gradient last, it averages
the m - b best candidates, and its parameters are checked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learning import cli
from learning.data import NodeData, load_digits, split
from learning.learn import TrainConfig, train
from learning.methods import SERVER_RULES, Descent, Setup, StepInput, Task
from learning.methods.zeno import DEFAULT_RHO, make_zeno, zeno_params, zeno_scores
from learning.models import Swarm, make_model

SMALL = dict(dataset="digits", hidden=16, n=10, f=3, seed=0, steps=100, eval_every=1000,
             method="server")


@pytest.mark.parametrize("attack,params", [("sign-flip", {"scale": 3.0}),
                                           ("gaussian", {"sigma": 3.0})])
def test_zeno_holds_where_the_mean_collapses(attack, params) -> None:
    zeno = train(TrainConfig(protocol="zeno", attack=attack, attack_params=params, **SMALL))
    mean = train(TrainConfig(protocol="mean", attack=attack, attack_params=params, **SMALL))
    assert zeno.accuracy_mean > 0.85, zeno.accuracy_mean
    assert mean.accuracy_mean < 0.3, mean.accuracy_mean


def _task(n: int = 4, seed: int = 0) -> Task:
    ds = load_digits(seed)
    torch.manual_seed(seed)
    model = make_model("mlp", ds.input_shape, ds.out_dim, hidden=16)
    swarm = Swarm(model, ds.task, l2=ds.l2)
    data = NodeData(ds, split(ds, n, "dirichlet", alpha=1.0, seed=seed), torch.device("cpu"))
    return Task(swarm, ds, data, torch.device("cpu"), torch.float32)


def _gradients(task: Task, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n = task.data.n
    xb, yb = task.data.sample(32, gen)
    g, _ = task.swarm.grads(x.expand(n, -1).contiguous(), xb, yb)
    return g


def test_the_scores_rank_a_far_off_and_an_ascent_gradient_last() -> None:
    task = _task()
    gen = torch.Generator().manual_seed(0)
    x = task.swarm.init.clone()
    g = _gradients(task, x, gen)  # 4 honest gradients
    far = 50.0 * torch.randn(x.shape, generator=gen)
    values = torch.cat([g, (-3.0 * g.mean(0))[None], far[None]])
    batch = task.validation_batch(64, gen)
    scores = zeno_scores(task, x, values, 0.1, DEFAULT_RHO, batch)
    assert scores.shape == (6,)
    order = scores.argsort(descending=True).tolist()
    assert order[-1] == 5 and order[-2] == 4
    assert (scores[:4] > 0).all()  # honest steps lower the validation loss
    # the formula, candidate by candidate
    loss = task.losses(torch.stack([x, x - 0.1 * values[0]]), *batch)
    want = loss[0] - loss[1] - DEFAULT_RHO * values[0].square().sum()
    torch.testing.assert_close(scores[0], want)
    nonfinite = zeno_scores(task, x, torch.full_like(values[:1], 1e30), 0.1, 1.0, batch)
    assert nonfinite.tolist() == [-float("inf")]


def _setup(task: Task, f: int, **params) -> Setup:
    n = task.data.n
    cfg = TrainConfig(n=n, f=f, method="server", protocol="zeno", method_params=params)
    gen = torch.Generator().manual_seed(1)
    return Setup(cfg, list(range(f)), list(range(f, n)), [None, None], gen, task)


def _step(task: Task, values: torch.Tensor, x: torch.Tensor) -> StepInput:
    cfg = TrainConfig()
    d = x.shape[0]
    return StepInput(1, 0.1, x[None].clone(), x, values, values[:0],
                     Descent(cfg, 1, d, x.device, x.dtype))


def test_the_rule_averages_the_m_minus_b_best_scored() -> None:
    task = _task()
    x = task.swarm.init.clone()
    g = _gradients(task, x, torch.Generator().manual_seed(0))
    ascent = -10.0 * g.mean(0, keepdim=True)
    values = torch.cat([g, ascent])
    none = make_zeno(_setup(task, 0))(values, _step(task, values, x))
    torch.testing.assert_close(none, values.mean(0))  # b = 0: every candidate
    one = make_zeno(_setup(task, 1, rho=0.0, batch=64))(values, _step(task, values, x))
    torch.testing.assert_close(one, g.mean(0))  # b = 1: the ascent one is dropped
    # b = 3 and only m = 2 candidates (a Byzantine majority, some silent): the best one
    best = make_zeno(_setup(task, 3, rho=0.0, batch=64))(values[3:], _step(task, values, x))
    torch.testing.assert_close(best, g[3])
    assert SERVER_RULES["zeno"] is make_zeno


def test_zeno_params_and_their_errors(capsys) -> None:
    p = zeno_params({}, 32)
    assert p.zeno_lr is None and p.rho == DEFAULT_RHO and p.batch == 32
    p = zeno_params({"zeno_lr": 0.05, "rho": 0, "batch": 8}, 32)
    assert (p.zeno_lr, p.rho, p.batch) == (0.05, 0.0, 8)
    for params, match in [({"lr": 0.1}, r"method_params 'lr': the zeno rule takes batch, rho, "
                                         r"zeno_lr"),
                          ({"zeno_lr": 0}, r"zeno_lr=0: Zeno's zeno_lr must be a finite "
                                           r"number > 0"),
                          ({"rho": -1.0}, r"rho=-1.0: Zeno's rho must be a finite number >= 0"),
                          ({"rho": "x"}, r"rho='x'"),
                          ({"batch": 0}, r"batch=0: Zeno's validation batch must be an "
                                         r"integer >= 1"),
                          ({"batch": 2.5}, r"batch=2.5")]:
        with pytest.raises(ValueError, match=match):
            zeno_params(params, 32)
    setup = _setup(_task(n=5), 1)
    setup.task = None
    with pytest.raises(ValueError, match="needs the run's Task"):
        make_zeno(setup)
    rc = cli.main(["train", "--method", "server", "--protocol", "zeno", "--method-param",
                   "rho=-2", "--steps", "1", "--hidden", "16", "--no-progress"])
    assert rc == 2
    assert "error: --method-param rho=-2: Zeno's rho must be" in capsys.readouterr().err


def test_zeno_lr_and_batch_change_the_run() -> None:
    kw = dict(SMALL, steps=10, protocol="zeno", attack="gaussian")
    base = train(TrainConfig(**kw))
    again = train(TrainConfig(**kw))
    assert torch.equal(base.final_params, again.final_params)
    other = train(TrainConfig(**kw, method_params={"batch": 4, "zeno_lr": 1.0}))
    assert np.isfinite(other.loss)
    assert not torch.equal(base.final_params, other.final_params)
