"""Robust rules of averaging agreement: a view of ``m`` vectors in, one vector out.

Every rule is a small frozen callable (:class:`Rule`)::

    rule = make_rule("trimmed-mean", f=2)
    y = rule(view)                 # view: (m, d) numpy/torch, or a sequence of 1-D vectors
    Y = rule.batch(values, masks)  # row i = rule(values[masks[i]]), all views at once
    rule.min_size()                # the least m for which it is defined (here 2f+1)

Outputs have the input's type, dtype and device. Rules validate their precondition (``m``
versus ``f``), reject non-finite and malformed input with ``ValueError``, and never import
torch themselves (they accept tensors if the caller has imported torch).

Registry names: see :func:`rule_names`. Plain functions (``trimmed_mean(view, f)``, ...) are
exported too. See docs/architecture.md ("Performance principles") and docs/theory.md §5 for the
maths.

For tests and tools that look beneath the rules: :func:`prepare` (a view validated and
converted once, :class:`Prepared`), :func:`gram` (its centred Gram matrix ``G`` with
``D_ij = G_ii + G_jj - 2 G_ij``, :class:`Gram`), and :mod:`backend`, the module they live in,
whose flag ``backend.FORCE_TORCH_OPS = True`` forces the torch (accelerator) code path on CPU
tensors.

:func:`make_rule` builds a rule instance (builders are ``make_*``); ``get_rule``, its old
name, is kept as an alias for this release only (it goes in the next).
:func:`register_rule` adds your own rule to the registry (``make_rule(name)``, the trusted
server's ``--protocol`` of ``python -m learning train --method server``, the listings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netsim.registry import register

from . import _backend as backend
from ._backend import Gram, Prepared, Rule, gram, prepare
from .ball import BallMDA
from .coordinate import Mean, Median, TrimmedMean, mean, median, trimmed_mean
from .distance import (
    NNM,
    Bulyan,
    CenteredClipping,
    GeometricMedian,
    GramRule,
    Krum,
    MultiKrum,
    bulyan,
    centered_clipping,
    geometric_median,
    krum,
    multi_krum,
    nnm,
)
from .mvee import Ellipsoid, mvee
from .preagg import ARC, STAGES, arc, compose, composition_name, parse_composition
from .subsets import MDA, MVE, mda, mda_subset, mve, mve_choice

RuleFactory = Callable[..., Rule]
"""A rule class, or any ``factory(f=f, **params) -> Rule``."""

RULES: dict[str, RuleFactory] = {
    cls.name: cls
    for cls in (
        Mean,
        TrimmedMean,
        Median,
        Krum,
        MultiKrum,
        Bulyan,
        GeometricMedian,
        CenteredClipping,
        NNM,
        MDA,
        MVE,
        BallMDA,
    )
}


BUILTIN_RULES: frozenset[str] = frozenset(RULES)
"""The rules of Jungle itself (the others came from :func:`register_rule`)."""


def register_rule(name: str, factory: RuleFactory, *, replace: bool = False) -> RuleFactory:
    """Register ``factory(f=f, **params) -> Rule`` as the rule ``name`` (a :class:`Rule`
    subclass: ``__call__(view)`` on an ``(m, d)`` view, ``batch(values, masks)``,
    ``min_size()``). A taken name is a ``ValueError`` unless ``replace``. A registered
    rule is usable by name wherever a rule is (``make_rule``, the trusted-server baseline);
    an agreement *protocol* is a gather and a rule with proven constants, so it is not
    created by registering a rule (``agreement.protocol.CONFIGS``)."""
    return register(RULES, name, factory, what="rule", replace=replace)


def rule_names() -> list[str]:
    """The registry names, sorted."""
    return sorted(RULES)


def make_rule(name: str, f: int = 0, **params: Any) -> Rule:
    """Build the rule registered as ``name`` tolerating ``f`` values, with its parameters
    (e.g. ``make_rule("nnm", 2, inner="krum")``, ``make_rule("mve", 1, method="exact")``).

    ``name`` may compose pre-aggregation stages with any registered rule, stages first, in
    the order ``arc``, ``nnm`` (:mod:`agreement.rules.preagg`, docs/theory.md §5.5):
    ``make_rule("arc+nnm+trimmed-mean", f)`` is ARC, then NNM, then the trimmed mean, the
    same rule as ``ARC(f, inner="nnm+trimmed-mean")``; ``params`` go to the last rule.
    ``ValueError`` naming what to change for an unknown rule or stage, a stage in the wrong
    place, an empty name (:func:`parse_composition`)."""
    stages, _ = parse_composition(name)
    if stages:
        return compose(name, f, **params)
    if name in STAGES and name not in RULES:
        raise ValueError(f"{name!r} is a pre-aggregation stage, not a rule: compose it with "
                         f"the rule that aggregates, e.g. {name}+trimmed-mean")
    try:
        factory = RULES[name]
    except KeyError:
        raise ValueError(
            f"unknown rule {name!r}; known rules: {', '.join(rule_names())}"
        ) from None
    return factory(f=f, **params)


get_rule = make_rule
"""Deprecated alias of :func:`make_rule` (this release only; builders are ``make_*``)."""


__all__ = [
    "ARC",
    "BUILTIN_RULES",
    "MDA",
    "MVE",
    "NNM",
    "RULES",
    "STAGES",
    "Bulyan",
    "CenteredClipping",
    "Ellipsoid",
    "GeometricMedian",
    "Gram",
    "GramRule",
    "Krum",
    "Mean",
    "Median",
    "MultiKrum",
    "Prepared",
    "Rule",
    "TrimmedMean",
    "arc",
    "backend",
    "bulyan",
    "centered_clipping",
    "compose",
    "composition_name",
    "geometric_median",
    "get_rule",
    "gram",
    "krum",
    "make_rule",
    "mda",
    "mda_subset",
    "mean",
    "median",
    "multi_krum",
    "mve",
    "mve_choice",
    "mvee",
    "nnm",
    "parse_composition",
    "prepare",
    "register_rule",
    "rule_names",
    "trimmed_mean",
]
