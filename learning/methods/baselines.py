"""The baselines of the harness: a trusted server with a robust rule, plain decentralized
SGD (D-SGD) and local training.

- :class:`Server` (``server``): ``ĝ = rule(g_1..g_h, Byzantine values)`` with a rule of
  :mod:`agreement.rules`, or a rule that needs the run (:data:`SERVER_RULES`, e.g. Zeno's
  validation-loss scores); every honest node descends along the one aggregate;
- :class:`DSGD` (``dsgd``): descend on the local gradient, then ``θ_j <- mean`` of the n
  parameter vectors received (Byzantine ones included; no guarantee);
- :class:`Local` (``local``): descend on the local gradient, no communication.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from agreement.rules import make_rule

from ..attacks import AttackHook
from .base import Method, Setup, StepInput, Traffic, finite_rows, register_method, two_sided

ServerRule = Callable[[torch.Tensor, StepInput], torch.Tensor]
"""A rule that sees the step: ``rule(values (m, d), s) -> (d,)`` (Zeno evaluates candidate
models ``θ̄ - γ·g_i`` on a validation batch)."""

SERVER_RULES: dict[str, Callable[[Setup], ServerRule]] = {}
"""Rules of the server baseline that need the run (:class:`~learning.methods.base.Setup`),
by name: ``factory(setup) -> rule``; any other name is a rule of :mod:`agreement.rules`."""


@register_method
class Server(Method):
    """A trusted server: ``ĝ = rule(g_1..g_h, Byzantine values)`` (the robust rule of
    :mod:`agreement.rules` named by ``protocol``), the same ``ĝ`` for every honest node."""

    name = "server"
    rule = "the server's robust rule"

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        name = setup.cfg.protocol
        if name in SERVER_RULES:
            self.step_rule: ServerRule | None = SERVER_RULES[name](setup)
        else:
            self.step_rule = None
            self.rule = make_rule(name, setup.cfg.f)
        hook = setup.hooks[0]
        if isinstance(hook, AttackHook):  # the line-searched attacks search against the rule
            hook.rule = self.rule if self.step_rule is None else None
            hook.receivers = True  # per-receiver values: the server is receiver 0

    def step(self, s: StepInput) -> torch.Tensor:
        setup = self.setup
        b = setup.b
        if setup.cfg.attack == "dissensus" and setup.attacked:
            vals, _ = two_sided(s.sent, b, setup.scale)
            byz = vals[(np.arange(b) >= (b + 1) // 2).astype(int), np.arange(b)]
        else:
            byz = self.byzantine_vectors(s.sent, s.own, setup.hooks[0])
            if byz.ndim == 3:  # per receiver: the server is the one receiver (row 0)
                byz = byz[0]
        values = torch.cat([s.sent, finite_rows(byz)])
        agg = self.step_rule(values, s) if self.step_rule is not None else self.rule(values)
        return s.descend(agg.expand(setup.h, s.sent.shape[1]))

    def traffic(self, d: int, itemsize: int) -> Traffic:
        messages = 2 * self.setup.cfg.n * self.setup.cfg.steps
        return Traffic(messages, messages * d * itemsize,
                       "payload only: n gradients up, n models down per step")


@register_method
class DSGD(Method):
    """Decentralized SGD on the complete graph: descend on the local gradient, then
    ``θ_j <- mean`` of the n parameter vectors node j receives (the two-sided dissensus
    attack sends different values to the two halves of the honest nodes)."""

    name = "dsgd"

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        if isinstance(setup.hooks[1], AttackHook):  # honest node j averages with row j
            setup.hooks[1].receivers = True  # (line searches: the mean, hook.rule None)

    def step(self, s: StepInput) -> torch.Tensor:
        setup = self.setup
        n, h, b = setup.cfg.n, setup.h, setup.b
        new = s.descend(s.sent)
        if setup.attacked and setup.cfg.attack == "dissensus":
            vals, side = two_sided(new, b, setup.scale)
            tot = new.sum(dim=0)
            side_t = torch.as_tensor(side, device=new.device)
            low, high = (tot + vals[0].sum(0)) / n, (tot + vals[1].sum(0)) / n
            return torch.where(side_t[:, None] == 0, low, high)
        byz = self.byzantine_vectors(new, s.mean - s.lr * s.own, setup.hooks[1]) \
            if setup.attacked else new[:0]
        if byz.ndim == 3:  # per receiver: honest node j averages with row j
            ok = torch.isfinite(byz).all(dim=2, keepdim=True)
            got = torch.where(ok, byz, torch.zeros_like(byz)).sum(dim=1)
            return (new.sum(dim=0) + got) / (h + ok.sum(dim=1))
        byz = finite_rows(byz)
        avg = (new.sum(dim=0) + byz.sum(dim=0)) / (h + byz.shape[0])
        return avg.expand(h, new.shape[1])

    def traffic(self, d: int, itemsize: int) -> Traffic:
        n = self.setup.cfg.n
        messages = n * (n - 1) * self.setup.cfg.steps
        return Traffic(messages, messages * d * itemsize,
                       "payload only: n(n-1) parameter vectors per step")


@register_method
class Local(Method):
    """Every honest node trains alone: descend on its local gradient (no communication, so
    no attack reaches it)."""

    name = "local"

    def step(self, s: StepInput) -> torch.Tensor:
        return s.descend(s.sent)

    def traffic(self, d: int, itemsize: int) -> Traffic:
        return Traffic(0, 0, "none (local training)")


__all__ = ["DSGD", "SERVER_RULES", "Local", "Server", "ServerRule"]
