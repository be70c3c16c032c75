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

The literature's stronger attacks (docs/theory.md §7; ``ρ`` is the rule the method hands the
hook, :attr:`AttackHook.rule`: LEARN's protocol rule on one view of all n values, the
server's rule, the mean for D-SGD and for a method that sets none):

================  =========================================================================
label-flip-mean   ``mean_j ∇ℓ(θ_j; x_j, C-1-y_j)`` over the honest nodes j, at their own
                  models (byzfl's ``LabelFlipping``: the mean of the honest vectors computed
                  on flipped labels; the harness computes them, one extra batched gradient
                  call per step, and hands them in as ``own``; byzfl, github.com/LPD-EPFL/
                  byzfl, ``byzfl/attacks/attacks.py``)
sign-flip-mean    ``-scale · μ`` (``scale`` = 1)
optimal-alie      ``μ + z*·σ``, ``z* = argmax_z ||ρ(H ∪ {μ + zσ}^b) - μ||`` over ``evals``
                  values of z in ``[0, zmax]`` (byzfl's ``LineMaximize`` objective, Allouah
                  et al. 2023, "Fixing by mixing"; ``byzfl/attacks/attack_optimizers.py``,
                  which searches ALIE's and IPM's factor alike); z is searched on a step's
                  first round, the value recomputed on every round's μ_r, σ_r
optimal-ipm       ``-ε*·μ``, ``ε* = argmin_ε <ρ(H ∪ {-εμ}^b), μ>`` over ``evals`` values of
                  ε in ``[0, emax]`` (Xie et al. 2020's attack, its ε line-searched; byzfl
                  searches its IPM by the distance objective), searched as optimal-alie
tailored          per receiver (``(h, b, d)``): honest node j gets ``x_j + scale·(x_j - μ)``
                  from every Byzantine node (``scale`` = 4); plain averaging then multiplies
                  ``x_j - μ`` by ``b(1+scale)/n`` (1.5 at n = 10, b = 3) at every step: the
                  models fly apart; reliable broadcast delivers one value per Byzantine node
                  (row 0's)
gossip-dissensus  per receiver: ``x_j - eps·Σ_{i∈H}(x_i - x_j)/b`` (ClippedGossip's dissensus
                  attack, He, Karimireddy, Jaggi 2022: the Byzantine neighbours cancel node
                  j's consensus step on uniform weights at ``eps`` = 1; their experiments
                  use ``eps`` = 1.5)
adaptive          the candidate among ``μ_r + zσ_r`` (ALIE), ``-εμ_r`` (IPM) and ``μ_r + λ(ō -
                  μ_r)`` (along the Byzantine nodes' own mean ``ō``, e.g. flipped-label
                  gradients) that maximises ``||ρ(H ∪ {v}^b) - μ||``, searched on a step's
                  first round, then that family and scale recomputed on every round's honest
                  values (``research=1``: searched again every round; ``fixed=1``: the first
                  round's vector resent in every round, the comparison)
================  =========================================================================

Which attacks change value between the rounds of one step: those of ``honest`` (gaussian,
alie, ipm, mimic, the line-searched ones, tailored, gossip-dissensus, adaptive) are
recomputed on every round's honest values; those of ``own`` (sign-flip, label-flip,
label-flip-mean) send the same vector in every round of a step, which a contracting
agreement isolates after a few rounds.

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
from agreement.rules import Mean, Median, TrimmedMean
from netsim.registry import register

AttackFn = Callable[..., torch.Tensor]

COORDINATE_RULES = (Mean, Median, TrimmedMean)
"""Rules that act on each coordinate alone: :func:`aggregates` evaluates all candidates in
one call on the views laid side by side."""


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


def sign_flip_mean(honest: torch.Tensor, own: torch.Tensor, gen: torch.Generator,
                   scale: float = 1.0) -> torch.Tensor:
    """``-scale · μ``: every Byzantine node sends the honest mean negated (``scale > 0``)."""
    if not scale > 0:
        raise ValueError(f"sign-flip-mean needs scale > 0 (--attack-param scale=), got {scale}")
    return (-scale * honest.mean(dim=0)).expand(own.shape[0], -1).clone()


def label_flip_mean(honest: torch.Tensor, own: torch.Tensor,
                    gen: torch.Generator) -> torch.Tensor:
    """``own``: the harness sets the Byzantine rows to ``mean_j ∇ℓ(θ_j; x_j, C-1-y_j)``, the
    mean over the honest nodes of their gradients on flipped labels at their own models
    (byzfl's ``LabelFlipping`` returns the mean of the vectors it is given, computed on
    flipped labels); in a parameter round ``own`` is ``θ̄ - η·`` that mean."""
    return own.clone()


def _grid(top: float, evals: int, what: str) -> list[float]:
    """``evals`` values ``0, top/(evals-1), ..., top`` (the line search's candidates)."""
    if not (isinstance(evals, (int, float)) and int(evals) == evals and evals >= 2):
        raise ValueError(f"{what} needs evals an integer >= 2 (--attack-param evals=), "
                         f"got {evals}")
    if not top > 0:
        raise ValueError(f"{what} needs a positive search bound, got {top}")
    k = int(evals)
    return [top * i / (k - 1) for i in range(k)]


def aggregates(honest: torch.Tensor, candidates: torch.Tensor, b: int,
               rule: Any = None) -> torch.Tensor:
    """``(K, d)``: ``ρ(H ∪ {c_k}^b)`` for each candidate ``c_k`` (rows of ``candidates``,
    ``(K, d)``), every Byzantine node sending ``c_k``; one batched ``rule.batch`` call
    (``rule`` ``None``: the mean)."""
    h, d = honest.shape
    k = candidates.shape[0]
    if rule is None:
        return (honest.sum(dim=0) + b * candidates) / (h + b)
    if isinstance(rule, COORDINATE_RULES):
        # per coordinate: the K views side by side as one (h+b, K·d) view, one rule call;
        # written in one pass (row i < h: honest_i K times; the b rows: c_0 .. c_{K-1})
        dtype = torch.promote_types(honest.dtype, candidates.dtype)  # as torch.cat's
        wide = torch.empty((h + b, k * d), dtype=dtype, device=honest.device)
        wide[:h].view(h, k, d).copy_(honest[:, None, :].expand(h, k, d))
        wide[h:].view(b, k, d).copy_(candidates[None].expand(b, k, d))
        return rule(wide).reshape(k, d)
    return torch.stack([rule(torch.cat([honest, c.expand(b, -1)])) for c in candidates])


def alie_line_search(honest: torch.Tensor, b: int, rule: Any = None, zmax: float = 10.0,
                     evals: int = 21) -> tuple[float, torch.Tensor]:
    """``(z*, μ + z*σ)``: ``z* = argmax_z ||ρ(H ∪ {μ + zσ}^b) - μ||`` over the grid
    ``0..zmax`` (``evals`` values; σ the per-coordinate population std)."""
    zs = _grid(zmax, evals, "optimal-alie")
    mu = honest.mean(dim=0)
    sd = (honest - mu).square().mean(dim=0).sqrt()
    z = torch.as_tensor(zs, dtype=honest.dtype, device=honest.device)
    cand = mu + z[:, None] * sd
    score = torch.linalg.vector_norm(aggregates(honest, cand, b, rule) - mu, dim=1)
    best = int(torch.argmax(score))
    return zs[best], cand[best]


def ipm_line_search(honest: torch.Tensor, b: int, rule: Any = None, emax: float = 10.0,
                    evals: int = 21) -> tuple[float, torch.Tensor]:
    """``(ε*, -ε*μ)``: ``ε* = argmin_ε <ρ(H ∪ {-εμ}^b), μ>`` over the grid ``0..emax``."""
    es = _grid(emax, evals, "optimal-ipm")
    mu = honest.mean(dim=0)
    e = torch.as_tensor(es, dtype=honest.dtype, device=honest.device)
    cand = -e[:, None] * mu
    score = aggregates(honest, cand, b, rule) @ mu
    best = int(torch.argmin(score))
    return es[best], cand[best]


def optimal_alie(honest: torch.Tensor, own: torch.Tensor, gen: torch.Generator,
                 rule: Any = None, zmax: float = 10.0, evals: int = 21,
                 memo: dict[str, Any] | None = None) -> torch.Tensor:
    """ALIE with a line-searched z (:func:`alie_line_search`) against the method's rule. The
    search runs on a step's first round; its z is kept in ``memo`` (the hook's, cleared at
    each step) and ``μ_r + z·σ_r`` is recomputed on every later round's honest values."""
    b = own.shape[0]
    if memo is not None and "z" in memo:
        mu = honest.mean(dim=0)
        v = mu + memo["z"] * (honest - mu).square().mean(dim=0).sqrt()
    else:
        z, v = alie_line_search(honest, b, rule, zmax, evals)
        if memo is not None:
            memo["z"] = z
    return v.expand(b, -1).clone()


def optimal_ipm(honest: torch.Tensor, own: torch.Tensor, gen: torch.Generator,
                rule: Any = None, emax: float = 10.0, evals: int = 21,
                memo: dict[str, Any] | None = None) -> torch.Tensor:
    """IPM with a line-searched ε (:func:`ipm_line_search`) against the method's rule; as
    :func:`optimal_alie`, ε is searched on a step's first round and ``-ε·μ_r`` recomputed."""
    b = own.shape[0]
    if memo is not None and "eps" in memo:
        v = -memo["eps"] * honest.mean(dim=0)
    else:
        eps, v = ipm_line_search(honest, b, rule, emax, evals)
        if memo is not None:
            memo["eps"] = eps
    return v.expand(b, -1).clone()


def tailored(honest: torch.Tensor, own: torch.Tensor, gen: torch.Generator,
             scale: float = 4.0) -> torch.Tensor:
    """Per receiver ``(h, b, d)``: row j is ``x_j + scale·(x_j - μ)`` for every Byzantine
    node (``scale > 0``): node j's own vector pushed away from the honest mean."""
    if not scale > 0:
        raise ValueError(f"tailored needs scale > 0 (--attack-param scale=), got {scale}")
    v = honest + scale * (honest - honest.mean(dim=0))
    return v[:, None, :].expand(-1, own.shape[0], -1).clone()


tailored.per_receiver = True  # type: ignore[attr-defined]


def gossip_dissensus(honest: torch.Tensor, own: torch.Tensor, gen: torch.Generator,
                     eps: float = 1.5) -> torch.Tensor:
    """Per receiver ``(h, b, d)``: row j is ``x_j - eps·Σ_{i∈H}(x_i - x_j)/b`` (uniform
    weights on the complete graph; ``eps > 0``)."""
    if not eps > 0:
        raise ValueError(f"gossip-dissensus needs eps > 0 (--attack-param eps=), got {eps}")
    b, h = own.shape[0], honest.shape[0]
    v = honest - eps * h * (honest.mean(dim=0) - honest) / b
    return v[:, None, :].expand(-1, b, -1).clone()


gossip_dissensus.per_receiver = True  # type: ignore[attr-defined]


def adaptive_candidates(honest: torch.Tensor, own: torch.Tensor, evals: int = 11,
                        top: float = 10.0) -> torch.Tensor:
    """``(3·evals, d)`` candidates of :func:`adaptive`: ``μ + zσ``, ``-εμ``, ``μ + λ(ō - μ)``
    for z, ε, λ on the grid ``0..top``."""
    grid = torch.as_tensor(_grid(top, evals, "adaptive"), dtype=honest.dtype,
                           device=honest.device)[:, None]
    mu = honest.mean(dim=0)
    sd = (honest - mu).square().mean(dim=0).sqrt()
    return torch.cat([mu + grid * sd, -grid * mu, mu + grid * (own.mean(dim=0) - mu)])


def adaptive(honest: torch.Tensor, own: torch.Tensor, gen: torch.Generator,
             rule: Any = None, evals: int = 11, top: float = 10.0, fixed: float = 0,
             research: float = 0, memo: dict[str, Any] | None = None) -> torch.Tensor:
    """The candidate of :func:`adaptive_candidates` maximising ``||ρ(H ∪ {v}^b) - μ||``.
    The search runs on a step's first round and picks a family and a scale (kept in
    ``memo``); every later round recomputes that candidate on its own honest values
    (``research=1``: search again in every round; ``fixed=1``: :class:`AttackHook` resends
    the first round's vector instead)."""
    for key, val in (("fixed", fixed), ("research", research)):
        if val not in (0, 1):
            raise ValueError(f"adaptive takes {key}=0 or {key}=1 (--attack-param {key}=), "
                             f"got {val}")
    cand = adaptive_candidates(honest, own, evals, top)
    if memo is not None and "pick" in memo and not research:
        pick = memo["pick"]
    else:
        ok = torch.isfinite(cand).all(dim=1)
        mu = honest.mean(dim=0)
        score = torch.linalg.vector_norm(
            aggregates(honest, cand[ok], own.shape[0], rule) - mu, dim=1)
        pick = int(torch.nonzero(ok).flatten()[int(torch.argmax(score))])
        if memo is not None:
            memo["pick"] = pick
    return cand[pick].expand(own.shape[0], -1).clone()


for _fn in (optimal_alie, optimal_ipm, adaptive):
    _fn.needs_rule = True  # type: ignore[attr-defined]
for _fn in (optimal_alie, optimal_ipm, adaptive):
    _fn.uses_memo = True  # type: ignore[attr-defined]


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
    "label-flip-mean": label_flip_mean,
    "sign-flip-mean": sign_flip_mean,
    "optimal-alie": optimal_alie,
    "optimal-ipm": optimal_ipm,
    "tailored": tailored,
    "gossip-dissensus": gossip_dissensus,
    "adaptive": adaptive,
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
    "sign-flip-mean": ("scale",),
    "optimal-alie": ("zmax", "evals"),
    "optimal-ipm": ("emax", "evals"),
    "tailored": ("scale",),
    "gossip-dissensus": ("eps",),
    "adaptive": ("evals", "top", "fixed", "research"),
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
    hook draws from its own torch generator, on the vectors' device).

    What a method may hand it (all optional, so a method that sets none keeps working):

    - :attr:`rule`: the rule the line-searched attacks (optimal-alie, optimal-ipm, adaptive)
      search against (``None``: the mean);
    - :attr:`receivers`: ``True`` if the method takes per-receiver values ``(h, b, d)``
      (D-SGD, the server); otherwise a per-receiver attack (tailored, gossip-dissensus)
      is cut to one value per Byzantine node, row 0's, what reliable broadcast delivers.

    Called with numpy values (the round engine's ``omniscient`` views pick them on the
    host), it computes on torch (``gen``'s device) and returns numpy."""

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
        self.fixed = bool(self.params.get("fixed", 0)) if name == "adaptive" else False
        self.gen = gen
        self.rule: Any = None
        self.receivers = False
        self._own: torch.Tensor | None = None
        self._step_value: torch.Tensor | None = None
        self.memo: dict[str, Any] = {}
        """What a line-searched attack keeps between the rounds of a step (its scale)."""

    @property
    def own(self) -> torch.Tensor | None:
        """The Byzantine nodes' own ``(b, d)`` vectors of this step (setting it starts a
        step: a ``fixed`` attack recomputes its value)."""
        return self._own

    @own.setter
    def own(self, value: torch.Tensor | None) -> None:
        self._own = value
        self._step_value = None
        self.memo = {}

    def __call__(self, honest: Any, b: int, rng: Any = None) -> Any:
        if not isinstance(honest, torch.Tensor):  # host values (omniscient views)
            dt = torch.float64 if np.asarray(honest).dtype == np.float64 else torch.float32
            out = self(torch.as_tensor(np.asarray(honest), dtype=dt, device=self.gen.device),
                       b)
            return out.detach().cpu().numpy()
        if self.fixed and self._step_value is not None:
            return self._step_value
        own = self._own
        if own is None or own.shape[0] != b:
            own = honest.mean(dim=0, keepdim=True).expand(b, -1)
        own = own.to(device=honest.device, dtype=honest.dtype)
        extra: dict[str, Any] = {"rule": self.rule} if getattr(
            self.fn, "needs_rule", False) else {}
        if getattr(self.fn, "uses_memo", False):
            extra["memo"] = self.memo
        vals = self.fn(honest, own, self.gen, **self.params, **extra)
        if vals.ndim == 3 and not self.receivers:
            vals = vals[0]  # one value per Byzantine node: row 0's (reliable broadcast)
        if self.fixed:
            self._step_value = vals
        return vals


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
