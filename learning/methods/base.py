"""The contract every training method of :func:`learning.learn.train` keeps, and its registry.

A step of every method starts from the same place (:class:`StepInput`): the honest
parameters ``θ_j`` (rows ``0..h-1``), their mean ``θ̄``, and the vectors the honest nodes
send, ``g_j`` (the local gradient, or the worker momentum ``m_j``), beside the Byzantine
nodes' own vectors (computed at ``θ̄``). :meth:`Method.step` returns the new honest
parameters; between its communication it applies the shared SGD update
:meth:`StepInput.descend` ``θ_j - η_t·u_j`` with ``u_j`` the SGD momentum of
``ĝ_j + wd·θ_j``.

**Adding a method**: write one subclass of :class:`Method` (in any module), with
``__init__(setup)`` for its set-up and checks, ``step(s)`` for one step and, if it
communicates, ``traffic(d, itemsize)``; set ``agreement = True`` if it runs the agreement
layer with ``rounds`` gradient rounds per step (then ``rounds="proven"`` is checked and
netsim's protocol-level strategies may attack it); and register it with
:func:`register_method` (it joins :data:`METHODS`, the one table ``train``, ``compare`` and
``--method`` read). No other method and no line of :func:`learning.learn.train` changes.
:class:`Setup` gives a method everything a run has: its configuration, who is Byzantine, the
attack hooks, the run's generator and (:attr:`Setup.task`) the model, the nodes' data and a
loss oracle for methods that evaluate candidate models (Zeno).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from agreement.attacks import split as split_values
from agreement.attacks import split_sides
from netsim.adversary import STRATEGIES
from netsim.registry import register

from ..attacks import AttackHook, ValueAttackHook

if TYPE_CHECKING:
    from ..data import Dataset, NodeData
    from ..learn import TrainConfig
    from ..models import Swarm

PROTOCOL_STRATEGIES = tuple(sorted(set(STRATEGIES) - {"honest", "silent"}))
"""netsim's built-in protocol-level Byzantine strategies (message engine only)."""


def protocol_strategies() -> tuple[str, ...]:
    """netsim's protocol-level Byzantine strategies now, those registered with
    :func:`netsim.adversary.register_strategy` included (message engine only)."""
    return tuple(sorted(set(STRATEGIES) - {"honest", "silent"}))


@dataclass
class Setup:
    """What a method is built from: the run's configuration, who is Byzantine, the attack
    hooks (``hooks[0]`` for gradient rounds, ``hooks[1]`` for parameter rounds; ``None``
    where the attack has no vector function or there is no Byzantine node) and the run's
    torch generator (the one stream of randomness of a run) and the run's :class:`Task`."""

    cfg: TrainConfig
    byz_ids: list[int]
    honest_ids: list[int]
    hooks: list[AttackHook | ValueAttackHook | None]
    gen: torch.Generator
    task: Task | None = None
    """The model, the data and a loss oracle (set by :func:`learning.learn.train` before the
    method is built; ``None`` for a method built outside a run)."""

    @property
    def h(self) -> int:
        return len(self.honest_ids)

    @property
    def b(self) -> int:
        return len(self.byz_ids)

    @property
    def attacked(self) -> bool:
        return self.cfg.attack != "none" and self.b > 0

    @property
    def scale(self) -> float:
        """The dissensus attack's scale (default 0.5)."""
        return float(self.cfg.attack_params.get("scale", 0.5))


@dataclass
class Task:
    """What a run trains, for the methods that need more than the vectors: the model's
    :class:`~learning.models.Swarm` (``d`` parameters as a row), the dataset, every node's
    data (rows: honest nodes first, then Byzantine) and the device and dtype."""

    swarm: Swarm
    dataset: Dataset
    data: NodeData
    device: torch.device
    dtype: torch.dtype

    def losses(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(k,)``: the loss of each row of ``theta`` ``(k, d)`` on the one batch ``(x, y)``
        (the training loss, ``l2`` term included)."""
        k = theta.shape[0]
        _, loss = self.swarm.grads(theta, x.expand(k, *x.shape), y.expand(k, *y.shape))
        return loss

    def validation_batch(self, size: int, gen: torch.Generator
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` training samples drawn uniformly (with replacement, ``gen``) from the whole
        training set: a trusted server's small clean validation batch (Zeno's)."""
        ds = self.dataset
        idx = torch.randint(len(ds.y_train), (size,), generator=gen, device=gen.device)
        idx = idx.cpu().numpy()
        x = torch.as_tensor(ds.x_train[idx], dtype=self.dtype, device=self.device)
        ydt = torch.long if ds.task == "classification" else self.dtype
        return x, torch.as_tensor(ds.y_train[idx], dtype=ydt, device=self.device)


class Descent:
    """The shared SGD update of every method: ``u = ĝ + wd·θ``, with SGD momentum
    ``b <- β·b + u, u <- b``, then ``θ - η·u`` (the momentum buffer ``b`` is this object's)."""

    def __init__(self, cfg: TrainConfig, h: int, d: int, device: torch.device,
                 dtype: torch.dtype) -> None:
        self.weight_decay, self.momentum = cfg.weight_decay, cfg.momentum
        self.buf = torch.zeros((h, d), device=device, dtype=dtype)

    def __call__(self, theta: torch.Tensor, ghat: torch.Tensor, lr: float) -> torch.Tensor:
        upd = ghat + self.weight_decay * theta if self.weight_decay else ghat
        if self.momentum:
            self.buf.mul_(self.momentum).add_(upd)
            upd = self.buf
        return theta - lr * upd


@dataclass
class StepInput:
    """One step ``t`` (learning rate ``lr = η_t``) as every method sees it."""

    t: int
    lr: float
    theta: torch.Tensor  # (h, d) honest parameters before the step
    mean: torch.Tensor  # (d,) their mean θ̄, where the Byzantine nodes compute
    sent: torch.Tensor  # (h, d) what the honest nodes send: gradients or worker momenta
    own: torch.Tensor  # (b, d) the Byzantine nodes' own vectors (at θ̄)
    descent: Descent

    def descend(self, ghat: torch.Tensor) -> torch.Tensor:
        """``θ - η_t·u`` for the aggregate ``ĝ`` (:class:`Descent`)."""
        return self.descent(self.theta, ghat, self.lr)


@dataclass
class Traffic:
    """What a run sent: messages, bytes, how they were counted, recorded faults and
    agreement rounds."""

    messages: int
    bytes: int
    description: str
    faults: int = 0
    rounds: int = 0


class Method:
    """One training method: built once per run from a :class:`Setup` (its checks and
    set-up), then :meth:`step` once per step, then :meth:`traffic` once."""

    name: ClassVar[str]
    agreement: ClassVar[bool] = False
    """True if the method runs the agreement layer with ``cfg.rounds`` gradient rounds."""
    rule: ClassVar[str | None] = None
    """What ``cfg.protocol`` means to this method (``None``: nothing; the grids write
    ``NAME:PROTOCOL`` only for a method that has one): LEARN's agreement protocol, the
    server's robust rule, ByzSGD's servers' gradient rule."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.gradient_rounds: list[int] = []  # per step, for the methods that agree

    def step(self, s: StepInput) -> torch.Tensor:
        """The new honest parameters ``(h, d)`` after step ``s.t``."""
        raise NotImplementedError

    def traffic(self, d: int, itemsize: int) -> Traffic:
        """The run's traffic, at dimension ``d`` with ``itemsize`` bytes per coordinate."""
        raise NotImplementedError

    def byzantine_vectors(self, honest: torch.Tensor, own: torch.Tensor,
                          hook: AttackHook | ValueAttackHook | None) -> torch.Tensor:
        """``(b, d)`` Byzantine values for the baselines (dissensus: handled by the callers);
        ``(h, b, d)`` for a per-receiver value attack (row j: what honest node j gets)."""
        if hook is None:
            return own[:0]
        hook.own = own
        return hook(honest, self.setup.b)


def finite_rows(x: torch.Tensor) -> torch.Tensor:
    """The rows of ``x`` that are finite (a non-finite vector enters no average)."""
    return x[torch.isfinite(x).all(dim=1)]


METHODS: dict[str, type[Method]] = {}
"""The methods of ``TrainConfig.method`` by name (module doc: how to add one)."""


def register_method(cls: type[Method], *, replace: bool = False) -> type[Method]:
    """Add ``cls`` to :data:`METHODS` under ``cls.name`` (a class decorator); a taken name
    is a ``ValueError`` unless ``replace``."""
    register(METHODS, cls.name, cls, what="training method", replace=replace)
    return cls


def two_sided(honest: torch.Tensor, b: int, scale: float) -> tuple[torch.Tensor, np.ndarray]:
    """The dissensus values ``(2, b, d)`` (low, high) and each honest node's side."""
    host = honest.detach().double().cpu().numpy()
    vals = split_values(host, b, np.random.default_rng(0), scale=scale)
    side, _ = split_sides(host)
    return torch.as_tensor(vals, dtype=honest.dtype, device=honest.device), side
