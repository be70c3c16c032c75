"""Zeno (Xie, Koyejo and Gupta, ICML 2019): a trusted server that trusts the gradients that
lower its validation loss, ``--method server --protocol zeno`` (docs/systems/zeno.md).

A rule of the server baseline (:data:`learning.methods.baselines.SERVER_RULES`), so it sees
the step (:class:`~learning.methods.base.StepInput`): at every step the server draws a
validation batch of ``n_r`` samples (:meth:`~learning.methods.base.Task.validation_batch`,
the run's generator) and scores each of the ``m`` candidate gradients ``g_i`` it received
(honest and Byzantine) at the current model ``x = θ̄``::

    score_i = f_r(x) - f_r(x - γ·g_i) - ρ·||g_i||²

(``f_r``: the loss on the validation batch, one batched forward of the ``m + 1`` models
``x, x - γ·g_1, ..., x - γ·g_m``; a non-finite score is ``-inf``). The aggregate is the mean
of the ``m - b`` best-scored candidates, ``b = f`` (Zeno's suspicion: ``b`` must be at least
the number of Byzantine workers). Zeno needs no honest majority, only ``b < n``, i.e.
``f < n``: with all ``n`` candidates received, ``m - b >= 1``; where fewer arrive (silent
Byzantine workers, non-finite vectors, which the server drops) and ``m - b < 1``, the rule
keeps the one best-scored candidate.

Guarantee (the paper's Theorem 1, under its assumptions: the validation loss is L-smooth,
``ρ`` and ``γ`` small enough, honest gradients with bounded variance, and ``b >= q`` the
number of Byzantine workers): the iterates converge to a stationary point of the loss at
the rate of SGD, up to an error that grows with ``b/m`` and the variance of the validation
estimate. The guarantee is for a server that draws its validation data from the true
distribution; it says nothing when the server's validation batch is poisoned or
unrepresentative, and nothing for the decentralized setting (the server is trusted).

Parameters (``TrainConfig.method_params``, ``--method-param KEY=VALUE``):

- ``zeno_lr``: ``γ`` (> 0; default the step's learning rate ``η_t``);
- ``rho``: ``ρ`` (>= 0; default :data:`DEFAULT_RHO`);
- ``batch``: ``n_r``, the validation batch (an integer >= 1; default the run's
  ``batch_size``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from netsim.registry import register

from .base import Setup, StepInput, Task
from .baselines import SERVER_RULES, ServerRule

ZENO_PARAMS = ("batch", "rho", "zeno_lr")
"""The ``method_params`` keys the Zeno rule takes."""

DEFAULT_RHO = 5e-4
"""``ρ`` unless ``rho`` is given: the weight of the ``||g_i||²`` penalty of a score."""


@dataclass(frozen=True)
class ZenoParams:
    """The checked parameters of a Zeno rule (module doc); ``zeno_lr=None``: the step's lr."""

    zeno_lr: float | None
    rho: float
    batch: int


def _number(key: str, value: Any, low: float, strict: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        raise ValueError(f"method_params {key}={value!r}: Zeno's {key} must be a finite "
                         f"number {'>' if strict else '>='} {low:g}")
    return float(value)


def zeno_params(params: dict[str, Any], batch_size: int) -> ZenoParams:
    """Check Zeno's ``method_params`` (module doc): unknown keys and bad values are a
    ``ValueError`` naming the key (``--method-param KEY=VALUE`` on the command line)."""
    for key in params:
        if key not in ZENO_PARAMS:
            raise ValueError(f"method_params {key!r}: the zeno rule takes "
                             f"{', '.join(ZENO_PARAMS)} (got {key}={params[key]!r})")
    lr = params.get("zeno_lr")
    batch = params.get("batch", batch_size)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"method_params batch={batch!r}: Zeno's validation batch must be "
                         "an integer >= 1")
    return ZenoParams(None if lr is None else _number("zeno_lr", lr, 0.0, strict=True),
                      _number("rho", params.get("rho", DEFAULT_RHO), 0.0, strict=False),
                      batch)


def zeno_scores(task: Task, x: torch.Tensor, values: torch.Tensor, gamma: float, rho: float,
                batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``(m,)``: ``f_r(x) - f_r(x - γ·g_i) - ρ·||g_i||²`` for the rows ``g_i`` of ``values``
    ``(m, d)`` on the validation ``batch`` ``(x_r, y_r)``, in one batched forward; a
    non-finite score is ``-inf`` (module doc)."""
    cand = torch.cat([x[None], x[None] - gamma * values])
    loss = task.losses(cand, *batch)
    scores = loss[0] - loss[1:] - rho * values.square().sum(dim=1)
    return torch.where(torch.isfinite(scores), scores, torch.full_like(scores, -math.inf))


def make_zeno(setup: Setup) -> ServerRule:
    """The Zeno rule of a run (module doc), checked: the run's :class:`Task` is needed (the
    validation loss) and Zeno's ``method_params``."""
    cfg, task = setup.cfg, setup.task
    if task is None:
        raise ValueError("the zeno rule scores gradients on validation data: it needs the "
                         "run's Task (setup.task), i.e. a run of learning.learn.train")
    p = zeno_params(cfg.method_params, cfg.batch_size)
    b = cfg.f

    def zeno(values: torch.Tensor, s: StepInput) -> torch.Tensor:
        gamma = p.zeno_lr if p.zeno_lr is not None else s.lr
        val = task.validation_batch(p.batch, setup.gen)
        scores = zeno_scores(task, s.mean, values, gamma, p.rho, val)
        keep = max(1, values.shape[0] - b)  # m - b, at least the best one
        return values[scores.topk(keep).indices].mean(dim=0)

    return zeno


register(SERVER_RULES, "zeno", make_zeno, what="server rule")

__all__ = ["DEFAULT_RHO", "ZENO_PARAMS", "ZenoParams", "make_zeno", "zeno_params",
           "zeno_scores"]
