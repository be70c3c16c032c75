"""LEARN reports the time of its agreement rounds (``TrainResult.round_time``), which
benchmarks.bench_learning divides by a D-SGD step: the rounds it counts are the rounds it ran,
and the timing does not change what a run computes."""

from __future__ import annotations

import math

import torch

from learning.learn import TrainConfig, train
from learning.methods.learn import Learn


def test_round_time_counts_every_round_it_ran() -> None:
    cfg = TrainConfig(steps=12, eval_every=12, attack="alie", rounds="log", seed=1)
    res = train(cfg)
    assert res.round_time is not None and math.isfinite(res.round_time) and res.round_time > 0
    assert res.agreement_rounds == sum(res.gradient_rounds) + cfg.param_rounds * cfg.steps
    again = train(cfg)  # the timing is outside the computation: the same models
    assert torch.equal(res.final_params, again.final_params)


def test_round_time_skips_the_first_steps_and_is_none_without_rounds() -> None:
    assert train(TrainConfig(steps=3, eval_every=3, method="dsgd")).round_time is None
    method = Learn.__new__(Learn)
    method.round_times = [(10, 1.0)] * 5 + [(2, 0.002)] * 6
    assert math.isclose(method.round_time(), 0.001)  # the first 5 steps left out
    method.round_times = [(4, 0.004)] * 3
    assert math.isclose(method.round_time(), 0.001)  # too few steps to skip any
    method.round_times = []
    assert method.round_time() is None
