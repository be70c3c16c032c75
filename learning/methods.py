"""The training methods of :func:`learning.learn.train`, one class each behind :class:`Method`.

A step of every method starts from the same place (:class:`StepInput`): the honest
parameters ``θ_j`` (rows ``0..h-1``), their mean ``θ̄``, and the vectors the honest nodes
send, ``g_j`` (the local gradient, or the worker momentum ``m_j``), beside the Byzantine
nodes' own vectors (computed at ``θ̄``). :meth:`Method.step` returns the new honest
parameters; between its communication it applies the shared SGD update
:meth:`StepInput.descend` ``θ_j - η_t·u_j`` with ``u_j`` the SGD momentum of
``ĝ_j + wd·θ_j``. The methods (formulas in :mod:`learning.learn`'s module doc):

- :class:`Learn` (``learn``): ``ĝ = AvgAgree_{T_t}(g)``, descend, ``θ <- AvgAgree_1(θ)``;
  with a C-averaging agreement ``||∇L̄(θ̄)|| <= (1+δ)·C·K`` (docs/theory.md §2, §6);
- :class:`DSGD` (``dsgd``): descend on the local gradient, then ``θ_j <- mean`` of the n
  parameter vectors received (Byzantine ones included; no guarantee);
- :class:`Server` (``server``): a trusted server's robust rule over the n gradients,
  every honest node descends along the one aggregate;
- :class:`Local` (``local``): descend on the local gradient, no communication.

**Adding a method** (e.g. ByzSGD): write one subclass of :class:`Method` in this module (or
any other), with ``__init__(setup)`` for its set-up and checks, ``step(s)`` for one step and,
if it communicates, ``traffic(d, itemsize)``; set ``agreement = True`` if it runs the
agreement layer with ``rounds`` gradient rounds per step (then ``rounds="proven"`` is
checked and netsim's protocol-level strategies may attack it); and add one entry to
:data:`METHODS`. No other method and no line of :func:`learning.learn.train` changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from agreement import get_config
from agreement.adversary import ValueAttack
from agreement.attacks import split as split_values
from agreement.attacks import split_sides
from agreement.engine import RoundEngine
from agreement.protocol import check_resilience
from agreement.rules import make_rule
from netsim.adversary import STRATEGIES

from .attacks import AttackHook, ValueAttackHook

if TYPE_CHECKING:
    from .learn import TrainConfig

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
    torch generator (the one stream of randomness of a run)."""

    cfg: TrainConfig
    byz_ids: list[int]
    honest_ids: list[int]
    hooks: list[AttackHook | ValueAttackHook | None]
    gen: torch.Generator

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


def _finite_rows(x: torch.Tensor) -> torch.Tensor:
    """The rows of ``x`` that are finite (a non-finite vector enters no average)."""
    return x[torch.isfinite(x).all(dim=1)]


class Learn(Method):
    """LEARN: ``ĝ = AvgAgree_{T_t}(g)``, descend, ``θ <- AvgAgree_{param_rounds}(θ)``; needs
    the protocol's resilience (:func:`agreement.protocol.check_resilience`) unless unsafe."""

    name = "learn"
    agreement = True

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        cfg = setup.cfg
        check_resilience(cfg.protocol, cfg.n, cfg.f, unsafe=cfg.unsafe)
        self.agree_g = Agreement(setup, setup.hooks[0], salt=0)
        self.agree_p = Agreement(setup, setup.hooks[1], salt=1)

    def step(self, s: StepInput) -> torch.Tensor:
        cfg = self.setup.cfg
        self.gradient_rounds.append(cfg.rounds_at(s.t, s.sent.shape[1]))
        ghat = self.agree_g(s.sent, s.own, self.gradient_rounds[-1])
        new = s.descend(ghat)
        if cfg.param_rounds:
            new = self.agree_p(new, s.mean - s.lr * s.own, cfg.param_rounds)
        return new

    def traffic(self, d: int, itemsize: int) -> Traffic:
        cfg, g, p = self.setup.cfg, self.agree_g, self.agree_p
        rounds = g.rounds + p.rounds
        if cfg.engine == "message":
            return Traffic(g.messages + p.messages, g.bytes + p.bytes,
                           "measured (message engine)", g.faults + p.faults, rounds)
        m1, b1 = calibrate_round(cfg.n, cfg.f, d, cfg.protocol, cfg.dtype, cfg.unsafe)
        return Traffic(m1 * rounds, b1 * rounds,
                       "rounds x one measured message-level round (Byzantine ids honest)",
                       rounds=rounds)


class Server(Method):
    """A trusted server: ``ĝ = rule(g_1..g_h, Byzantine values)`` (the robust rule of
    :mod:`agreement.rules` named by ``protocol``), the same ``ĝ`` for every honest node."""

    name = "server"

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        self.rule = make_rule(setup.cfg.protocol, setup.cfg.f)

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
        agg = self.rule(torch.cat([s.sent, _finite_rows(byz)]))
        return s.descend(agg.expand(setup.h, s.sent.shape[1]))

    def traffic(self, d: int, itemsize: int) -> Traffic:
        messages = 2 * self.setup.cfg.n * self.setup.cfg.steps
        return Traffic(messages, messages * d * itemsize,
                       "payload only: n gradients up, n models down per step")


class DSGD(Method):
    """Decentralized SGD on the complete graph: descend on the local gradient, then
    ``θ_j <- mean`` of the n parameter vectors node j receives (the two-sided dissensus
    attack sends different values to the two halves of the honest nodes)."""

    name = "dsgd"

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
        byz = _finite_rows(byz)
        avg = (new.sum(dim=0) + byz.sum(dim=0)) / (h + byz.shape[0])
        return avg.expand(h, new.shape[1])

    def traffic(self, d: int, itemsize: int) -> Traffic:
        n = self.setup.cfg.n
        messages = n * (n - 1) * self.setup.cfg.steps
        return Traffic(messages, messages * d * itemsize,
                       "payload only: n(n-1) parameter vectors per step")


class Local(Method):
    """Every honest node trains alone: descend on its local gradient (no communication, so
    no attack reaches it)."""

    name = "local"

    def step(self, s: StepInput) -> torch.Tensor:
        return s.descend(s.sent)

    def traffic(self, d: int, itemsize: int) -> Traffic:
        return Traffic(0, 0, "none (local training)")


METHODS: dict[str, type[Method]] = {"learn": Learn, "dsgd": DSGD, "server": Server,
                                    "local": Local}
"""The methods of ``TrainConfig.method`` by name (module doc: how to add one)."""


_CALIBRATION: dict[tuple[int, int, int, str, str], tuple[int, int]] = {}


def calibrate_round(n: int, f: int, d: int, protocol: str, dtype: str = "float32",
                    unsafe: bool = False) -> tuple[int, int]:
    """Messages and bytes of ONE message-level round of ``protocol`` at ``(n, f, d)``
    (reliable broadcast + witnesses, Byzantine ids behaving honestly, random scheduler, codec
    on): what a round-level round stands for on the wire."""
    from agreement import run

    key = (n, f, d, protocol, dtype)
    if key not in _CALIBRATION:
        x = np.random.default_rng(0).standard_normal((n, d)).astype(dtype)
        res = run(x, f=f, protocol=protocol, rounds=1, engine="message", strategy="honest",
                  scheduler="random", seed=0, unsafe=unsafe)
        _CALIBRATION[key] = (res.messages, res.bytes)
    return _CALIBRATION[key]


@dataclass
class Agreement:
    """AvgAgree over the honest rows, at the round or the message level, with the Byzantine
    vectors of one kind of round (``hook`` for learning attacks); counts what it ran."""

    setup: Setup
    hook: AttackHook | ValueAttackHook | None
    salt: int
    messages: int = 0
    bytes: int = 0
    faults: int = 0
    rounds: int = 0
    calls: int = 0
    engine: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        cfg = self.setup.cfg
        conf = get_config(cfg.protocol)
        if cfg.engine != "round":
            return
        if cfg.attack == "dissensus":
            attack: Any = "omniscient"
        elif cfg.attack == "none" or not self.setup.byz_ids:
            attack = "silent"
        else:
            attack = self.hook
        views = "omniscient" if cfg.attack == "dissensus" else cfg.views
        if getattr(attack, "native_form", False) and views == "omniscient":
            raise ValueError("omniscient views run with the dissensus attack, a value attack "
                             "(or none); a learning attack runs with random views")
        self.engine = RoundEngine(
            cfg.n, cfg.f, make_rule(conf.rule, cfg.f), gather=conf.gather, attack=attack,
            views=views, byzantine_ids=self.setup.byz_ids, seed=cfg.seed * 7919 + self.salt,
            attack_params={"scale": cfg.attack_params["scale"]}
            if cfg.attack == "dissensus" and "scale" in cfg.attack_params else None,
        )

    def __call__(self, honest: torch.Tensor, own: torch.Tensor, rounds: int) -> torch.Tensor:
        self.rounds += rounds
        self.calls += 1
        if self.hook is not None:
            self.hook.own = own
        if self.engine is not None:
            x = honest
            for _ in range(rounds):
                x, _ = self.engine.step(x)
            return x
        return self._message(honest, own, rounds)

    def _message(self, honest: torch.Tensor, own: torch.Tensor, rounds: int) -> torch.Tensor:
        from agreement import run

        from .adversary import LearningValueAttack

        cfg, byz_ids = self.setup.cfg, self.setup.byz_ids
        x = np.empty((cfg.n, honest.shape[1]),
                     dtype=np.float64 if honest.dtype == torch.float64 else np.float32)
        x[self.setup.honest_ids] = honest.detach().cpu().numpy()
        if byz_ids:
            x[byz_ids] = own.detach().cpu().numpy()
        scheduler = "random"
        if cfg.attack == "none":
            byz: Any = "silent"
        elif cfg.attack == "dissensus":
            byz, scheduler = "omniscient", "targeted"
        elif isinstance(self.hook, ValueAttackHook):
            byz = ValueAttack(self.hook.fn, **self.hook.params)
        elif cfg.attack in protocol_strategies():
            byz = cfg.attack
        else:
            byz = LearningValueAttack(self.hook, honest.device, honest.dtype)
        res = run(x, f=cfg.f, protocol=cfg.protocol, rounds=rounds, strategy=byz,
                  byzantine_ids=byz_ids, scheduler=scheduler,
                  seed=(cfg.seed * 1_000_003 + self.calls * 2 + self.salt) % 2**31,
                  engine="message", unsafe=cfg.unsafe)
        self.messages += res.messages
        self.bytes += res.bytes
        self.faults += sum(res.faults.values())
        return torch.as_tensor(res.outputs, dtype=honest.dtype, device=honest.device)


def two_sided(honest: torch.Tensor, b: int, scale: float) -> tuple[torch.Tensor, np.ndarray]:
    """The dissensus values ``(2, b, d)`` (low, high) and each honest node's side."""
    host = honest.detach().double().cpu().numpy()
    vals = split_values(host, b, np.random.default_rng(0), scale=scale)
    side, _ = split_sides(host)
    return torch.as_tensor(vals, dtype=honest.dtype, device=honest.device), side


__all__ = [
    "DSGD",
    "METHODS",
    "PROTOCOL_STRATEGIES",
    "Agreement",
    "Descent",
    "Learn",
    "Local",
    "Method",
    "Server",
    "Setup",
    "StepInput",
    "Traffic",
    "calibrate_round",
    "protocol_strategies",
    "two_sided",
]
