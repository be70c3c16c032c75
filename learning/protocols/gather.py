"""What a coordinate-wise median over a first-quorum gather can and cannot do: the rank
bounds of ByzSGD's Distributed Median-based Contraction (docs/systems/byzsgd.md).

Setting: ``h`` honest nodes hold vectors ``v_1..v_h`` (rows of ``honest``), ``b`` Byzantine
nodes send anything (possibly a different vector to each receiver). Each honest receiver
takes the coordinate-wise median (``numpy.median``: the middle value, the mean of the two
middle values for an even count) of a set ``Q`` of exactly ``q`` vectors from distinct
senders, at most ``b`` of them Byzantine (a first-quorum gather: the first ``q`` received).

**Bound.** Per coordinate ``k``, with ``v_(1),k <= ... <= v_(h),k`` the honest values
sorted and ``L = floor((q+1)/2) - b``, every receiver's median lies in
``[v_(L),k , v_(h+1-L),k]``, whatever the Byzantine values and whichever honest senders
fill the quorum. Precondition ``L >= 1``, i.e. ``q >= 2b + 1`` (odd ``q``) or ``q >= 2b + 2``
(even ``q``); with ``q = n - f`` and ``b <= f`` that is ``n >= 3f + 1`` (odd quorum) or
``n >= 3f + 2``.

*Proof.* Odd ``q = 2m+1``: the median is the ``(m+1)``-th smallest of ``Q``; at most ``b``
of the ``m+1`` smallest are Byzantine, so it is at least the ``(m+1-b)``-th smallest honest
value of ``Q``, which is at least the ``(m+1-b)``-th smallest honest value overall
(``Q``'s honest values are a subset): ``>= v_(L)``. It is also the ``(m+1)``-th largest, so
by the same argument ``<= v_(h-m+b) = v_(h+1-L)``. Even ``q = 2m``: the median is the mean
of the ``m``-th and ``(m+1)``-th smallest; the first is ``>= v_(m-b)`` and the second
(the ``m``-th largest) ``<= v_(h-m+b+1)``, and the mean lies between them. ∎

**What it gives.** Validity (every honest output within the honest values' per-coordinate
range) always; a strict trimming of the ``L-1`` most extreme honest values of every
coordinate when ``L >= 2`` (``q = n - f``, ``b = f``: ``n >= 3f + 3``). It is *not* a
multiplicative contraction of the diameter: honest values clustered at two extremes keep
``v_(L)`` and ``v_(h+1-L)`` apart, so under a worst-case schedule the honest diameter after
a gather can equal the one before (at ``n = 3f + 1``, ``L = 1``: the bound is the honest
range itself). :func:`median_gather_bounds` computes the bound, :func:`diameter_bound` its
ℓ2 size; the ByzSGD tests check every honest server against it after every gather.
"""

from __future__ import annotations

import numpy as np


def median_gather_rank(q: int, b: int) -> int:
    """``L = floor((q+1)/2) - b``: the honest order statistic that bounds a median of ``q``
    values with at most ``b`` Byzantine ones (module doc). ``ValueError`` if ``L < 1`` (the
    Byzantine values could then be the median: the gather has no guarantee)."""
    if q < 1 or b < 0:
        raise ValueError(f"need a quorum q >= 1 and b >= 0 Byzantine senders, got q={q}, b={b}")
    rank = (q + 1) // 2 - b
    if rank < 1:
        raise ValueError(f"a median of q={q} values with b={b} Byzantine ones can be any "
                         f"Byzantine value: need q >= 2b+1 (odd q) or 2b+2 (even q)")
    return rank


def median_gather_bounds(honest: np.ndarray, q: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-coordinate ``(low, high)``: ``v_(L)`` and ``v_(h+1-L)`` of the honest rows
    ``honest`` ``(h, d)``, ``L`` = :func:`median_gather_rank` ``(q, b)``. Every honest
    median over a first-quorum gather of ``q`` vectors with at most ``b`` Byzantine ones lies
    in ``[low, high]`` coordinate-wise (module doc: the bound and its proof). Needs the
    quorum's honest part to fit: ``q - b <= h`` is not required (fewer honest senders only
    tighten the set), but ``L <= h`` is."""
    values = np.asarray(honest, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 1:
        raise ValueError(f"honest must be an (h, d) array with h >= 1, got shape {values.shape}")
    h = values.shape[0]
    rank = median_gather_rank(q, b)
    if rank > h:
        raise ValueError(f"rank L={rank} exceeds the h={h} honest vectors: a quorum of q={q} "
                         f"with b={b} Byzantine senders needs at least {q - b} honest ones")
    s = np.sort(values, axis=0)
    return s[rank - 1], s[h - rank]


def diameter_bound(honest: np.ndarray, q: int, b: int) -> float:
    """``||high - low||_2`` of :func:`median_gather_bounds`: no two honest medians of the
    gather are farther apart than this (they both lie in the box ``[low, high]``)."""
    low, high = median_gather_bounds(honest, q, b)
    return float(np.linalg.norm(high - low))


__all__ = ["diameter_bound", "median_gather_bounds", "median_gather_rank"]
