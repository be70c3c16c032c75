"""The MVE counterexamples of ``proofs/mve.md``, built explicitly and run through the rule as
implemented (``make_rule("mve", f).batch``), with the views checked by
:func:`agreement.engine.check_views`.

In 1-D the rule (volumes compared in ``min(d, m-f-1) = 1`` dimension since commit b66de04;
a rank-1 set's MVEE in closed form, a noise floor per subset, since de568b0) is exactly "the
(m-f)-subset of least range, its midpoint", up to float rounding.

- :func:`bias_1d` (Proposition 4): one round in 1-D whose averaging ratio is
  ``1/2 + 2f/(n-f) - ε/2``: MVE's averaging constant does not tend to 0 with ``f/n``, and
  Theorem 3's bias bound ``2f/(n-f) + 1/2`` is tight.
- :func:`stall_1d` (Proposition 6): n = 7, f = 1, an adversary (Byzantine value + views) that
  keeps the honest diameter from shrinking (factor ``1 - ε/2`` per round): no contraction.
- :func:`flat_subset` (Proposition 5): d >= 2, a Byzantine value in the affine hull of
  ``m-f-1`` honest values that are (nearly) degenerate: the flat subset wins and drags the
  centre away; the ratio grows with the Byzantine distance until the rounding threshold of
  the implemented rule stops it (in exact arithmetic: unbounded).
- :func:`floor_inflation` (Proposition 8, found by this analysis and fixed in de568b0): 1-D,
  f >= 2, a far Byzantine value used to raise the view-wide noise floor above every honest
  subset's spread, all subsets within the floor tied and the first in the view's order won,
  holding a second, near Byzantine value (Byzantine rows first): ratio 84.5 at far = 1e10,
  8.5e91 at 1e100. With per-subset floors the honest subset wins: now a regression check of
  Theorem 3's bound (ratio ~1e-16).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agreement.engine import check_views
from agreement.rules import make_rule


@dataclass
class Outcome:
    """What a construction produced: its ratio and the data that reproduces it."""

    name: str
    n: int
    f: int
    d: int
    ratio: float
    detail: dict[str, Any]


def _round(n: int, f: int, honest: np.ndarray, byz: np.ndarray, masks: np.ndarray
           ) -> np.ndarray:
    check_views(masks, n, f, "witness", np.arange(n))
    return np.asarray(make_rule("mve", f).batch(np.concatenate([honest, byz]), masks))


def bias_1d(n: int = 7, f: int = 1, eps: float = 1e-3) -> Outcome:
    """Every honest node's view: ``q-f`` honest zeros, ``f`` honest ones and ``f`` Byzantine
    values at ``-1+ε`` (``q = n-2f``); the other ``f`` honest nodes hold 1. The subset
    {Byzantine, zeros} has range ``1-ε`` and beats the honest one (range 1; every other
    ``q``-subset has range ``2-ε``), so every honest node outputs its midpoint ``(ε-1)/2``
    while ``x̄ = 2f/(n-f)``."""
    if n < 6 * f + 1 or f < 1:
        raise ValueError(f"needs f >= 1 and n >= 6f+1, got n={n}, f={f}")
    h, q = n - f, n - 2 * f
    honest = np.array([0.0] * (q - f) + [1.0] * (2 * f))[:, None]
    byz = np.full((f, 1), -1.0 + eps)
    view = np.zeros(n, bool)
    view[: q - f + f] = True  # the zeros and the first f ones
    view[h:] = True           # the Byzantine values
    masks = np.stack([view] * h)
    y = _round(n, f, honest, byz, masks)
    ratio = float(np.abs(y.mean(0) - honest.mean(0))[0])  # Δ2(x) = 1
    return Outcome("mve-1d-bias", n, f, 1, ratio,
                   {"eps": eps, "outputs": y[:, 0].tolist(), "honest_mean": 2 * f / h,
                    "predicted": 0.5 + 2 * f / h - eps / 2})


def stall_1d(rounds: int = 20, eps: float = 1e-3) -> Outcome:
    """n = 7, f = 1. Honest values in two groups, A (2 nodes) at ``a`` and B (4 nodes) at
    ``c``, ``R = |c-a|``, ``s = sign(c-a)``. The Byzantine value is ``c + s·R(1-ε)``; view 1 =
    all but one node of A, view 2 = all seven. View 1's best 5-subset is B + Byzantine (range
    ``R(1-ε)``), centre ``c + s·R(1-ε)/2``; view 2's is A + B (range R), centre ``(a+c)/2``.
    Two honest nodes get view 1, four get view 2: the outputs form the same two groups,
    mirrored, ``R(1-ε/2)`` apart. Returns the diameter ratio after ``rounds`` rounds."""
    n, f = 7, 1
    x = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 1.0])[:, None]
    A, B = [0, 1], [2, 3, 4, 5]
    diam = [1.0]
    for _ in range(rounds):
        a, c = float(x[A[0], 0]), float(x[B[0], 0])
        R, s = abs(c - a), np.sign(c - a)
        byz = np.array([[c + s * R * (1 - eps)]])
        v1 = np.ones(n, bool)
        v1[A[0]] = False
        v2 = np.ones(n, bool)
        masks = np.stack([v1 if j in A else v2 for j in range(6)])  # A's nodes get view 1
        y = _round(n, f, x, byz, masks)
        x = y
        # the two groups of the next round: A' = the nodes that got view 1 (2), B' = the rest
        diam.append(float(x.max() - x.min()))
    return Outcome("mve-1d-stall", n, f, 1, diam[-1] / diam[0],
                   {"eps": eps, "rounds": rounds, "diameters": diam,
                    "predicted": (1 - eps / 2) ** rounds})


def flat_subset(d: int = 2, n: int = 7, f: int = 1, seed: int = 0,
                distances: tuple[float, ...] = tuple(np.geomspace(1, 1e4, 9))) -> Outcome:
    """One round in R^d (``d >= 2``), every honest view = all n values.

    d = 2: five honest values on a segment of the first axis, one off it at height 0.3; the
    Byzantine value on the axis at distance L. d >= n-f-1: honest values in general position
    (Gaussian, seeded), the Byzantine value an affine combination of the first n-f-1 of them
    reaching distance ~L. The ratio ``||ȳ - x̄||/Δ2(x)`` is reported for the worst L. (Volumes
    compared in ``min(d, n-f-1)`` dimensions since b66de04: the flat subset wins up to
    L ≈ 1260 at d = 2, ratio 629, and up to L ≈ 1500 at d = 10, ratio 258; measured before
    de568b0, see ``proofs/mve.md`` Proposition 5 for the current figures.)"""
    if d < 2:
        raise ValueError("flat_subset needs d >= 2 (in 1-D see bias_1d)")
    h = n - f
    rng = np.random.default_rng(seed)
    if d == 2 or d < h - 1:
        x = np.zeros((h, d))
        x[: h - 1, 0] = np.linspace(0, 1, h - 1)
        x[h - 1, 0], x[h - 1, 1] = 0.5, 0.3
    else:
        x = rng.normal(size=(h, d))
    D = float(np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)).max())
    best = (-1.0, 0.0)
    masks = np.ones((h, n), bool)
    for L in distances:
        if d == 2 or d < h - 1:
            byz = np.zeros((f, d))
            byz[:, 0] = L
        else:
            w = np.zeros((f, h))
            w[:, 0], w[:, 1] = L, 1 - L  # x_0 + (L-1)·(x_0 - x_1)... in the hull of x_0..x_{h-2}
            w[:, 2 : h - 1] = 0.0
            byz = w @ x
        y = _round(n, f, x, byz, masks)
        r = float(np.linalg.norm(y.mean(0) - x.mean(0)) / D)
        if r > best[0]:
            best = (r, float(L))
    return Outcome("mve-flat-subset", n, f, d, best[0],
                   {"distance": best[1], "honest_diameter": D})


def floor_inflation(n: int = 13, f: int = 2, far: float = 1e10, center: str = "ellipsoid"
                    ) -> Outcome:
    """Proposition 8's view (a regression check since de568b0). 1-D, ``f >= 2``. Honest values
    ``linspace(0, 1, n-f)``; Byzantine node 0 holds a value ``L`` near them and node 1 a far
    value ``far`` (the others, if any, ``far`` too); every honest view is all ``n`` values,
    rows in node-id order (Byzantine nodes ``0..f-1`` first, as the message-level protocol
    orders a view by origin and ``agreement.run`` numbers the Byzantine nodes by default).

    Before de568b0 the view's one noise floor was ``φ = 4·eps·n·3·far²`` (1-D); every
    ``(n-f)``-subset without a far value had a centred sum of squares ``<= φ``
    (``L = ½·sqrt(φ)``), counted as a point (rank 0) with the same key ``½·log φ``, and the
    first in combination order won: the near Byzantine value and ``n-f-1`` honest ones, output
    their mean ``≈ L/(n-f)``: the ratio grew like ``far`` (``detail["predicted"]`` is that old
    output's ratio). Since de568b0 each subset's floor comes from its own points: the honest
    subset has rank 1 and the least range, and every honest node outputs ``x̄`` (ratio ~1e-16,
    within Theorem 3's bound)."""
    if f < 2 or n < 6 * f + 1:
        raise ValueError(f"needs f >= 2 and n >= 6f+1, got n={n}, f={f}")
    h = n - f
    honest = np.linspace(0.0, 1.0, h)[:, None]
    phi = 4.0 * np.finfo(np.float64).eps * n * 3.0 * far**2
    near = 0.5 * float(np.sqrt(phi))
    byz = np.full((f, 1), far)
    byz[0, 0] = near
    values = np.concatenate([byz, honest])  # node ids 0..n-1, Byzantine first
    masks = np.ones((h, n), bool)
    check_views(masks, n, f, "witness", np.arange(n))
    # every honest view is the same: one evaluation (batch would repeat it h times; before
    # de568b0 each took ~10 s, Khachiyan running to max_iter on the subsets {far, near, ...})
    y = np.repeat(np.asarray(make_rule("mve", f, center=center)(values))[None], h, axis=0)
    ratio = float(np.abs(y.mean(0) - honest.mean(0))[0])  # Δ2(x) = 1
    return Outcome("mve-1d-floor-inflation", n, f, 1, ratio,
                   {"far": far, "near": near, "floor": phi, "center": center,
                    "outputs": y[:, 0].tolist(), "honest_mean": float(honest.mean()),
                    "predicted": float((near + honest[: h - 1, 0].sum()) / h
                                       - honest.mean())})


__all__ = ["Outcome", "bias_1d", "flat_subset", "floor_inflation", "stall_1d"]
