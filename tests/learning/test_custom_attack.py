"""A numpy value attack of the agreement layer runs unchanged in training (round and message
engines, LEARN and the baselines); register_learning_attack; the learning command line lists
registered attacks."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from agreement.attacks import alie as agreement_alie
from learning import cli
from learning.attacks import (
    ATTACK_PARAMS,
    LEARNING_ATTACKS,
    ValueAttackHook,
    check_attack,
    register_learning_attack,
)
from learning.learn import TrainConfig, train
from tests.netsim import public_strategy_example as example

SMALL = dict(n=7, f=2, steps=12, rounds=2, hidden=8, eval_every=100, seed=3)


@pytest.mark.parametrize("engine,views", [("round", "random"), ("round", "omniscient"),
                                          ("message", "random")])
def test_the_public_example_attack_trains_at_both_engine_levels(engine, views) -> None:
    steps = 3 if engine == "message" else SMALL["steps"]
    res = train(TrainConfig(attack=example.shift, engine=engine, views=views,
                            **{**SMALL, "steps": steps}))
    assert res.config["attack"] == "shift" and res.as_dict()["attack"] == "shift"
    assert np.isfinite(res.loss) and res.final_params is not None
    assert torch.isfinite(res.final_params).all()
    silent = train(TrainConfig(attack="none", engine=engine, views=views,
                               **{**SMALL, "steps": steps}))
    assert not torch.equal(res.final_params, silent.final_params)  # the attack acted


def test_a_numpy_value_attack_matches_the_torch_learning_attack_of_the_same_formula() -> None:
    """agreement.attacks.alie (numpy, through the host) and learning's alie (torch) are the
    same formula mean + z·std with z = alie_z(n, f): the runs agree to float64 rounding."""
    kw = {**SMALL, "dtype": "float64"}
    torch_run = train(TrainConfig(attack="alie", **kw))
    numpy_run = train(TrainConfig(attack=functools.partial(agreement_alie, n=kw["n"]), **kw))
    torch.testing.assert_close(numpy_run.final_params, torch_run.final_params,
                               rtol=1e-9, atol=1e-9)


def _same_rows(honest: np.ndarray, f: int, rng: np.random.Generator) -> np.ndarray:
    """Per receiver, but every receiver gets example.shift's rows."""
    return np.repeat(example.shift(honest, f, rng)[None], honest.shape[0], axis=0)


_same_rows.per_receiver = True  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", ["learn", "server", "dsgd"])
def test_a_per_receiver_attack_with_equal_rows_is_the_plain_attack(method) -> None:
    kw = {**SMALL, "method": method, "dtype": "float64"}
    if method != "learn":
        kw["rounds"] = "log"
    plain = train(TrainConfig(attack=example.shift, **kw))
    per = train(TrainConfig(attack=_same_rows, **kw))
    torch.testing.assert_close(per.final_params, plain.final_params, rtol=1e-12, atol=1e-12)
    mirrored = train(TrainConfig(attack=example.mirror, **kw))
    assert torch.isfinite(mirrored.final_params).all()


def test_a_registered_value_attack_is_an_attack_name_in_training(capsys) -> None:
    with example.registered():
        check_attack("test-shift")
        res = train(TrainConfig(attack="test-shift", **SMALL))
        assert res.config["attack"] == "test-shift"
        with pytest.raises(SystemExit):
            cli.main(["train", "--help"])
        out = capsys.readouterr().out
        assert "test-shift" in out and "value attack: Every Byzantine node sends" in out
        assert "test-favour-high" in out  # a registered protocol-level strategy
    with pytest.raises(ValueError, match="unknown attack 'test-shift'"):
        check_attack("test-shift")


def test_the_value_attack_hook_copies_through_the_host_and_back() -> None:
    hook = ValueAttackHook(example.shift, {"scale": 1.0}, seed=0)
    honest = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    out = hook(honest, 2)
    assert out.dtype == torch.float32 and out.device == honest.device and out.shape == (2, 3)
    want = example.shift(honest.numpy(), 2, np.random.default_rng(0), scale=1.0)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6)
    bad = ValueAttackHook(lambda h, f, rng: h[:1], seed=0)
    with pytest.raises(ValueError, match=r"expected \(2, 3\)"):
        bad(honest, 2)


def test_register_learning_attack_refuses_taken_names_and_checks_parameters() -> None:
    def double(honest, own, gen, factor: float = 2.0):
        """factor x the Byzantine nodes' own vectors"""
        return factor * own

    with pytest.raises(ValueError, match="already registered"):
        register_learning_attack("alie", double)
    try:
        register_learning_attack("test-double", double, params=("factor",))
        check_attack("test-double", {"factor": 3.0})
        with pytest.raises(ValueError, match="takes no parameter 'z'; it takes: factor"):
            check_attack("test-double", {"z": 1.0})
        res = train(TrainConfig(attack="test-double", attack_params={"factor": -1.0}, **SMALL))
        assert torch.isfinite(res.final_params).all()
    finally:
        LEARNING_ATTACKS.pop("test-double", None)
        ATTACK_PARAMS.pop("test-double", None)
