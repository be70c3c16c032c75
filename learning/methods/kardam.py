"""Kardam (``kardam``) and its baseline, asynchronous SGD without filters (``async-sgd``), in
the harness: one trusted server, the n nodes its asynchronous workers (docs/systems/kardam.md;
the filters and the update: :mod:`learning.protocols.kardam`).

Asynchrony, in virtual time (harness step ``t`` at time ``t``): every worker holds a model
version. A worker that holds a model it has not answered yet sends, at step ``t``, its
gradient computed at that model (the harness computes it at the worker's row); the gradient
reaches the server after a delay of the netsim scheduler ``cfg.scheduler``
(:func:`netsim.sim.schedulers.make_scheduler`, ``delay(src, dst, None, now, rng)`` with a
``random.Random(cfg.seed)``; the ids are those of the sans-IO run: the server 0, node ``i``
worker ``i + 1``, so ``starve`` starves the last honest worker and ``partition`` cuts the
second half of the honest workers from the server until ``t = 10``). The server processes
the arrivals in time order (:class:`~learning.protocols.kardam.ServerState`: one update per
accepted gradient, dampened by ``Λ(τ)``) and sends its current model back to that worker,
which it reaches after another delay; the worker keeps its model until then: that is its
staleness.
Events before time ``t + 1`` are processed in step ``t``. A message the scheduler holds
(``None``: partition, starve) is released at the scheduler's ``heal_at`` if it has one,
and otherwise stays held for the run (the starved worker keeps the model it has).

Byzantine workers send ``setup.hooks[0]`` of the honest gradients (the learning attacks),
with honest-looking versions, arriving like the others; a non-finite vector is a fault and
gets no reply. The honest rows returned are every honest worker's current model. Plain
asynchronous SGD at the server: ``--momentum`` is not used; ``--weight-decay`` is added to
the gradient at the server (``g + wd·x_t``).

Method parameters (``--method-param``): ``beta`` (default 0.1), ``dampening`` (``exp`` or
``inverse``), ``window`` (model versions kept, default 64); ``async-sgd`` takes none.
"""

from __future__ import annotations

import heapq
import random
from typing import Any

import numpy as np
import torch

from netsim.sim.schedulers import make_scheduler

from ..protocols.kardam import ServerState, check_dampening
from .base import Method, Setup, StepInput, Traffic, register_method, two_sided

PARAMS = {"beta": 0.1, "dampening": "exp", "window": 64}
"""``kardam``'s method parameters and their defaults."""


def _norm(v: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(v))


@register_method
class Kardam(Method):
    """Kardam's server in the harness (module doc): Lipschitz and frequency filters,
    ``x_{t+1} = x_t - γ_t·Λ(τ)·g_p`` for each accepted gradient. Needs ``n >= 3f+1``
    (the paper's assumption; ``unsafe`` to run below)."""

    name = "kardam"
    filters = True

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        cfg = setup.cfg
        params = self._params(cfg.method_params)
        self.params = params
        self.sched = make_scheduler(cfg.scheduler)
        # the scheduler sees the ids of the sans-IO run: server 0, node i is worker i + 1
        self.sched.setup(cfg.n + 1, (0, *(i + 1 for i in setup.honest_ids)),
                         tuple(i + 1 for i in setup.byz_ids))
        self.rng = random.Random(cfg.seed)
        self.order = setup.honest_ids + setup.byz_ids  # row -> node id
        self.heap: list[tuple[float, int, str, int, int, Any]] = []
        self.held: list[tuple[str, int, int, Any]] = []
        self.seq = 0
        self.state: ServerState[torch.Tensor] | None = None
        self.version = [0] * cfg.n  # per row: the model version the worker holds
        self.idle = [True] * cfg.n  # per row: holds a model it has not answered
        self.models: torch.Tensor | None = None  # (h, d): the honest workers' models
        self.up = self.down = self.faults = 0

    def _params(self, given: dict[str, Any]) -> dict[str, Any]:
        known = PARAMS if self.filters else {}
        bad = sorted(set(given) - set(known))
        if bad:
            raise ValueError(
                f"{self.name} has no method parameter {', '.join(bad)}; known: "
                f"{', '.join(known) or 'none (no filters, no dampening)'} "
                "(method_params=KEY=VALUE)")
        params = {**known, **given}
        if self.filters:
            check_dampening(params["dampening"], params["beta"])
            if params["dampening"] == "inverse" and "beta" in given:
                raise ValueError("beta applies to dampening=exp only (inverse is 1/(1+τ)): "
                                 "drop method_params=beta")
        return params

    def _start(self, s: StepInput) -> None:
        cfg = self.setup.cfg
        self.models = s.theta.detach().clone()
        p = self.params
        self.state = ServerState(
            s.theta[0].detach().clone(), cfg.n, cfg.f, _norm, window=p.get("window", 64),
            beta=p.get("beta", 0.1), kind=p.get("dampening", "exp"), filters=self.filters,
            unsafe=cfg.unsafe)

    def _post(self, now: float, kind: str, row: int, version: int, vec: Any) -> None:
        """Schedule a gradient (``up``, worker -> server) or a model (``down``)."""
        node = self.order[row] + 1
        src, dst = (node, 0) if kind == "up" else (0, node)
        d = self.sched.delay(src, dst, None, now, self.rng)
        if d is None:
            self.held.append((kind, row, version, vec))
            return
        self.seq += 1
        heapq.heappush(self.heap, (now + float(d), self.seq, kind, row, version, vec))

    def _release(self, now: float) -> None:
        """Release the held messages once the scheduler heals (at its ``heal_at``)."""
        if not self.held or self.sched.heal_at is None or now < self.sched.heal_at:
            return
        self.sched.healed = True
        held, self.held = self.held, []
        for kind, row, version, vec in held:
            self.seq += 1
            d = self.sched.release_delay(0, 0, now, self.rng)
            heapq.heappush(self.heap, (now + d, self.seq, kind, row, version, vec))

    def _byzantine(self, s: StepInput) -> torch.Tensor:
        """``(b, d)``: what the Byzantine workers send at this step (rows: their order)."""
        setup = self.setup
        if setup.cfg.attack == "dissensus" and setup.attacked:
            vals, _ = two_sided(s.sent, setup.b, setup.scale)
            return vals[(np.arange(setup.b) >= (setup.b + 1) // 2).astype(int),
                        np.arange(setup.b)]
        byz = self.byzantine_vectors(s.sent, s.own, setup.hooks[0])
        return byz[0] if byz.ndim == 3 else byz  # per receiver: the server is the one

    def step(self, s: StepInput) -> torch.Tensor:
        if self.state is None:
            self._start(s)
        h, now = self.setup.h, float(s.t)
        byz = self._byzantine(s) if self.setup.b else s.sent[:0]
        for row in range(h + byz.shape[0]):
            if self.idle[row]:
                vec = s.sent[row] if row < h else byz[row - h]
                self.idle[row] = False
                self.up += 1
                self._post(now, "up", row, self.version[row], vec.detach().clone())
        self._release(now)
        while self.heap and self.heap[0][0] < now + 1:
            at, _, kind, row, version, vec = heapq.heappop(self.heap)
            self._release(at)
            if kind == "up":
                self._arrive(at, row, version, vec, s)
            else:
                self.version[row], self.idle[row] = version, True
                if row < h:
                    assert self.models is not None
                    self.models[row] = vec
        assert self.models is not None
        return self.models.clone()

    def _arrive(self, at: float, row: int, version: int, g: torch.Tensor,
                s: StepInput) -> None:
        """A gradient reaches the server: filter, apply, reply with the current model."""
        state = self.state
        assert state is not None
        if not bool(torch.isfinite(g).all()):
            self.faults += 1  # an invalid value: a fault, no reply
            return
        wd = self.setup.cfg.weight_decay
        upd = g + wd * state.model if wd else g
        state.process(self.order[row], version, upd, s.lr)
        self.down += 1
        self._post(at, "down", row, state.t, state.model)

    def traffic(self, d: int, itemsize: int) -> Traffic:
        messages = self.up + self.down
        st = self.state
        what = "" if st is None or not self.filters else (
            f"; {sum(st.stats.accepted.values())} accepted, "
            + ", ".join(f"{sum(c.values())} {k}" for k, c in st.stats.refused.items()))
        return Traffic(messages, messages * d * itemsize,
                       f"payload only: {self.up} gradients up, {self.down} models down"
                       f"{what}", faults=self.faults)


@register_method
class AsyncSGD(Kardam):
    """The baseline: the same asynchrony (module doc) with no filters and no dampening,
    ``x_{t+1} = x_t - γ_t·g_p`` for every valid gradient."""

    name = "async-sgd"
    filters = False


__all__ = ["PARAMS", "AsyncSGD", "Kardam"]
