"""Pre-aggregation stages composed with any rule: ARC and NNM, by name (docs/theory.md §5.5).

A *pre-aggregation* maps a view of ``m`` vectors to ``m`` vectors; a rule then aggregates
them. A composed rule is named by its stages and its rule joined with ``+``, stages first, in
the order ``arc``, ``nnm``, the rule last::

    make_rule("arc+nnm+trimmed-mean", f)   # ARC, then NNM, then the trimmed mean
    make_rule("nnm+krum", f)               # = NNM(f, inner="krum")
    make_rule("arc+median", f)             # = ARC(f, inner="median")

:func:`parse_composition` is the one parser (used by :func:`agreement.rules.make_rule` and
:func:`agreement.protocol.get_config`). Each stage is a :class:`~agreement.rules.Rule` with an
``inner`` rule name (itself possibly composed), so ``arc+nnm+X`` is
``ARC(f, inner="nnm+X")`` and ``nnm+X`` is ``NNM(f, inner="X")``; keyword parameters of
``make_rule`` go to the last rule. ``nnm`` and ``arc`` alone are the stage followed by the
trimmed mean (``inner="trimmed-mean"``, the default) for ``NNM``; ``nnm`` is also a registry
name (``make_rule("nnm", f, inner=...)``), ``arc`` only a stage (``make_rule("arc", f)`` asks
for a rule after it).

ARC, adaptive robust clipping (Allouah, Guerraoui, Gupta, Jellouli, Rizk, Stephan, "The vital
role of gradient clipping in Byzantine-resilient distributed learning", arXiv:2405.14432,
2024; the definition used is the one of LPD-EPFL's byzfl, ``byzfl.ARC``): over a view of
``m`` vectors with ``f`` Byzantine, ``k = floor(2·(f/m)·(m-f))`` (computed exactly as
``(2·f·(m-f)) // m``); ``C`` is the ``(k+1)``-th largest ℓ2 norm of the view;
``x_i <- x_i·min(1, C/||x_i||)``. So the ``k`` vectors of largest norm are clipped to norm
``C`` (ties at ``C`` are not changed) and ``k = 0`` (``f = 0``) changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ._backend import Prepared, Rule, _torch, all_finite, nonfinite_error

STAGES: tuple[str, ...] = ("arc", "nnm")
"""The pre-aggregation stages, in the order a composition applies them."""

EXAMPLE = "arc+nnm+trimmed-mean"


def parse_composition(name: str) -> tuple[tuple[str, ...], str]:
    """Split a rule name into its pre-aggregation stages and its rule:
    ``"arc+nnm+trimmed-mean"`` -> ``(("arc", "nnm"), "trimmed-mean")``, ``"krum"`` ->
    ``((), "krum")``. ``ValueError`` (naming what to change) for an empty name or part, a
    stage that is not one (a rule or an unknown name before the last part), a composition
    that ends with a stage, a stage given twice or out of the order ``arc``, ``nnm``. Whether
    the last part is a registered rule is :func:`agreement.rules.make_rule`'s check."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"empty rule name {name!r}: give a rule (e.g. trimmed-mean) or a "
                         f"composition of pre-aggregation stages and a rule (e.g. {EXAMPLE})")
    parts = name.split("+")
    if len(parts) == 1:
        return (), name
    if any(not p.strip() for p in parts):
        raise ValueError(f"rule {name!r} has an empty part between '+' signs (e.g. {EXAMPLE})")
    *stages, last = parts
    for s in stages:
        if s not in STAGES:
            from . import RULES

            what = ("a rule, not a pre-aggregation stage: the rule comes last" if s in RULES
                    else "an unknown pre-aggregation stage")
            raise ValueError(f"{s!r} in rule {name!r} is {what}; stages: {', '.join(STAGES)}, "
                             f"then one rule (e.g. {EXAMPLE})")
    if last in STAGES:
        raise ValueError(f"rule {name!r} ends with the pre-aggregation stage {last!r}; end it "
                         f"with the rule that aggregates (e.g. {last}+trimmed-mean)")
    order = [STAGES.index(s) for s in stages]
    if order != sorted(set(order)):
        raise ValueError(f"rule {name!r}: each pre-aggregation stage at most once, in the "
                         f"order {', '.join(STAGES)} (e.g. {EXAMPLE})")
    return tuple(stages), last


def check_inner(stage: str, inner: str) -> None:
    """``ValueError`` unless ``inner`` may follow the stage ``stage`` (a rule, or a
    composition of later stages and a rule)."""
    stages, last = parse_composition(inner)
    later = STAGES[STAGES.index(stage) + 1:]
    bad = [s for s in (*stages, last) if s in STAGES and s not in later]
    if bad:
        raise ValueError(f"{stage}: the inner rule {inner!r} cannot start with {bad[0]!r}; "
                         f"stages come once each, in the order {', '.join(STAGES)}")


def composition_name(rule: Rule) -> str:
    """The full name of a rule: ``"arc+nnm+trimmed-mean"`` for a composed one, else its
    registry name."""
    inner = getattr(rule, "inner_rule", None)
    if rule.name in STAGES and inner is not None:
        return f"{rule.name}+{composition_name(inner())}"
    return rule.name


# --------------------------------------------------------------------------------------------
# ARC


def arc_count(m: int, f: int) -> int:
    """``k = floor(2·(f/m)·(m-f))``, the number of vectors ARC clips in a view of ``m``
    (exact integer arithmetic; ``0 <= k <= m/2``)."""
    if m < 1:
        raise ValueError(f"arc needs m >= 1 values, got m={m}")
    return (2 * f * max(m - f, 0)) // m


def _norms(prep: Prepared, who: str) -> np.ndarray:
    """The float64 ℓ2 norms of the view's rows (rescaled when the squares overflow)."""
    x = prep.x
    if prep.use_torch:
        torch = _torch()
        norms = torch.linalg.vector_norm(x.to(torch.float64), dim=1).cpu().numpy()
    else:
        x64 = x.astype(np.float64, copy=False)
        with np.errstate(over="ignore", invalid="ignore"):
            norms = np.sqrt(np.einsum("ij,ij->i", x64, x64))
    if np.isfinite(norms).all():
        return norms
    if not all_finite(x):
        raise nonfinite_error(who)
    if prep.use_torch:
        torch = _torch()
        xs = x.to(torch.float64)
        amax = xs.abs().amax(dim=1, keepdim=True).clamp_min(1e-300)
        return (torch.linalg.vector_norm(xs / amax, dim=1) * amax[:, 0]).cpu().numpy()
    amax = np.maximum(np.abs(x64).max(axis=1, keepdims=True), 1e-300)
    return np.linalg.norm(x64 / amax, axis=1) * amax[:, 0]


def arc_scales(norms: np.ndarray, f: int) -> tuple[np.ndarray, float, int]:
    """``(s, C, k)``: ARC's factors ``s_i = min(1, C/||x_i||)`` for a view with these norms,
    its threshold ``C`` (the ``(k+1)``-th largest norm) and its count ``k``."""
    m = len(norms)
    k = arc_count(m, f)
    c = float(np.sort(norms)[::-1][k])
    s = np.ones(m)
    big = norms > c
    s[big] = c / norms[big]
    return s, c, k


def arc_clip(prep: Prepared, f: int, who: str = "arc") -> Prepared:
    """The view with ARC applied: row ``i`` scaled by ``min(1, C/||x_i||)`` (module doc), in
    the view's compute dtype, on its device."""
    s, _, k = arc_scales(_norms(prep, who), f)
    if k == 0 or (s == 1.0).all():
        return prep
    if prep.use_torch:
        st = _torch().from_numpy(s).to(device=prep.x.device, dtype=prep.x.dtype)
        x = prep.x * st[:, None]
    else:
        x = prep.x * s.astype(prep.x.dtype)[:, None]
    return Prepared(x, prep.use_torch, prep.kind, prep.out_dtype, prep.device)


@dataclass(frozen=True)
class Staged(Rule):
    """A pre-aggregation stage: a rule that transforms the view, then applies ``inner`` (a
    rule's name or a composition of later stages and a rule, built with the same ``f`` and
    ``inner_params``; :func:`check_inner` says which may follow). ARC and NNM are stages."""

    inner: str = "trimmed-mean"
    inner_params: Any = field(default=())

    def __post_init__(self) -> None:
        super().__post_init__()
        params = self.inner_params
        if isinstance(params, Mapping):
            params = tuple(sorted(params.items()))
        object.__setattr__(self, "inner_params", tuple(params))
        check_inner(self.name, self.inner)
        self.inner_rule()  # validates the name and the parameters

    def inner_rule(self) -> Rule:
        """The inner rule, built with this stage's ``f``."""
        from . import make_rule

        return make_rule(self.inner, self.f, **dict(self.inner_params))


@dataclass(frozen=True)
class ARC(Staged):
    """Adaptive robust clipping, then ``inner`` (module doc):
    ``y = inner(x_1·min(1, C/||x_1||), ..., x_m·min(1, C/||x_m||))`` with ``C`` the
    ``(k+1)``-th largest norm of the view, ``k = floor(2·(f/m)·(m-f))``.

    ``inner`` is a registry name, or a composition of the later stages and a rule (``nnm+X``),
    built with the same ``f`` and ``inner_params``.
    Precondition: ``m >= inner.min_size()`` (ARC itself is defined for every ``m >= 1``).
    Guarantee: none proven here. ARC is not translation invariant (it clips towards the
    origin), so the inner rule's per-round constants do not carry over: a protocol using it
    has measured constants only (docs/theory.md §5.5, proofs/nnm.md).
    """

    name: ClassVar[str] = "arc"
    label: ClassVar[str] = "arc"

    def min_size(self) -> int:
        return max(1, self.inner_rule().min_size())

    def _size_expr(self) -> str:
        return self.inner_rule()._size_expr()

    def _apply(self, prep: Prepared) -> Any:
        return self.inner_rule()._apply(arc_clip(prep, self.f, self.label))


def arc(view: Any, f: int) -> Any:
    """The ARC-clipped view ``(m, d)`` (module doc), of the input's type, dtype and device."""
    from ._backend import check_f, prepare

    who = "arc"
    check_f(who, f)
    prep = prepare(view, who)
    out = arc_clip(prep, f, who)
    if out is prep:  # nothing clipped: a copy, never the caller's own array
        return prep.wrap(prep.x.clone() if prep.use_torch else prep.x.copy())
    return prep.wrap(out.x)


def compose(name: str, f: int = 0, **params: Any) -> Rule:
    """Build the composed rule ``name`` (``"arc+nnm+trimmed-mean"``): its first stage with
    ``inner`` the rest of the name and ``inner_params`` the parameters of the last rule."""
    stages, last = parse_composition(name)
    if not stages:
        raise ValueError(f"{name!r} is not a composition (no '+'); use make_rule")
    rest = "+".join((*stages[1:], last))
    return stage_rule(stages[0])(f=f, inner=rest, inner_params=tuple(sorted(params.items())))


def stage_rule(stage: str) -> Any:
    """The rule class of a pre-aggregation stage (``arc``: :class:`ARC`, ``nnm``:
    :class:`~agreement.rules.NNM`)."""
    if stage == "arc":
        return ARC
    if stage == "nnm":
        from .distance import NNM

        return NNM
    raise ValueError(f"unknown pre-aggregation stage {stage!r}; stages: {', '.join(STAGES)}")


__all__ = ["ARC", "STAGES", "arc", "arc_clip", "arc_count", "arc_scales", "check_inner",
           "compose", "composition_name", "parse_composition", "stage_rule"]
