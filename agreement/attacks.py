"""Value attacks: what Byzantine nodes *put in* a round, usable at both engine levels.

Each attack is a function ``attack(honest, f, rng, **params) -> (f, d) array`` of the honest
vectors of the round (an ``(h, d)`` numpy array: the adversary is omniscient) that returns
one vector per Byzantine node. ``split`` and ``omniscient`` also use *where* values go: they
return per-side vectors (see :func:`netsim.sim.schedulers.split_sides`, re-exported here),
which the message level turns into equivocation and the round level into a choice of views.

At the message level (:class:`agreement.adversary.ValueAttack`) a Byzantine node runs an
honest core and replaces the vector it sends each round; at the round level
(:mod:`agreement.engine`) the values enter the views the adversary picks.

Names: :data:`VALUE_ATTACKS` is the registry (name -> function); :data:`VALUE_ATTACK_NAMES`
the names a run accepts as a value attack (the registry's and ``omniscient``; it is kept
current by :func:`register_value_attack`, whose attacks also show up in the command lines'
listings). ``ATTACKS``, the registry's old name, is kept as an alias for this release only
(it goes in the next).

**Your own value attack** (docs/guides/adversary.md) is a plain function of that contract,
passed as ``strategy=fn`` to :func:`agreement.run` (both engines) and as ``attack=fn`` to
``learning.TrainConfig``, or registered by name. A *per-receiver* attack (equivocation:
declare it with ``per_receiver=True`` in :func:`register_value_attack`, or an attribute
``fn.per_receiver = True``) returns ``(h, f, d)`` instead: row ``r`` is what the f Byzantine
nodes send to the ``r``-th honest node (in increasing id order). Only the first-quorum
gather (plain SENDs) lets every receiver have its own value; under reliable broadcast each
Byzantine origin gets at most one value delivered (Bracha's agreement, docs/theory.md §3):
the message level sends each receiver its own VALUE and reliable broadcast delivers one of
them or none; the round level, which must choose, uses row 0 (the value meant for the
lowest honest id) as that one value.
"""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist
from typing import Any

import numpy as np

from netsim.registry import register, unknown
from netsim.sim.schedulers import split_sides

__all__ = ["ATTACKS", "BUILTIN_VALUE_ATTACKS", "TWO_SIDED", "VALUE_ATTACKS", "VALUE_ATTACK_NAMES",
           "alie", "alie_z", "attack_values", "check_value_attack", "gossip_dissensus",
           "is_per_receiver", "nan", "optimal_alie", "optimal_ipm", "outlier", "push",
           "register_value_attack", "resolve_value_attack", "sign_flip_mean", "split",
           "split_sides", "tailored", "value_attack_names"]

Attack = Callable[..., np.ndarray]


def _range(honest: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo, hi = honest.min(axis=0), honest.max(axis=0)
    return lo, hi, hi - lo


def push(honest: np.ndarray, f: int, rng: np.random.Generator, scale: float = 0.5) -> np.ndarray:
    """All Byzantine values just above the honest maximum, per coordinate:
    ``max + scale·range``; drags every rule that keeps them towards one side."""
    _, hi, rg = _range(honest)
    return np.repeat((hi + scale * rg)[None, :], f, axis=0)


def alie_z(n: int, f: int) -> float:
    """Baruch et al. 2019 ("a little is enough"): ``s = floor(n/2 + 1) - f``,
    ``z = Φ^{-1}((n - s)/n)``."""
    s = n // 2 + 1 - f
    p = (n - s) / n
    p = min(max(p, 1e-9), 1 - 1e-9)
    return NormalDist().inv_cdf(p)


def alie(
    honest: np.ndarray, f: int, rng: np.random.Generator, z: float | None = None,
    n: int | None = None,
) -> np.ndarray:
    """``mean + z·std`` of the honest vectors, per coordinate (z from n and f by default)."""
    if z is None:
        z = alie_z(n if n is not None else honest.shape[0] + f, f)
    v = honest.mean(axis=0) + z * honest.std(axis=0)
    return np.repeat(v[None, :], f, axis=0)


def outlier(
    honest: np.ndarray, f: int, rng: np.random.Generator, scale: float = 1e6
) -> np.ndarray:
    """Far outliers in random directions: ``mean + scale·(1 + ||range||)·u``."""
    _, _, rg = _range(honest)
    u = rng.standard_normal((f, honest.shape[1]))
    u /= np.linalg.norm(u, axis=1, keepdims=True) + 1e-300
    return honest.mean(axis=0) + scale * (1.0 + float(np.linalg.norm(rg))) * u


def nan(honest: np.ndarray, f: int, rng: np.random.Generator) -> np.ndarray:
    """Non-finite values: an honest node must treat them as invalid (a fault), never use them."""
    v = np.full((f, honest.shape[1]), np.nan)
    v[:, ::2] = np.inf
    return v


def split(
    honest: np.ndarray, f: int, rng: np.random.Generator, scale: float = 0.5
) -> np.ndarray:
    """Two values per Byzantine node, shape ``(2, f, d)``: ``[low, high]``, just beyond the
    honest extremes along the widest direction; the lower half of the honest nodes is sent
    (or shown) ``low`` and the upper half ``high``, to push them apart ("dissensus")."""
    _, u = split_sides(honest)
    proj = honest @ u
    width = float(proj.max() - proj.min()) if honest.shape[0] else 0.0
    low = honest[int(np.argmin(proj))] - scale * width * u
    high = honest[int(np.argmax(proj))] + scale * width * u
    out = np.empty((2, f, honest.shape[1]), dtype=np.result_type(low, high))
    out[0] = low  # each row written once (np.repeat then np.stack copied them twice)
    out[1] = high
    return out


def sign_flip_mean(honest: np.ndarray, f: int, rng: np.random.Generator,
                   scale: float = 1.0) -> np.ndarray:
    """``-scale·μ``, μ the honest mean, from every Byzantine node (``scale > 0``)."""
    if not scale > 0:
        raise ValueError(f"sign-flip-mean needs scale > 0, got {scale}")
    return np.repeat((-scale * honest.mean(axis=0))[None, :], f, axis=0)


def _line_search(honest: np.ndarray, f: int, cand: np.ndarray, rule: str,
                 score: str) -> int:
    """The index of the candidate row (``cand`` ``(K, d)``, each sent by all f Byzantine
    nodes) whose aggregate ``ρ(H ∪ {c}^f)`` (``ρ = make_rule(rule, f)``) is farthest from
    the honest mean (``score="distance"``) or has the least inner product with it
    (``"inner"``)."""
    from .rules import make_rule

    h = honest.shape[0]
    k = cand.shape[0]
    values = np.concatenate([honest, np.repeat(cand, f, axis=0)])
    masks = np.zeros((k, h + k * f), dtype=bool)
    masks[:, :h] = True
    for i in range(k):
        masks[i, h + i * f:h + (i + 1) * f] = True
    agg = make_rule(rule, f).batch(values, masks)
    mu = honest.mean(axis=0)
    if score == "distance":
        return int(np.argmax(np.linalg.norm(agg - mu, axis=1)))
    return int(np.argmin(agg @ mu))


def _grid(top: float, evals: int, what: str) -> np.ndarray:
    if not (int(evals) == evals and evals >= 2 and top > 0):
        raise ValueError(f"{what} needs evals an integer >= 2 and a positive bound, "
                         f"got evals={evals}, bound={top}")
    return np.linspace(0.0, top, int(evals))


def optimal_alie(honest: np.ndarray, f: int, rng: np.random.Generator,
                 rule: str = "trimmed-mean", zmax: float = 10.0,
                 evals: int = 21) -> np.ndarray:
    """``μ + z*·σ`` with ``z* = argmax_z ||ρ(H ∪ {μ + zσ}^f) - μ||`` over ``evals`` values in
    ``[0, zmax]`` against the rule named ``rule`` (byzfl's ``LineMaximize`` objective;
    Allouah et al. 2023, "Fixing by mixing")."""
    if f == 0:
        return np.zeros((0, honest.shape[1]))
    z = _grid(zmax, evals, "optimal-alie")
    cand = honest.mean(axis=0) + z[:, None] * honest.std(axis=0)
    return np.repeat(cand[_line_search(honest, f, cand, rule, "distance")][None], f, axis=0)


def optimal_ipm(honest: np.ndarray, f: int, rng: np.random.Generator,
                rule: str = "trimmed-mean", emax: float = 10.0,
                evals: int = 21) -> np.ndarray:
    """``-ε*·μ`` with ``ε* = argmin_ε <ρ(H ∪ {-εμ}^f), μ>`` over ``evals`` values in
    ``[0, emax]`` against the rule named ``rule`` (Xie et al. 2020's IPM, ε searched)."""
    if f == 0:
        return np.zeros((0, honest.shape[1]))
    e = _grid(emax, evals, "optimal-ipm")
    cand = -e[:, None] * honest.mean(axis=0)
    return np.repeat(cand[_line_search(honest, f, cand, rule, "inner")][None], f, axis=0)


def tailored(honest: np.ndarray, f: int, rng: np.random.Generator,
             scale: float = 4.0) -> np.ndarray:
    """Per receiver ``(h, f, d)``: honest receiver j gets ``x_j + scale·(x_j - μ)`` from every
    Byzantine node (equivocation; under reliable broadcast one value per node goes through)."""
    if not scale > 0:
        raise ValueError(f"tailored needs scale > 0, got {scale}")
    v = honest + scale * (honest - honest.mean(axis=0))
    return np.repeat(v[:, None, :], f, axis=1)


def gossip_dissensus(honest: np.ndarray, f: int, rng: np.random.Generator,
                     eps: float = 1.5) -> np.ndarray:
    """Per receiver ``(h, f, d)``: receiver j gets ``x_j - eps·Σ_{i∈H}(x_i - x_j)/f``, which
    cancels j's consensus step under uniform weights at ``eps = 1`` (ClippedGossip's
    dissensus attack, He, Karimireddy, Jaggi 2022; their experiments use eps = 1.5)."""
    if not eps > 0:
        raise ValueError(f"gossip-dissensus needs eps > 0, got {eps}")
    h = honest.shape[0]
    v = honest - eps * h * (honest.mean(axis=0) - honest) / max(f, 1)
    return np.repeat(v[:, None, :], f, axis=1)


VALUE_ATTACKS: dict[str, Attack] = {
    "push": push,
    "split": split,
    "alie": alie,
    "outlier": outlier,
    "nan": nan,
    "sign-flip-mean": sign_flip_mean,
    "optimal-alie": optimal_alie,
    "optimal-ipm": optimal_ipm,
    "tailored": tailored,
    "gossip-dissensus": gossip_dissensus,
}
"""Value attacks by name. ``split`` returns per-side values ``(2, f, d)``; the others
``(f, d)``. ``omniscient`` (round level) combines ``split`` values with adversarial views."""

VALUE_ATTACK_NAMES: tuple[str, ...] = (*sorted(VALUE_ATTACKS), "omniscient")
"""Every value attack a run accepts by name: the registry's and ``omniscient``."""

ATTACKS = VALUE_ATTACKS
"""Deprecated alias of :data:`VALUE_ATTACKS` (this release only)."""

TWO_SIDED = frozenset({"split", "omniscient"})

BUILTIN_VALUE_ATTACKS: frozenset[str] = frozenset(VALUE_ATTACKS)
"""The value attacks of Jungle itself (the others came from :func:`register_value_attack`)."""

_PER_RECEIVER: set[str] = {"tailored", "gossip-dissensus"}


def register_value_attack(name: str, fn: Attack, *, per_receiver: bool = False,
                          replace: bool = False) -> Attack:
    """Register ``fn(honest, f, rng, **params)`` as the value attack ``name``: then
    ``agreement.run(strategy=name)`` (both engines), ``--strategy name`` of ``python -m
    agreement simulate`` and ``--attack name`` of ``python -m learning train`` run it.
    ``per_receiver``: ``fn`` returns ``(h, f, d)``, one row per honest receiver (module doc).
    A taken name is a ``ValueError`` unless ``replace``. Returns ``fn``."""
    global VALUE_ATTACK_NAMES
    if name in ("omniscient", "silent", "none"):
        raise ValueError(f"{name!r} is reserved (a built-in behaviour); choose another name")
    register(VALUE_ATTACKS, name, fn, what="value attack", replace=replace)
    if per_receiver or getattr(fn, "per_receiver", False):
        _PER_RECEIVER.add(name)
    else:
        _PER_RECEIVER.discard(name)
    VALUE_ATTACK_NAMES = (*sorted(VALUE_ATTACKS), "omniscient")
    return fn


def value_attack_names() -> tuple[str, ...]:
    """Every value attack a run accepts by name, now: the registry's and ``omniscient``."""
    return (*sorted(VALUE_ATTACKS), "omniscient")


def is_per_receiver(attack: str | Attack) -> bool:
    """True iff ``attack`` (a name or a function) returns one row per honest receiver."""
    if isinstance(attack, str):
        return attack in _PER_RECEIVER and attack in VALUE_ATTACKS
    return bool(getattr(attack, "per_receiver", False))


def resolve_value_attack(attack: str | Attack) -> Attack:
    """The function of a value attack given by name or as itself (``omniscient``:
    ``split``); ``ValueError`` listing the names for an unknown one."""
    if callable(attack):
        return attack
    if attack == "omniscient":
        return split
    try:
        return VALUE_ATTACKS[attack]
    except KeyError:
        raise unknown("value attack", attack, value_attack_names()) from None


def check_value_attack(values: Any, f: int, h: int, d: int, per_receiver: bool,
                       where: str) -> np.ndarray:
    """``values`` as a numpy array of shape ``(f, d)`` (``(h, f, d)`` per receiver), or a
    ``ValueError`` naming ``where`` (the attack) and the expected shape."""
    want = (h, f, d) if per_receiver else (f, d)
    arr = np.asarray(values)
    if arr.shape != want:
        what = "(h, f, d): one row per honest receiver" if per_receiver else "(f, d)"
        raise ValueError(f"the value attack {where} returned shape {arr.shape}, expected "
                         f"{want} {what}")
    return arr


def attack_values(
    name: str | Attack, honest: np.ndarray, f: int, rng: np.random.Generator, **params: Any
) -> np.ndarray:
    """Apply the attack ``name`` (a registered name or the function itself; ``omniscient``
    uses ``split``'s values)."""
    fn = resolve_value_attack(name)
    return fn(honest, f, rng, **params)
