"""ByzSGD (El Mhamdi, Guerraoui, Guirguis, Hoang, Rouault, "Genuinely distributed Byzantine
machine learning", PODC 2020) as a training method of the harness (``byzsgd``): Byzantine
workers AND Byzantine parameter servers, asynchronous first-quorum communication, simulated
in one process with every node's vectors as rows of tensors (docs/systems/byzsgd.md).

Nodes: the harness's ``n`` nodes are the *workers* (``f`` Byzantine, ``Setup.byz_ids``);
``n_ps = n_servers`` parameter servers, ``f_ps = f_servers`` of them Byzantine, ``h_ps =
n_ps - f_ps`` honest ones, each holding its own model ``x_i`` and SGD momentum (all start at
``θ_0``). Quorums: ``q_w = n - f`` gradients, ``q_ps = n_ps - f_ps`` models. Step ``t``
(``g_j``: honest worker j's gradient at its model ``θ_j``)::

    1. scatter  ĝ_i = rule(Q_i),  Q_i = the Byzantine workers' gradients (finite ones, the
                first q_w) + q_w - |Byz| honest g_j drawn at random per server;
                x_i <- x_i - η_t·u_i  (u_i: SGD momentum of ĝ_i + wd·x_i, per server)
    2. gather   if t ≡ 0 (mod T): x_i <- median(own x_i + the Byzantine servers' models +
                random other honest x_k, q_ps in all)     (coordinate-wise, numpy.median)
    3. pull     θ_j = model_rule(the Byzantine servers' models + random honest x_k, q_ps)

``rule`` is ``protocol`` (:func:`agreement.rules.make_rule` ``(protocol, f)``),
``model_rule`` is ``method_params["model_rule"]`` (default ``median``, ``make_rule(name,
f_ps)``), ``T = gather_every``. The random draws model asynchrony (different servers see
different subsets; the Byzantine vectors always arrive first, the worst case); they come
from the run's generator, so a seed fixes the run.

**Resilience** (checked unless ``unsafe``): ``n >= 3f + 1`` and ``n_ps >= 3·f_ps + 1``, so
that a quorum holds a strict honest majority beside its Byzantine members (``q_w >= 2f+1``,
``q_ps >= 2·f_ps + 1``), the precondition of a median or trimmed mean over it. With
``unsafe`` a rule whose size precondition the quorum misses runs with the largest ``f`` it
accepts (a warning says so).

**Guarantee.** The gather's median obeys the rank bound of
:func:`learning.protocols.gather.median_gather_bounds` (its module doc has the proof): per
coordinate, with ``L = floor((q_ps+1)/2) - f_ps``, every honest server's model after a
gather lies between the ``L``-th smallest and the ``L``-th largest honest model before it,
whatever the Byzantine servers send (validity; at ``n_ps = 3·f_ps + 1`` this is the honest
range, from ``n_ps >= 3·f_ps + 3`` a strict trimming). So is each worker's pulled model
under the median model rule. NOT guaranteed: a contraction of the honest servers' diameter
(the gather can leave it unchanged, gather.py), nor convergence rates of the paper (its
Lipschitz and outlier filters of the asynchronous workers are not run here).

**Byzantine servers** (``server_attack``): ``auto`` the run's ``attack`` applied to models
as in LEARN's parameter rounds (the attack hook on the honest server models, ``own`` = their
mean moved by the Byzantine workers' own step; ``dissensus``: the two-sided values of
:func:`~learning.methods.base.two_sided`; attack ``none``: silent); ``equivocate`` (receiver
``r`` gets ``μ + (-1)^r·a·u``, ``μ`` the honest servers' mean, ``u`` a random unit direction
per Byzantine server and call, ``a = equivocate_scale·(||μ|| + 1)``); ``stale`` (``θ_0``
forever); ``none`` (silent: quorums fill with honest models); or a learning attack's name
(:data:`learning.attacks.LEARNING_ATTACKS`) applied to models. Non-finite vectors never
enter a quorum. A per-receiver value attack's row ``r mod rows`` goes to receiver ``r``.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch

from agreement.rules import Rule, make_rule
from netsim.protocol import require_resilience

from ..attacks import LEARNING_ATTACKS, AttackHook, ValueAttackHook, attack_names, is_value_attack
from .base import Descent, Method, Setup, StepInput, Traffic, register_method, two_sided

SERVER_ATTACKS = ("auto", "equivocate", "none", "stale")
"""``server_attack`` values beside the learning attacks' names (module doc)."""

METHOD_PARAMS = ("equivocate_scale", "model_rule")
"""The ``method_params`` keys ``byzsgd`` reads."""


def check_servers(n_servers: int, f_servers: int, unsafe: bool = False) -> None:
    """``ValueError`` unless ``0 <= f_servers < n_servers`` and ``n_servers >= 3·f_servers + 1``
    (the latter only a warning with ``unsafe``): the servers' quorum ``q_ps = n_servers -
    f_servers`` then holds ``>= 2·f_servers + 1`` models, a strict honest majority."""
    if n_servers < 1 or not 0 <= f_servers < n_servers:
        raise ValueError(f"byzsgd needs n_servers >= 1 and 0 <= f_servers < n_servers, got "
                         f"n_servers={n_servers}, f_servers={f_servers}")
    if n_servers < 3 * f_servers + 1:
        msg = (f"byzsgd's servers need n_servers >= 3 x f_servers + 1 (n_servers={n_servers}, "
               f"f_servers={f_servers}: 3 x f_servers + 1 = {3 * f_servers + 1})")
        if not unsafe:
            raise ValueError(msg + "; pass unsafe=True to run it anyway")
        warnings.warn(msg + "; running with unsafe=True", RuntimeWarning, stacklevel=3)


def fit_rule(name: str, f: int, q: int, what: str, unsafe: bool) -> Rule:
    """``make_rule(name, f)`` if its least view size fits a quorum of ``q``; else
    ``ValueError`` (or, with ``unsafe``, the same rule at the largest ``f' < f`` that fits,
    with a warning)."""
    rule = make_rule(name, f)
    if rule.min_size() <= q:
        return rule
    msg = (f"byzsgd's {what} {name!r} needs {rule.min_size()} values with f={f}, but its "
           f"quorum holds {q}")
    if not unsafe:
        raise ValueError(msg + ": choose another rule, or more nodes")
    for g in range(f - 1, -1, -1):
        smaller = make_rule(name, g)
        if smaller.min_size() <= q:
            warnings.warn(f"{msg}; with unsafe=True it runs with f={g}", RuntimeWarning,
                          stacklevel=3)
            return smaller
    raise ValueError(msg + f" and needs more than {q} even with f=0")


def server_attack_kind(setup: Setup) -> tuple[str, Any]:
    """What the Byzantine servers send (module doc): ``(kind, hook)`` with kind one of
    ``none``, ``stale``, ``equivocate``, ``dissensus`` or ``hook`` (then ``hook`` is the
    attack hook applied to the honest server models)."""
    cfg = setup.cfg
    name: Any = cfg.attack if cfg.server_attack == "auto" else cfg.server_attack
    if cfg.server_attack not in SERVER_ATTACKS and not (
            cfg.server_attack in LEARNING_ATTACKS or is_value_attack(cfg.server_attack)):
        raise ValueError(f"unknown server_attack={cfg.server_attack!r}; known: "
                         f"{', '.join(sorted({*SERVER_ATTACKS, *attack_names()}))}")
    if cfg.f_servers == 0 or name == "none":
        return "none", None
    if name in ("stale", "equivocate", "dissensus"):
        return name, None
    params = cfg.attack_params if cfg.server_attack in ("auto", cfg.attack) else {}
    if is_value_attack(name):
        return "hook", ValueAttackHook(name, params, seed=cfg.seed * 2 + 2)
    return "hook", AttackHook(name, cfg.n_servers, cfg.f_servers, setup.gen, params)


@register_method
class ByzSGD(Method):
    """ByzSGD: servers aggregate first-quorum gradients with ``protocol``, gather their models
    with a coordinate-wise median every ``gather_every`` steps, workers pull a first quorum of
    server models through ``model_rule`` (module doc: the step, the guarantee, the attacks)."""

    name = "byzsgd"
    rule = "the servers' gradient rule"
    record_gathers: ClassVar[bool] = False
    """Keep ``(t, pre, post)`` of every gather in :attr:`gathers` (tests; memory ``2·h_ps·d``
    per gather)."""

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        cfg = setup.cfg
        check_servers(cfg.n_servers, cfg.f_servers, cfg.unsafe)
        require_resilience(cfg.n, cfg.f, 3, "byzsgd (its workers)", cfg.unsafe)
        bad = sorted(set(cfg.method_params) - set(METHOD_PARAMS))
        if bad:
            raise ValueError(f"byzsgd takes no method_params key {bad[0]!r}; it takes: "
                             f"{', '.join(METHOD_PARAMS)}")
        if cfg.gather_every < 1:
            raise ValueError(f"gather_every={cfg.gather_every}: must be >= 1 (steps)")
        self.n_ps, self.f_ps = cfg.n_servers, cfg.f_servers
        self.h_ps = self.q_ps = cfg.n_servers - cfg.f_servers
        self.q_w = cfg.n - cfg.f
        model_rule = str(cfg.method_params.get("model_rule", "median"))
        self.scale = float(cfg.method_params.get("equivocate_scale", 1.0))
        self.grad_rule = fit_rule(cfg.protocol, cfg.f, self.q_w, "servers' gradient rule",
                                  cfg.unsafe)
        self.model_rule = fit_rule(model_rule, self.f_ps, self.q_ps, "workers' model_rule",
                                   cfg.unsafe)
        self.gather_rule = fit_rule("median", self.f_ps, self.q_ps, "gather's median",
                                    cfg.unsafe)
        self.kind, self.hook = server_attack_kind(setup)
        self.x: torch.Tensor | None = None  # (h_ps, d) the honest servers' models
        self.theta0: torch.Tensor | None = None
        self.descent: Descent | None = None
        self.steps = 0
        self.n_gathers = 0
        self.gathers: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def _start(self, theta: torch.Tensor) -> None:
        """The servers' models and momenta from ``θ_0`` (the first honest worker's row)."""
        self.theta0 = theta[0].detach().clone()
        self.x = self.theta0.expand(self.h_ps, -1).clone()
        self.descent = Descent(self.setup.cfg, self.h_ps, theta.shape[1], theta.device,
                               theta.dtype)

    def step(self, s: StepInput) -> torch.Tensor:
        """Scatter (the servers descend on first-quorum aggregates of ``s.sent``), gather if
        ``t ≡ 0 (mod gather_every)``, pull: the workers' new models ``(h, d)`` (module doc)."""
        if self.x is None:
            self._start(s.theta)
        assert self.x is not None and self.descent is not None
        self.steps += 1
        ghat = self.aggregate_quorums(self.grad_rule, s.sent, self._worker_values(s),
                                      self.h_ps, self.q_w, own=False)
        self.x = self.descent(self.x, ghat, s.lr)
        if s.t % self.setup.cfg.gather_every == 0:
            pre = self.x
            byz = self._server_values(pre, s, self.h_ps, to_servers=True)
            self.x = self.aggregate_quorums(self.gather_rule, pre, byz, self.h_ps,
                                            self.q_ps, own=True)
            self.n_gathers += 1
            if self.record_gathers:
                self.gathers.append((s.t, pre.detach().clone(), self.x.detach().clone()))
        h = s.sent.shape[0]
        byz = self._server_values(self.x, s, h, to_servers=False)
        return self.aggregate_quorums(self.model_rule, self.x, byz, h, self.q_ps, own=False)

    def _worker_values(self, s: StepInput) -> torch.Tensor:
        """The Byzantine workers' gradients: ``(b, d)``, or ``(h_ps, b, d)`` per server."""
        setup = self.setup
        if not setup.attacked:
            return s.sent[:0]
        if setup.cfg.attack == "dissensus":  # server i gets side i mod 2
            vals, _ = two_sided(s.sent, setup.b, setup.scale)
            return vals[torch.arange(self.h_ps, device=vals.device) % 2]
        byz = self.byzantine_vectors(s.sent, s.own, setup.hooks[0])
        if byz.ndim == 3:
            byz = byz[torch.arange(self.h_ps, device=byz.device) % byz.shape[0]]
        return byz

    def _server_values(self, x: torch.Tensor, s: StepInput, receivers: int,
                       to_servers: bool) -> torch.Tensor:
        """The Byzantine servers' models for ``receivers`` receivers (the honest servers
        or the workers): ``(f', d)`` the same for all, or ``(receivers, f_ps, d)``."""
        f_ps, d, setup = self.f_ps, x.shape[1], self.setup
        if self.kind == "none":
            return x[:0]
        if self.kind == "stale":
            assert self.theta0 is not None
            return self.theta0.expand(f_ps, -1)
        mu = x.mean(dim=0)
        if self.kind == "equivocate":
            u = torch.randn((f_ps, d), generator=setup.gen, device=x.device, dtype=x.dtype)
            u = u / u.norm(dim=1, keepdim=True)
            sign = 1.0 - 2.0 * (torch.arange(receivers, device=x.device) % 2).to(x.dtype)
            amp = self.scale * (mu.norm() + 1.0)
            return mu + amp * sign[:, None, None] * u[None]
        if self.kind == "dissensus":  # servers by their side, workers alternately
            vals, side = two_sided(x, f_ps, setup.scale)
            idx = side if to_servers else np.arange(receivers) % 2
            return vals[torch.as_tensor(idx, device=x.device, dtype=torch.long)]
        b = setup.b
        own = mu - s.lr * s.own[torch.arange(f_ps, device=x.device) % b] if b \
            else mu.expand(f_ps, -1)
        self.hook.own = own
        out = self.hook(x, f_ps)
        if out.ndim == 3:
            out = out[torch.arange(receivers, device=out.device) % out.shape[0]]
        return out

    def aggregate_quorums(self, rule: Rule, honest: torch.Tensor, byz: torch.Tensor,
                     receivers: int, q: int, own: bool) -> torch.Tensor:
        """``(receivers, d)``: row ``i`` is ``rule`` over receiver ``i``'s first quorum of
        ``q``: the finite Byzantine vectors first (``byz`` ``(B, d)`` shared or
        ``(receivers, B, d)`` per receiver; at most ``q`` of them, ``q - 1`` with ``own``),
        then (``own``: honest row ``i`` itself, then) honest rows drawn at random."""
        h, d = honest.shape
        dev = honest.device
        per = byz.ndim == 3
        ok = torch.isfinite(byz).all(dim=-1)  # (B,) or (receivers, B)
        okr = ok if per else ok.expand(receivers, -1)
        take = okr & (okr.cumsum(dim=1) <= (q - 1 if own else q))
        need = q - take.sum(dim=1)
        keys = torch.rand((receivers, h), generator=self.setup.gen, device=dev)
        if own:
            idx = torch.arange(receivers, device=dev)
            keys[idx, idx] = -1.0
        pick = keys.argsort(dim=1).argsort(dim=1) < need[:, None]
        vals = torch.where(ok[..., None], byz, torch.zeros_like(byz))
        if per:
            bmask = torch.zeros((receivers, receivers, byz.shape[1]), dtype=torch.bool,
                                device=dev)
            idx = torch.arange(receivers, device=dev)
            bmask[idx, idx] = take
            bmask, vals = bmask.reshape(receivers, -1), vals.reshape(-1, d)
        else:
            bmask = take
        return rule.batch(torch.cat([honest, vals]), torch.cat([pick, bmask], dim=1))

    def traffic(self, d: int, itemsize: int) -> Traffic:
        cfg = self.setup.cfg
        messages = (self.steps * 2 * self.n_ps * cfg.n
                    + self.n_gathers * self.n_ps * (self.n_ps - 1))
        return Traffic(messages, messages * d * itemsize,
                       "payload only: per step n gradients to each of n_servers servers and "
                       "n_servers models to each of n workers; per gather n_servers(n_servers-1) "
                       "models (every sender counted, the Byzantine ones too)")


__all__ = ["METHOD_PARAMS", "SERVER_ATTACKS", "ByzSGD", "check_servers", "fit_rule",
           "server_attack_kind"]
