"""Learning attacks: the vectors Byzantine nodes put in (docs/theory.md §7), computed on the device.

An attack is called once per agreement round with

- ``honest``: the ``(h, d)`` honest vectors of the round (gradients, momenta or parameters);
  the adversary is omniscient, it reads them all;
- ``own``: the ``(b, d)`` vectors the ``b`` Byzantine nodes would have sent had they been
  honest (their stochastic gradients on their own data, or, in a parameter round, the honest
  mean moved by their own gradient step);
- ``gen``: a ``torch.Generator`` on the vectors' device (the run's seed drives it),

and returns the ``(b, d)`` Byzantine vectors, on the same device and dtype. Formulas
(``μ``, ``σ``: the per-coordinate mean and standard deviation of the honest vectors):

==========  ===============================================================================
sign-flip   ``-scale · own`` (``scale`` = 1)
gaussian    ``μ + sigma · N(0, I)`` (``sigma`` = 1)
label-flip  ``own``, where the Byzantine nodes' data carry flipped labels ``y -> C-1-y``
            (the harness flips them; in a parameter round their own step used them)
alie        ``μ + z · σ``, z from n and f as in Baruch et al. 2019
            (:func:`agreement.attacks.alie_z`: ``s = floor(n/2+1) - f``,
            ``z = Φ^{-1}((n-s)/n)``), or ``z`` given
ipm         ``-eps · μ`` (inner-product manipulation, Xie et al. 2020; ``eps`` = 0.1)
mimic       a copy of honest node ``target`` (default the first honest node): it
            over-weights one node's data under heterogeneity (Karimireddy et al. 2022)
dissensus   per-side values beyond the honest extremes along the widest honest direction,
            with the views that push honest nodes apart (the agreement layer's ``split``
            values and ``omniscient`` views, :mod:`agreement.attacks`)
nan         non-finite vectors (NaN and +inf): invalid values, never in an honest view
none        no Byzantine node sends anything (``silent``)
==========  ===============================================================================

Protocol-level strategies (equivocate, silent, crash, replay, flood, forge, garbage, ...) are
netsim's (:data:`netsim.sim.adversary.STRATEGIES`) and run at the message level only.

The registry is :data:`LEARNING_ATTACKS` (name -> function, ``None`` for ``none``), extended
by :func:`register_learning_attack`; ``ATTACKS``, its old name, is kept as an alias for this
release only (it goes in the next).

**Value attacks in training.** A value attack of the agreement layer (the numpy contract of
:mod:`agreement.attacks`, ``attack(honest, f, rng, **params) -> (f, d)``: a function given as
``TrainConfig(attack=fn)``, or a name registered with
:func:`agreement.attacks.register_value_attack`) runs unchanged in training through
:class:`ValueAttackHook`: each call copies the honest ``(h, d)`` tensor to the host
(``.detach().cpu().numpy()``, one device-to-host copy of ``h·d`` numbers per agreement round),
calls the attack with a numpy generator seeded from the run's seed, and copies its ``(f, d)``
result back to the vectors' device and dtype. On CPU the copies are views or memcpys; on an
accelerator they synchronise the stream, so a learning attack (torch, on the device) is the
faster choice for large models. Per-receiver value attacks (``(h, f, d)``) equivocate as in
the agreement layer; the trusted server is the only receiver of its baseline (row 0), and in
D-SGD honest node ``j`` averages with row ``j``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from agreement.attacks import (
    BUILTIN_VALUE_ATTACKS,
    VALUE_ATTACKS,
    alie_z,
    check_value_attack,
    is_per_receiver,
    resolve_value_attack,
)
from netsim.registry import register

AttackFn = Callable[..., torch.Tensor]


def sign_flip(honest: torch.Tensor, own: torch.Tensor, gen: torch.Generator,
              scale: float = 1.0) -> torch.Tensor:
    """``-scale · own``: the Byzantine nodes send their own vectors negated."""
    return -scale * own


def gaussian(honest: torch.Tensor, own: torch.Tensor, gen: torch.Generator,
             sigma: float = 1.0) -> torch.Tensor:
    """``μ + sigma · N(0, I)`` per Byzantine node."""
    b, d = own.shape
    noise = torch.randn((b, d), generator=gen, device=honest.device, dtype=honest.dtype)
    return honest.mean(dim=0, keepdim=True) + sigma * noise


def label_flip(honest: torch.Tensor, own: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``own``: honest behaviour on poisoned data (the harness flips the labels)."""
    return own.clone()


def alie(honest: torch.Tensor, own: torch.Tensor, gen: torch.Generator,
         z: float | None = None, n: int | None = None, f: int | None = None) -> torch.Tensor:
    """``μ + z · σ`` (z = :func:`agreement.attacks.alie_z` (n, f) unless given)."""
    b = own.shape[0]
    if z is None:
        if n is None or f is None:
            raise ValueError("alie needs z, or n and f")
        z = alie_z(n, f)
    mu = honest.mean(dim=0)
    sd = (honest - mu).square_().mean(dim=0).sqrt_()  # population std (faster than .std)
    return (mu + z * sd).expand(b, -1).clone()


def ipm(honest: torch.Tensor, own: torch.Tensor, gen: torch.Generator,
        eps: float = 0.1) -> torch.Tensor:
    """``-eps · μ`` (inner-product manipulation)."""
    return (-eps * honest.mean(dim=0)).expand(own.shape[0], -1).clone()


def mimic(honest: torch.Tensor, own: torch.Tensor, gen: torch.Generator,
          target: int = 0) -> torch.Tensor:
    """A copy of honest node ``target`` (its index among the honest nodes)."""
    if not 0 <= target < honest.shape[0]:
        raise ValueError(f"mimic target {target} out of range(0, {honest.shape[0]})")
    return honest[target].expand(own.shape[0], -1).clone()


def nan(honest: torch.Tensor, own: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Non-finite vectors: NaN, with +inf on even coordinates."""
    v = torch.full_like(own, float("nan"))
    v[:, ::2] = float("inf")
    return v


LEARNING_ATTACKS: dict[str, AttackFn | None] = {
    "none": None,
    "sign-flip": sign_flip,
    "gaussian": gaussian,
    "label-flip": label_flip,
    "alie": alie,
    "ipm": ipm,
    "mimic": mimic,
    "dissensus": None,  # the agreement layer's two-sided attack (see the module doc)
    "nan": nan,
}
"""Learning attacks by name (``none`` and ``dissensus`` are handled by the harness)."""

ATTACKS = LEARNING_ATTACKS
"""Deprecated alias of :data:`LEARNING_ATTACKS` (this release only)."""

ATTACK_PARAMS: dict[str, tuple[str, ...]] = {
    "sign-flip": ("scale",),
    "gaussian": ("sigma",),
    "alie": ("z",),
    "ipm": ("eps",),
    "mimic": ("target",),
    "dissensus": ("scale",),
}


BUILTIN_LEARNING_ATTACKS: frozenset[str] = frozenset(LEARNING_ATTACKS)
"""The learning attacks of Jungle itself (the others came from
:func:`register_learning_attack`)."""


def register_learning_attack(name: str, fn: AttackFn, *, params: tuple[str, ...] = (),
                             replace: bool = False) -> AttackFn:
    """Register ``fn(honest, own, gen, **params) -> (b, d)`` (torch, on the vectors' device;
    module doc) as the learning attack ``name``, taking the keyword parameters ``params``
    (``TrainConfig.attack_params``). Then ``TrainConfig(attack=name)`` and ``python -m
    learning train --attack name`` (with ``--plugin``) run it. A taken name is a
    ``ValueError`` unless ``replace``. Returns ``fn``."""
    register(LEARNING_ATTACKS, name, fn, what="learning attack", replace=replace)
    ATTACK_PARAMS[name] = tuple(params)
    return fn


def user_value_attacks() -> list[str]:
    """The value attacks registered with :func:`agreement.attacks.register_value_attack`
    (not Jungle's own) whose name is not a learning attack's: training runs them through
    :class:`ValueAttackHook`."""
    return sorted(set(VALUE_ATTACKS) - BUILTIN_VALUE_ATTACKS - set(LEARNING_ATTACKS))


def is_value_attack(attack: Any) -> bool:
    """True iff ``attack`` runs in training as a numpy value attack: a function, or the name
    of a user-registered value attack (:func:`user_value_attacks`)."""
    return callable(attack) or (isinstance(attack, str) and attack in user_value_attacks())


def attack_names() -> list[str]:
    """Every attack name training accepts (learning attacks and user value attacks; the
    protocol-level strategies of netsim are listed apart)."""
    return sorted({*LEARNING_ATTACKS, *user_value_attacks()})


def check_attack(name: str, params: dict[str, Any] | None = None) -> None:
    """``ValueError`` for an unknown attack or parameter (listing the known ones)."""
    if is_value_attack(name):
        return  # its parameters are the function's keywords
    if name not in LEARNING_ATTACKS:
        raise ValueError(
            f"unknown attack {name!r}; known: {', '.join(attack_names())}")
    allowed = ATTACK_PARAMS.get(name, ())
    for key in params or {}:
        if key not in allowed:
            raise ValueError(
                f"attack {name!r} takes no parameter {key!r}"
                + (f"; it takes: {', '.join(allowed)}" if allowed else "")
            )


class AttackHook:
    """The Byzantine vectors of one kind of round (gradient or parameter), as the callable
    attack of :class:`agreement.engine.RoundEngine`: ``hook(honest, b, rng)``. ``own`` is
    set by the harness before each agreement; the engine's numpy ``rng`` is not used (the
    hook draws from its own torch generator, on the vectors' device)."""

    native_form = True
    """The engine calls it on the values' own form (torch, on their device)."""

    def __init__(self, name: str, n: int, f: int, gen: torch.Generator,
                 params: dict[str, Any] | None = None) -> None:
        check_attack(name, params)
        fn = LEARNING_ATTACKS[name]
        if fn is None:
            raise ValueError(f"attack {name!r} has no vector function (handled by the harness)")
        self.name = name
        self.fn = fn
        self.params = dict(params or {})
        if name == "alie":
            self.params.setdefault("n", n)
            self.params.setdefault("f", f)
        self.gen = gen
        self.own: torch.Tensor | None = None

    def __call__(self, honest: torch.Tensor, b: int, rng: Any = None) -> torch.Tensor:
        own = self.own
        if own is None or own.shape[0] != b:
            own = honest.mean(dim=0, keepdim=True).expand(b, -1)
        return self.fn(honest, own, self.gen, **self.params)


class ValueAttackHook:
    """A numpy value attack of :mod:`agreement.attacks` as a learning attack hook (module
    doc, "Value attacks in training"): ``hook(honest, b, rng=None)`` takes torch (copied to
    the host and back) or numpy values and returns the attack's rows in the same form,
    ``(b, d)``, or ``(h, b, d)`` for a per-receiver attack. ``rng``: the caller's numpy
    generator (the round engine's), else this hook's own (seeded with ``seed``). ``own``
    is accepted and unused (the contract has no "own" vectors)."""

    native_form = False
    """The round engine passes it host numpy values on its own (see
    :mod:`agreement.engine`)."""

    def __init__(self, attack: Any, params: dict[str, Any] | None = None,
                 seed: int = 0) -> None:
        self.fn = resolve_value_attack(attack)
        self.name = attack if isinstance(attack, str) else getattr(
            attack, "__name__", type(attack).__name__)
        self.params = dict(params or {})
        self.per_receiver = is_per_receiver(attack)
        self.rng = np.random.default_rng(seed)
        self.own: torch.Tensor | None = None

    def __call__(self, honest: Any, b: int, rng: Any = None) -> Any:
        gen = rng if isinstance(rng, np.random.Generator) else self.rng
        if not isinstance(honest, torch.Tensor):
            return self.fn(honest, b, gen, **self.params)
        host = honest.detach().cpu().numpy()
        vals = check_value_attack(self.fn(host, b, gen, **self.params), b, host.shape[0],
                                  host.shape[1], self.per_receiver, repr(self.name))
        return torch.as_tensor(np.ascontiguousarray(vals), device=honest.device,
                               dtype=honest.dtype)
