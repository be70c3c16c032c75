"""LEARN (docs/theory.md §6) and the baselines, simulated for n nodes in one process.

Every honest node ``j`` starts from the same ``θ_0`` (one seed). At step ``t = 1, 2, ...``::

    g_j  = ∇ℓ(θ_j; local mini-batch)                       (worker momentum: m_j = β_w·m_j + g_j,
                                                             and m_j is agreed on instead of g_j)
    ĝ_j  = AvgAgree_{T_t}(g)     T_t rounds: by default the proven count (below)
    u_j  = ĝ_j + wd·θ_j          (SGD momentum: b_j = β·b_j + u_j, u_j = b_j)
    θ_j <- θ_j - η_t·u_j
    θ_j <- AvgAgree_1(θ)         one round on the parameters

``AvgAgree`` is the agreement layer's protocol by name (:data:`agreement.CONFIGS`:
trimmed-mean, mda, mve, median, krum, mean), at the round level
(:class:`agreement.engine.RoundEngine`: the adversary picks every honest view among those
reliable broadcast + witnesses allow, the honest rules run as one batched tensor operation,
torch tensors stay on their device) or at the message level (:func:`agreement.run` with
``engine="message"``: the sans-IO protocols in netsim's simulator, every message through the
codec). With a C-averaging agreement the honest models agree (``Δ2(θ) <= δ``) and
``||∇L̄(θ̄)|| <= (1+δ)·C·K`` (docs/theory.md §2, §6; K bounds the heterogeneity of honest
gradients). The resilience of the protocol (where its proven contraction is below 1: trimmed-mean
n >= 3f+1, mda/mve κ(n,f) < 1, i.e. n >= 5, 10, 14 at f = 1, 2, 3;
:func:`agreement.protocol.check_resilience`) is checked unless ``unsafe``.

Gradient rounds per step (``rounds``):

- ``"proven"`` (default): docs/theory.md §6 needs the gradient agreement of step t to contract the
  honest ℓ2 diameter by ``2^-N_t``, ``N_t = max(1, ceil(log2 t))``. The rounds are the least
  T that the protocol's proven constants guarantee for that target,
  ``agreement.constants.rounds_for_target(protocol, n, f, d, 2^-N_t, 1.0)``: trimmed-mean
  ``min(√d, √(n-1))·λ^T <= 2^-N_t`` with ``λ = f/(n-2f)`` (proofs/trimmed_mean.md, Cor. 4),
  i.e. ``T = ceil((N_t + ½·log2 min(d, n-1)) / log2(1/λ))``; mda ``κ^T <= 2^-N_t``
  (proofs/mda.md). 19 rounds at t = 64 for n = 10, f = 3 with d >= 9 (6 with ``"log"``).
  The count only changes when N_t does (cached per N_t). A protocol without a proven
  contraction (median, krum, mean, mve) has no such count: ``rounds="log"`` or an integer.
- ``"log"``: ``N_t`` raw rounds, the paper's count. The theorem's guarantee does NOT cover
  it: N_t rounds contract by ``λ^N_t``, not ``2^-N_t`` (e.g. 2.4-2.7x too few rounds at
  n = 7, f = 2 and n = 10, f = 3).
- an integer: that many rounds at every step (no guarantee either).

Baselines in the same harness (same data, model, seeds, attacks):

- ``local``: every honest node trains alone (no communication, so no attack reaches it);
- ``dsgd``: plain decentralized averaging on the complete graph: a local SGD step, then
  ``θ_j <- mean`` of the n parameter vectors node j receives (the Byzantine ones included;
  the two-sided ``dissensus`` attack sends different values to the two halves of the honest
  nodes, as nothing stops an equivocation without reliable broadcast);
- ``server``: a trusted server aggregates the n gradients with a robust rule of
  :mod:`agreement.rules` (mean, median, trimmed-mean, krum, geometric-median, mda, ...) and
  every honest node applies the one aggregate.

Non-finite vectors are invalid everywhere (the codec refuses them): they enter no average.
Byzantine nodes hold data (node ids ``0..f-1`` by default), compute their gradients at the
honest mean ``θ̄`` (the adversary is omniscient) and send what the attack makes of them
(:mod:`learning.attacks`).

Each method is one class of :mod:`learning.methods` behind its ``Method`` interface
(``step(s) -> new honest parameters``, ``traffic(d, itemsize)``), by name in
:data:`METHODS`; :func:`train` only sets up, loops, evaluates and reports. Adding a method
(e.g. ByzSGD) is one new ``Method`` subclass and one entry of ``METHODS``: no other method and
no line of :func:`train` changes (see :mod:`learning.methods`).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from agreement import constants, get_config
from agreement.rules import kernels
from netsim.registry import unknown

from .attacks import LEARNING_ATTACKS, AttackHook, ValueAttackHook, check_attack, is_value_attack
from .data import Dataset, NodeData, load_dataset, split
from .methods import (
    METHODS,
    PROTOCOL_STRATEGIES,
    Descent,
    Method,
    Setup,
    StepInput,
    Task,
    calibrate_round,
    protocol_strategies,
)
from .models import Swarm, diameter, make_model


def log_target(t: int) -> int:
    """``N_t = max(1, ceil(log2 t))`` (docs/theory.md §6): step t's gradient agreement should
    contract the honest ℓ2 diameter by ``2^-N_t``."""
    if t < 1:
        raise ValueError(f"steps count from 1, got t={t}")
    return max(1, math.ceil(math.log2(t))) if t > 1 else 1


PROVEN_PROTOCOLS = ("trimmed-mean", "mda", "ball-mda")
"""The protocols with a proven contraction, hence a proven round count (``rounds="proven"``)."""


def check_proven(protocol: str) -> None:
    """``ValueError`` unless ``protocol`` has a proven contraction, i.e. a proven round count
    for ``rounds="proven"``."""
    if protocol not in PROVEN_PROTOCOLS:
        get_config(protocol)  # an unknown name: the list of names
        raise ValueError(
            f'rounds="proven" needs a proven contraction, and the {protocol} protocol has none '
            f'(agreement.constants.rounds_for_target): pass rounds="log" (N_t = ceil(log2 t) '
            "rounds, not covered by the theorem's guarantee) or an integer number of rounds"
        )


@functools.lru_cache(maxsize=4096)
def proven_rounds(protocol: str, n: int, f: int, d: int, halvings: int) -> int:
    """The least T whose proven guarantee contracts the honest ℓ2 diameter by ``2^-halvings``:
    ``agreement.constants.rounds_for_target(protocol, n, f, d, 2^-halvings, 1.0)`` (module
    doc). Cached: in LEARN it changes only when N_t does."""
    check_proven(protocol)
    try:
        return constants.rounds_for_target(protocol, n, f, d, delta=2.0**-halvings,
                                           input_diameter=1.0)
    except ValueError as exc:  # below the protocol's resilience (an unsafe run)
        raise ValueError(
            f"{exc}: below its resilience no round count is proven; with unsafe=True pass "
            'rounds="log" or an integer number of rounds'
        ) from None


@dataclass
class TrainConfig:
    """One training run (see the module doc and ``python -m learning train --help``)."""

    dataset: str | Dataset = "digits"
    model: str | nn.Module = "mlp"
    n: int = 10
    f: int = 3
    attack: str | Callable[..., Any] = "none"
    """A learning attack (:mod:`learning.attacks`), a netsim protocol-level strategy
    (message engine), or a numpy value attack: a function ``fn(honest, f, rng, **params)``
    or a name registered with ``agreement.attacks.register_value_attack``."""
    attack_params: dict[str, Any] = field(default_factory=dict)
    method: str = "learn"
    protocol: str = "trimmed-mean"
    steps: int = 300
    batch_size: int = 32
    lr: float = 0.1
    lr_schedule: str = "constant"
    lr_decay_every: int = 100
    lr_gamma: float = 0.2
    momentum: float = 0.9
    worker_momentum: float = 0.0
    weight_decay: float = 5e-4
    rounds: int | str = "proven"
    param_rounds: int = 1
    engine: str = "round"
    views: str = "random"
    split: str = "dirichlet"
    alpha: float = 1.0
    labels_per_node: int = 2
    hidden: int = 64
    byzantine_ids: list[int] | None = None
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    eval_every: int = 50
    data_dir: str | None = None
    unsafe: bool = False
    n_servers: int = 7
    """byzsgd: parameter servers ``n_ps`` (``n_ps >= 3·f_servers + 1`` unless unsafe)."""
    f_servers: int = 2
    """byzsgd: Byzantine servers ``f_ps`` (ids ``0..f_ps-1`` among the servers)."""
    gather_every: int = 10
    """byzsgd: ``T``, the steps of a scatter phase; the servers gather after each."""
    server_attack: str = "auto"
    """byzsgd: what the Byzantine servers send the workers and the other servers (``auto``:
    the run's ``attack`` applied to models, as in LEARN's parameter rounds)."""
    topology: str = "ring"
    """choco: the gossip graph (ring, torus, complete)."""
    compression: str = "topk:0.01"
    """choco: the compression of the gossiped differences (topk:FRACTION, randk:FRACTION,
    sign, none)."""
    consensus_lr: float | None = None
    """choco: the consensus step size ``γ`` (``None``: the method's default)."""
    scheduler: str = "heavy-tail"
    """kardam: the netsim scheduler whose delays make the workers' gradients stale."""
    method_params: dict[str, Any] = field(default_factory=dict)
    """A method's further knobs by name (``--method-param KEY=VALUE``), checked by the
    method."""

    def validate(self) -> None:
        if self.method not in METHODS:
            raise unknown("method", self.method, METHODS)
        if self.n < 1 or not 0 <= self.f < self.n:
            raise ValueError(f"needs n >= 1 and 0 <= f < n, got n={self.n}, f={self.f}")
        if isinstance(self.attack, str) and self.attack in protocol_strategies():
            if not METHODS[self.method].agreement or self.engine != "message":
                raise ValueError(f"{self.attack!r} is a protocol-level strategy of netsim: it "
                                 "runs with --method learn --engine message")
        elif not is_value_attack(self.attack):
            if not isinstance(self.attack, str):
                raise ValueError(f"attack must be a name or a value-attack function, got "
                                 f"{type(self.attack).__name__}")
            check_attack(self.attack, self.attack_params)
        if self.engine not in ("round", "message"):
            raise ValueError(f"unknown engine {self.engine!r}; known: message, round")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.lr_schedule not in ("constant", "step", "cosine"):
            raise ValueError(f"unknown lr schedule {self.lr_schedule!r}; "
                             "known: constant, cosine, step")
        if not (0 <= self.momentum < 1 and 0 <= self.worker_momentum < 1):
            raise ValueError("momentum values must be in [0, 1)")
        if self.momentum and self.worker_momentum:
            raise ValueError(
                "worker momentum moves SGD momentum before agreement: use one of momentum "
                f"({self.momentum}) and worker_momentum ({self.worker_momentum}), the other 0 "
                "(both compound to an effective step of lr/((1-β)(1-β_w)))"
            )
        if self.rounds not in ("proven", "log") and (
                not isinstance(self.rounds, int) or isinstance(self.rounds, bool)
                or self.rounds < 1):
            raise ValueError(
                f"rounds must be 'proven', 'log' or an integer >= 1, got {self.rounds!r}")
        if METHODS[self.method].agreement and self.rounds == "proven":
            check_proven(self.protocol)
        if self.param_rounds < 0:
            raise ValueError("param_rounds must be >= 0")
        if self.views not in ("random", "omniscient"):
            raise ValueError(f"unknown views {self.views!r}; known: omniscient, random")

    def rounds_at(self, t: int, d: int | None = None) -> int:
        """Gradient agreement rounds at step ``t`` (module doc): ``"proven"``:
        :func:`proven_rounds` for the target ``2^-N_t`` in dimension ``d`` (needed);
        ``"log"``: ``N_t = max(1, ceil(log2 t))`` (not covered by the theorem); or the fixed
        count."""
        if self.rounds == "proven":
            if d is None:
                raise ValueError("rounds='proven' needs the dimension d of the gradients")
            return proven_rounds(self.protocol, self.n, self.f, d, log_target(t))
        if self.rounds == "log":
            return log_target(t)
        return int(self.rounds)

    def lr_at(self, t: int) -> float:
        if self.lr_schedule == "step":
            return self.lr * self.lr_gamma ** ((t - 1) // self.lr_decay_every)
        if self.lr_schedule == "cosine":
            return 0.5 * self.lr * (1 + math.cos(math.pi * (t - 1) / self.steps))
        return self.lr


@dataclass
class TrainResult:
    """What a run produced; :meth:`as_dict` is the ``--json`` object."""

    config: dict[str, Any]
    accuracy_mean: float | None
    accuracy_min: float | None
    accuracies: list[float]
    loss: float
    test_loss: float
    diameter: float
    messages: int
    bytes: int
    traffic: str
    wall_time: float
    step_time: float  # mean wall time of a step, evaluation excluded, first 5 steps skipped
    history: list[dict[str, float | None]]
    agreement_rounds: int
    gradient_rounds: list[int] = field(default_factory=list)  # per step (method learn)
    faults: int = 0
    distance_to_optimum: float | None = None
    grad_norm: float | None = None
    final_params: torch.Tensor | None = None
    round_time: float | None = None
    """Mean wall time of one agreement round (seconds; method learn: its gradient and
    parameter rounds, the attack's computation included, first 5 steps skipped); ``None``
    for the methods without agreement rounds."""

    def as_dict(self) -> dict[str, Any]:
        cfg = self.config
        out = {
            "accuracy_mean": self.accuracy_mean, "accuracy_min": self.accuracy_min,
            "accuracies": self.accuracies, "loss": self.loss, "test_loss": self.test_loss,
            "diameter": self.diameter, "steps": cfg["steps"], "attack": cfg["attack"],
            "protocol": cfg["protocol"], "method": cfg["method"], "n": cfg["n"],
            "f": cfg["f"], "seed": cfg["seed"], "dataset": cfg["dataset"],
            "model": cfg["model"], "alpha": cfg["alpha"], "engine": cfg["engine"],
            "device": cfg["device"], "messages": self.messages, "bytes": self.bytes,
            "traffic": self.traffic, "faults": self.faults,
            "agreement_rounds": self.agreement_rounds, "rounds": cfg.get("rounds"),
            "gradient_rounds": self.gradient_rounds, "wall_time": self.wall_time,
            "step_time": self.step_time, "history": self.history,
        }
        if self.distance_to_optimum is not None:
            out["distance_to_optimum"] = self.distance_to_optimum
            out["grad_norm"] = self.grad_norm
        return out


def prepare(cfg: TrainConfig) -> tuple[Dataset, nn.Module]:
    ds = cfg.dataset if isinstance(cfg.dataset, Dataset) else load_dataset(
        cfg.dataset, n=cfg.n, data_dir=cfg.data_dir, seed=cfg.seed)
    if isinstance(cfg.model, nn.Module):
        model = cfg.model
    else:
        torch.manual_seed(cfg.seed)
        model = make_model(cfg.model, ds.input_shape, ds.out_dim, hidden=cfg.hidden)
    return ds, model


_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _node_ids(cfg: TrainConfig) -> tuple[list[int], list[int]]:
    """``(byzantine ids, honest ids)``: ``cfg.byzantine_ids`` (default ``0..f-1``), at most f
    of them in ``range(n)``."""
    n, f = cfg.n, cfg.f
    byz_ids = sorted(range(f) if cfg.byzantine_ids is None else set(cfg.byzantine_ids))
    if len(byz_ids) > f or any(not 0 <= i < n for i in byz_ids):
        raise ValueError(f"byzantine_ids must be at most f={f} ids in range({n})")
    return byz_ids, [i for i in range(n) if i not in set(byz_ids)]


class _Evaluator:
    """Every honest model on the test set: its accuracy (classification, binary), the mean
    test loss and the honest ℓ2 diameter ``Δ2(θ)``."""

    def __init__(self, swarm: Swarm, ds: Dataset, device: torch.device,
                 dtype: torch.dtype) -> None:
        from .models import loss_fn

        self.swarm, self.task, self.dtype = swarm, ds.task, dtype
        self.loss = loss_fn(ds.task)
        self.x = torch.as_tensor(ds.x_test, dtype=dtype, device=device)
        self.y = torch.as_tensor(ds.y_test, device=device)
        if ds.task != "classification":
            self.y = self.y.to(dtype)

    def __call__(self, th: torch.Tensor) -> dict[str, Any]:
        out = self.swarm.forward(th, self.x)  # (h, N, out)
        y = self.y
        per = torch.stack([self.loss(out[j], y) for j in range(out.shape[0])]) \
            if self.task != "classification" else torch.nn.functional.cross_entropy(
                out.reshape(-1, out.shape[-1]), y.repeat(out.shape[0]),
                reduction="none").reshape(out.shape[0], -1).mean(1)
        accs: list[float] = []
        if self.task == "classification":
            accs = (out.argmax(-1) == y).float().mean(1).tolist()
        elif self.task == "binary":
            accs = ((out.squeeze(-1) > 0).to(self.dtype) == y).float().mean(1).tolist()
        return {"accs": accs, "test_loss": float(per.mean()), "diameter": diameter(th)}


def _history_entry(t: int, ev: dict[str, Any], loss: torch.Tensor) -> dict[str, float | None]:
    """One row of ``TrainResult.history`` (a non-finite test loss is ``None``)."""
    accs = ev["accs"]
    return {
        "step": t, "accuracy_mean": float(np.mean(accs)) if accs else None,
        "accuracy_min": float(np.min(accs)) if accs else None,
        "test_loss": ev["test_loss"] if math.isfinite(ev["test_loss"]) else None,
        "diameter": ev["diameter"], "loss": float(loss.mean()),
    }


class _Models:
    """The n models being trained (rows: honest first, then Byzantine) and what a step shares
    across methods: the Byzantine rows at ``θ̄``, the local gradients, the worker momentum."""

    def __init__(self, cfg: TrainConfig, setup: Setup, ds: Dataset, model: nn.Module,
                 device: torch.device, dtype: torch.dtype) -> None:
        n, h = cfg.n, setup.h
        self.cfg, self.h, self.b, self.gen = cfg, h, setup.b, setup.gen
        self.parts = split(ds, n, cfg.split, alpha=cfg.alpha,
                           labels_per_node=cfg.labels_per_node, seed=cfg.seed)
        order = setup.honest_ids + setup.byz_ids  # rows: honest first, then Byzantine
        flip = list(range(h, n)) if cfg.attack == "label-flip" else []
        self.data = NodeData(ds, [self.parts[i] for i in order], device, dtype, flip=flip)
        self.swarm = Swarm(model.to(device=device, dtype=dtype), ds.task, l2=ds.l2)
        d = self.d = self.swarm.d
        self.theta = self.swarm.init.to(device=device, dtype=dtype).expand(n, d).clone()
        self.wmom = torch.zeros((n, d), device=device, dtype=dtype)
        self.descent = Descent(cfg, h, d, device, dtype)
        self.flip_mean = cfg.attack == "label-flip-mean" and setup.b > 0
        self.task, self.classes = ds.task, getattr(ds, "num_classes", 0)

    def flipped(self, y: torch.Tensor) -> torch.Tensor:
        """The labels ``y`` flipped as the label-flip attacks flip them: ``C-1-y``
        (classification), ``1-y`` (binary), ``-y`` (regression)."""
        if self.task == "classification":
            return self.classes - 1 - y
        return 1 - y if self.task == "binary" else -y

    def flipped_mean(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """``(d,)``: ``mean_j ∇ℓ(θ_j; x_j, C-1-y_j)`` over the honest nodes j, at their own
        models and on their own mini-batches (label-flip-mean; one extra batched gradient
        call)."""
        h = self.h
        g, _ = self.swarm.grads(self.theta[:h], xb[:h], self.flipped(yb[:h]))
        return g.mean(dim=0)

    def step(self, method: Method, t: int) -> torch.Tensor:
        """Step ``t`` of ``method``: the honest rows become ``method.step(...)``; returns the
        mini-batch losses of the n nodes."""
        cfg, h, theta = self.cfg, self.h, self.theta
        lr = cfg.lr_at(t)
        th = theta[:h]
        mean_prev = th.mean(dim=0)
        if self.b:
            theta[h:] = mean_prev
        xb, yb = self.data.sample(cfg.batch_size, self.gen)
        g, loss = self.swarm.grads(theta, xb, yb)
        if self.flip_mean:  # the Byzantine rows: the honest mean on flipped labels
            g[h:] = self.flipped_mean(xb, yb)
        if cfg.worker_momentum:
            self.wmom.mul_(cfg.worker_momentum).add_(g)
            send = self.wmom
        else:
            send = g
        try:
            theta[:h] = method.step(StepInput(t, lr, th, mean_prev, send[:h], send[h:],
                                              self.descent))
        except ValueError as exc:  # a rule refuses non-finite views: say why they are
            if bool(torch.isfinite(send[:h]).all()):
                raise
            raise ValueError(
                f"training diverged at step {t}: the honest nodes' gradients are not finite "
                f"(NaN or inf), so no rule can aggregate them; lower --lr (now {lr:g}) or "
                "decay it (--lr-schedule step|cosine)") from exc
        return loss


def _hooks(cfg: TrainConfig, gen: torch.Generator, b: int
           ) -> list[AttackHook | ValueAttackHook | None]:
    """The attack hooks of the gradient and the parameter rounds: a learning attack's
    :class:`AttackHook`, a value attack's :class:`ValueAttackHook` (its own numpy generator
    per kind of round, from the run's seed), or ``None`` (no vector function, or b = 0)."""
    if b == 0:
        return [None, None]
    if is_value_attack(cfg.attack):
        return [ValueAttackHook(cfg.attack, cfg.attack_params, seed=cfg.seed * 2 + salt)
                for salt in range(2)]
    use = isinstance(cfg.attack, str) and LEARNING_ATTACKS.get(cfg.attack) is not None
    return [AttackHook(cfg.attack, cfg.n, cfg.f, gen, cfg.attack_params) if use else None
            for _ in range(2)]


def _preload_kernel(cfg: TrainConfig, method: Method, device: torch.device, d: int) -> None:
    """Load the coordinate-wise rules' compiled kernel at the start of a run whose rule calls
    will reach ``agreement.rules.kernels.AMORTISE_ELEMENTS`` values (per step at least ``n``
    views of ``n`` rows for a method that agrees, one ``n``-row view for a server's rule):
    the switch the kernels would make after that many values, made at the start since the
    run's length is known. The same bits either way."""
    if device.type != "cpu" or method.rule is None or not any(
            r in cfg.protocol for r in ("trimmed-mean", "median")):
        return
    per_step = cfg.n * cfg.n * d if method.agreement else cfg.n * d
    if cfg.steps * per_step >= kernels.AMORTISE_ELEMENTS:
        kernels.preload()


def train(cfg: TrainConfig, progress: Any = None) -> TrainResult:
    """Run one configuration (``progress(step, metrics)`` is called after every step): set up
    the method of ``cfg.method`` (:data:`learning.methods.METHODS`), the data and the models,
    run ``cfg.steps`` steps of it, evaluate every ``eval_every`` steps and report."""
    cfg.validate()
    device, dtype = torch.device(cfg.device), _DTYPES[cfg.dtype]
    byz_ids, honest_ids = _node_ids(cfg)
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    hooks = _hooks(cfg, gen, len(byz_ids))
    setup = Setup(cfg, byz_ids, honest_ids, hooks, gen)
    ds, model = prepare(cfg)
    models = _Models(cfg, setup, ds, model, device, dtype)
    setup.task = Task(models.swarm, ds, models.data, device, dtype)
    method = METHODS[cfg.method](setup)
    _preload_kernel(cfg, method, device, int(models.theta.shape[1]))
    evaluate = _Evaluator(models.swarm, ds, device, dtype)
    h = setup.h
    history: list[dict[str, float | None]] = []
    losses: list[float] = []
    step_times: list[float] = []
    t0 = time.perf_counter()
    for t in range(1, cfg.steps + 1):
        ts = time.perf_counter()
        loss = models.step(method, t)
        losses.append(float(loss[:h].mean()) if t % 10 == 0 or t == cfg.steps else math.nan)
        step_times.append(time.perf_counter() - ts)
        if t % cfg.eval_every == 0 or t == cfg.steps:
            history.append(_history_entry(t, evaluate(models.theta[:h]), loss[:h]))
        if progress is not None:
            progress(t, history[-1] if history else {})
    wall = time.perf_counter() - t0
    result = _result(cfg, method, models, evaluate(models.theta[:h]), losses, step_times, history,
                     wall)
    if ds.task in ("regression", "binary"):
        _add_optimum(result, ds, models, honest_ids)
    return result


def _result(cfg: TrainConfig, method: Method, models: _Models, ev: dict[str, Any],
            losses: list[float], step_times: list[float],
            history: list[dict[str, float | None]], wall: float) -> TrainResult:
    """The :class:`TrainResult` of a finished run (``ev``: the final evaluation)."""
    accs = ev["accs"]
    traffic = method.traffic(models.d, 4 if cfg.dtype == "float32" else 8)
    finite = [x for x in losses if math.isfinite(x)]
    return TrainResult(
        config={k: (v if isinstance(v, (int, float, str, bool, type(None), list, dict))
                    else getattr(v, "name", type(v).__name__)) for k, v in asdict_safe(cfg)},
        accuracy_mean=float(np.mean(accs)) if accs else None,
        accuracy_min=float(np.min(accs)) if accs else None,
        accuracies=[float(a) for a in accs],
        loss=float(np.mean(finite[-5:])) if finite else math.nan,
        test_loss=ev["test_loss"], diameter=ev["diameter"], messages=int(traffic.messages),
        bytes=int(traffic.bytes), traffic=traffic.description, wall_time=wall,
        step_time=float(np.mean(step_times[5:] if len(step_times) > 10 else step_times)),
        history=history, agreement_rounds=traffic.rounds,
        gradient_rounds=method.gradient_rounds, faults=traffic.faults,
        final_params=models.theta[:models.h].detach().clone(),
        round_time=method.round_time() if hasattr(method, "round_time") else None,
    )


def _add_optimum(result: TrainResult, ds: Dataset, models: _Models, honest_ids: list[int]) -> None:
    """Synthetic tasks with a known optimum: ``||θ̄ - θ*||`` and the honest full-batch
    gradient norm ``||∇L̄(θ̄)||`` at the honest mean."""
    theta, h, d = models.theta, models.h, models.d
    device, dtype = theta.device, theta.dtype
    opt = torch.as_tensor(ds.optimum([models.parts[i] for i in honest_ids]), device=device)
    mean = theta[:h].double().mean(dim=0)
    result.distance_to_optimum = float(torch.linalg.norm(mean - opt))
    full = torch.as_tensor(np.stack([ds.x_train[models.parts[i]] for i in honest_ids]),
                           dtype=dtype, device=device)
    ys = torch.as_tensor(np.stack([ds.y_train[models.parts[i]] for i in honest_ids]),
                         dtype=dtype, device=device)
    gfull, _ = models.swarm.grads(mean.to(dtype).expand(h, d).contiguous(), full, ys)
    result.grad_norm = float(torch.linalg.norm(gfull.double().mean(dim=0)))


def asdict_safe(cfg: TrainConfig) -> list[tuple[str, Any]]:
    """The config's fields (a Dataset or a module by name)."""
    out = []
    for k in cfg.__dataclass_fields__:
        v = getattr(cfg, k)
        if isinstance(v, Dataset):
            v = v.name
        elif isinstance(v, nn.Module):
            v = type(v).__name__
        elif callable(v):  # a value-attack function
            v = getattr(v, "__name__", type(v).__name__)
        out.append((k, v))
    return out


__all__ = ["METHODS", "PROTOCOL_STRATEGIES", "PROVEN_PROTOCOLS", "TrainConfig", "TrainResult",
           "calibrate_round", "check_proven", "log_target", "proven_rounds", "train"]
