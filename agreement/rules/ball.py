"""Ball MDA: a polynomial minimum-diameter averaging (docs/theory.md §5.3, "Ball MDA";
``proofs/ball_mda.md``).

Exact MDA (:mod:`.subsets`) looks for the ``(m-f)``-subset of least diameter, which is
exponential in ``f`` at worst. Ball MDA looks instead for the smallest *ball centred at a
view point* that holds ``m-f`` view points, and averages them: ``O(m²·d)`` for the Gram
matrix (shared with every Gram rule, :mod:`._backend`) and ``O(m² log m)`` after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ._backend import Gram
from .distance import GramRule


def ball_selection(D: np.ndarray, f: int) -> tuple[int, np.ndarray, float]:
    """``(i*, S, r²)`` for the squared distances ``D`` (m x m) of a view and ``f``.

    ``r_i²`` is the ``(m-f)``-th smallest entry of row ``i`` of ``D`` (``x_i`` itself
    included, at distance 0): the squared radius of the least ball centred at ``x_i`` that
    holds ``m-f`` view points. ``i* = argmin_i r_i`` (ties: the lowest index) and ``S`` (sorted
    indices) are the ``m-f`` nearest view points of ``x_{i*}``: itself first, then by distance,
    ties by index. So ``||x_j - x_{i*}|| <= r_{i*}`` for ``j ∈ S``, and ``diam(S) <= 2 r_{i*}``.
    """
    m = D.shape[0]
    q = m - f
    if not 1 <= q <= m:
        raise ValueError(f"ball_mda needs 0 <= f < m, got m={m}, f={f}")
    r2 = np.partition(D, q - 1, axis=1)[:, q - 1]
    i = int(np.argmin(r2))
    idx = np.arange(m)
    order = np.lexsort((idx, idx != i, D[i]))
    return i, np.sort(order[:q]), float(r2[i])


@dataclass(frozen=True)
class BallMDA(GramRule):
    """Ball minimum-diameter averaging ``BallMDA_f`` (docs/theory.md §5.3, "Ball MDA").

    For each view point ``x_i`` let ``r_i`` be the distance to its ``(m-f)``-th nearest view
    point (itself included, at distance 0); take ``i* = argmin_i r_i`` (ties: lowest index) and
    output the mean of the ``m-f`` nearest view points of ``x_{i*}`` (itself first, then by
    distance, ties by index): :func:`ball_selection`. Cost ``O(m²·d)`` (one Gram product) plus
    ``O(m² log m)``, against exact MDA's branch and bound (``O(2^f·m³)`` at worst).

    Precondition: ``m >= 2f+1``.
    Guarantee (``proofs/ball_mda.md``): with at most ``f`` Byzantine values a view holds
    ``>= m-f`` honest values, so every honest ``x_j`` has ``r_j <= Δ2(honest)``; hence
    ``r_{i*} <= Δ2`` and the chosen set ``S`` has ``diam(S) <= 2·r_{i*} <= 2·Δ2`` (indeed
    ``<= 2·diam`` of exact MDA's subset), with ``m-2f >= 1`` honest points. MDA's arguments
    (``proofs/mda.md``) then go through with ``2Δ2`` in place of ``Δ2``: under witness views
    with ``n >= 3f+1``, per round ``Δ2(y) <= 2κ(n,f)·Δ2(x)`` and
    ``||y_j - x̄|| <= (2f/(n-2f) + 2f/(n-f))·Δ2(x)``; ``C = β/(1-2κ)`` over any number of
    rounds, a finite, dimension-free constant where ``2κ < 1`` (n >= 8, 16, 23 at f = 1, 2,
    3: :func:`agreement.constants.ball_mda_min_n`).
    """

    name: ClassVar[str] = "ball-mda"
    label: ClassVar[str] = "ball_mda"

    def min_size(self) -> int:
        return 2 * self.f + 1

    def _size_expr(self) -> str:
        return "2f+1"

    def coefficients(self, g: Gram) -> np.ndarray:
        m = g.G.shape[0]
        _, S, _ = ball_selection(g.distances2(), self.f)
        a = np.zeros(m)
        a[S] = 1.0 / len(S)
        return a


def ball_mda(view: Any, f: int) -> Any:
    """Ball MDA: the mean of the ``m-f`` nearest view points of the view point whose
    ``(m-f)``-th nearest neighbour is closest (see :class:`BallMDA`)."""
    return BallMDA(f)(view)


__all__ = ["BallMDA", "ball_mda", "ball_selection"]
