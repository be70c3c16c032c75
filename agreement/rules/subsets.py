"""Subset rules: minimum-diameter averaging (MDA) and minimum-volume-ellipsoid averaging (MVE).

Both pick, among the subsets ``S`` of ``m - f`` of the ``m`` vectors, the "smallest" one, and
depend on ``d`` only through the Gram matrix of the view (:mod:`._backend`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ._backend import Gram
from .distance import GramRule
from .mvee import (
    DEFAULT_RANK_TOL,
    DEFAULT_TOL,
    affine_rank_eig,
    hull_coordinates,
    hull_to_weights,
    khachiyan,
    mvee_cvxpy,
)

# --------------------------------------------------------------------------------------------
# MDA


class _Pairs:
    """The pairs ``i < j`` sorted by decreasing distance (stable)."""

    def __init__(self, D: np.ndarray) -> None:
        m = D.shape[0]
        iu, ju = np.triu_indices(m, 1)
        dist = D[iu, ju]
        order = np.argsort(-dist, kind="stable")
        self.i, self.j, self.dist = iu[order], ju[order], dist[order]

    def first_alive(self, removed: np.ndarray, above: float | None = None) -> int:
        """Index of the longest pair with no removed endpoint (and distance > above), or -1."""
        alive = ~(removed[self.i] | removed[self.j])
        if above is not None:
            alive &= self.dist > above
        k = int(np.argmax(alive)) if alive.size else 0
        return k if alive.size and alive[k] else -1


def _best_diameter(pairs: _Pairs, removed: np.ndarray, budget: int) -> float:
    """Least diameter of ``V \\ R`` over removal sets ``R ⊇ removed`` with ``budget`` more points.

    Exact: the longest surviving pair ``(u, v)`` must lose an endpoint, or the diameter is
    ``D(u, v)`` whatever else is removed and removing ``u`` is at least as good (removing points
    never increases a diameter); so branch on removing ``u`` or ``v`` (``2^f`` leaves).
    """
    k = pairs.first_alive(removed)
    if k < 0:
        return 0.0
    if budget == 0:
        return float(pairs.dist[k])
    best = np.inf
    for w in (pairs.i[k], pairs.j[k]):
        removed[w] = True
        best = min(best, _best_diameter(pairs, removed, budget - 1))
        removed[w] = False
    return best


def _cover_exists(pairs: _Pairs, kept: np.ndarray, removed: np.ndarray, budget: int,
                  bound: float) -> bool:
    """Can ``budget`` more points, none of them in ``kept``, cover every pair longer than
    ``bound`` (i.e. leave a set of diameter ``<= bound``)?"""
    k = pairs.first_alive(removed, bound)
    if k < 0:
        return True
    if budget == 0:
        return False
    for w in (pairs.i[k], pairs.j[k]):
        if kept[w]:
            continue
        removed[w] = True
        ok = _cover_exists(pairs, kept, removed, budget - 1, bound)
        removed[w] = False
        if ok:
            return True
    return False


def mda_subset(D: np.ndarray, f: int) -> tuple[np.ndarray, float]:
    """The MDA subset: ``(indices of S (sorted), diam(S)²)`` for squared distances ``D``.

    ``S`` minimises the diameter among the subsets of size ``m - f``; among minimisers it is
    the lexicographically first (the first one ``itertools.combinations`` would list). Exact,
    in ``O(2^f · m³)`` at worst (branching on the longest pair, then a greedy lexicographic
    completion with a feasibility test per point) rather than ``C(m, f)`` enumeration.
    """
    m = D.shape[0]
    if f == 0:
        return np.arange(m), float(D.max()) if m > 1 else 0.0
    pairs = _Pairs(D)
    removed = np.zeros(m, bool)
    dstar = _best_diameter(pairs, removed, f)
    kept = np.zeros(m, bool)
    nk = 0
    for i in range(m):
        if nk == m - f:
            break
        kept[i] = True
        if _cover_exists(pairs, kept, removed, f, dstar):
            nk += 1
        else:
            kept[i] = False
    return np.flatnonzero(kept), dstar


@dataclass(frozen=True)
class MDA(GramRule):
    """Minimum-diameter averaging ``MDA_f`` (docs/theory.md §5.3).

    ``S* = argmin_{S ⊆ V, |S| = m-f} max_{i,j ∈ S} ||x_i - x_j||`` (ties: the lexicographically
    first subset), output ``y = (1/(m-f)) Σ_{i ∈ S*} x_i``. Exact (branch and bound on the
    longest pair, see :func:`mda_subset`); distances from the Gram matrix.

    Precondition: ``m >= 2f+1``.
    Guarantee: if at most ``f`` values are Byzantine, the ``m-f`` honest values are a candidate,
    so ``diam(S*) <= Δ2(honest)``; ``S*`` has ``m-2f >= 1`` honest points, hence every point of
    ``S*`` and the output ``y`` lie within ``diam(S*)`` of an honest value (indeed of every point of
    ``S*``). Iterated under witness views with n >= 3f+1 (``proofs/mda.md``): per round
    ``Δ2(y) <= κ·Δ2(x)`` with ``κ = (f+⌈f/2⌉)/(n-2f+⌈f/2⌉) + (f+⌊f/2⌋)/(n-2f+⌊f/2⌋)`` (tight
    at n = 7, f = 1; the original spec's ``4f/(n-2f)`` is looser) and ``||y_j - x̄|| <= β·Δ2(x)``,
    ``β = f/(n-2f) + 2f/(n-f)``; over any number of rounds ``C_MDA = β/(1-κ)``
    (:mod:`agreement.constants`), a finite constant where ``κ < 1`` (n >= 5, 10, 14 at
    f = 1, 2, 3: the protocol's resilience, ``agreement.protocol.check_resilience``).
    """

    name: ClassVar[str] = "mda"
    label: ClassVar[str] = "mda"

    def min_size(self) -> int:
        return 2 * self.f + 1

    def _size_expr(self) -> str:
        return "2f+1"

    def coefficients(self, g: Gram) -> np.ndarray:
        m = g.G.shape[0]
        S, _ = mda_subset(g.distances2(), self.f)
        a = np.zeros(m)
        a[S] = 1.0 / len(S)
        return a


# --------------------------------------------------------------------------------------------
# MVE


@dataclass
class MVEChoice:
    """The MVE subset and its ellipsoid: indices, affine dimension, log-volume (without the
    unit-ball constant), and the coefficients of the centre on the subset's points."""

    subset: np.ndarray
    dim: int
    log_volume: float
    center_weights: np.ndarray


def _subsets_block(it: itertools.combinations, size: int) -> np.ndarray:
    return np.array(list(itertools.islice(it, size)), dtype=np.intp)


def mve_subsets(G: np.ndarray, f: int, method: str = "fast", tol: float = DEFAULT_TOL,
                rank_tol: float = DEFAULT_RANK_TOL, block: int = 4096, floor: float = 0.0,
                dim: int | None = None, noise: float = 0.0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """MVEE of every subset of ``m - f`` points, in ``itertools.combinations`` order.

    Eigenvalues of a subset's centred sub-Gram matrix at or below its floor
    ``max(floor, noise·(m-f)·max_{i∈S} G_ii)`` count as 0: ``noise`` is the relative rounding
    of the entries of ``G`` (:meth:`Gram.noise`), and each subset's floor follows the size
    of its *own* points, so that one far value raises the floor of the subsets that hold it
    only (a view-wide floor let a far Byzantine value flatten every honest subset to a point,
    all tied: ``proofs/mve.md``, Proposition 8).

    Returns ``(subsets (C, m-f), dims (C,), log_volumes (C,), centre weights, keys (C,))``:
    ``log_volumes`` in each subset's own dimension ``r``; ``keys`` the log-volume in the
    common dimension ``k = min(dim, m-f-1)`` (``dim``: the dimension of the space, ``None``
    for large) of the ellipsoid inflated to the subset's numerical threshold
    ``θ = max(floor_S, rank_tol·λ_max)`` in each of its ``k-r`` flat directions:
    ``key = log_volume + ½(k-r)·log θ`` (see :class:`MVE`).
    """
    m = G.shape[0]
    q = m - f
    k_common = q - 1 if dim is None else min(dim, q - 1)
    subs, dims, lvs, wts, keys = [], [], [], [], []
    it = itertools.combinations(range(m), q)
    while True:
        S = _subsets_block(it, block)
        if S.size == 0:
            break
        Gs = G[S[:, :, None], S[:, None, :]]
        floors = np.maximum(max(floor, 0.0), noise * q * np.diagonal(Gs, axis1=1, axis2=2)
                            .max(axis=1, initial=0.0))
        lam, V, r = affine_rank_eig(Gs, rank_tol, floors)
        r = np.minimum(r, k_common)  # a subset of q points in R^dim spans <= min(dim, q-1)
        theta = np.maximum(rank_tol * np.maximum(lam[:, 0], 0.0), floors)
        lv = np.zeros(len(S))  # r = 0: all points equal, a point (no axes)
        W = np.full((len(S), q), 1.0 / q)
        for rv in np.unique(r):
            sel = np.flatnonzero(r == rv)
            if rv == 0:
                continue
            P = hull_coordinates(lam[sel], V[sel], int(rv))
            if method == "fast":
                res = khachiyan(P, tol)
                lv[sel] = res.log_volume
                W[sel] = res.weights
            else:
                for b, s in enumerate(sel):
                    y, lv[s] = mvee_cvxpy(P[b])
                    W[s] = hull_to_weights(y, lam[s], V[s])
        flat = k_common - r
        with np.errstate(divide="ignore", invalid="ignore"):
            keys.append(lv + np.where(flat > 0, 0.5 * flat * np.log(theta), 0.0))
        subs.append(S)
        dims.append(r)
        lvs.append(lv)
        wts.append(W)
    return (np.concatenate(subs), np.concatenate(dims), np.concatenate(lvs), wts,
            np.concatenate(keys))


def mve_choice(G: np.ndarray, f: int, method: str = "fast", tol: float = DEFAULT_TOL,
               rank_tol: float = DEFAULT_RANK_TOL, block: int = 4096, floor: float = 0.0,
               dim: int | None = None, noise: float = 0.0) -> MVEChoice:
    """The MVE subset of a view with Gram matrix ``G`` (of vectors in ``R^dim``).

    Order: least log-volume in the common dimension ``min(dim, m-f-1)``, flat directions
    counted at the numerical threshold (the ``keys`` of :func:`mve_subsets`), then the first in
    combination order.
    """
    if method not in ("fast", "exact"):
        raise ValueError(f"mve: method must be 'fast' or 'exact', got {method!r}")
    S, r, lv, wts, key = mve_subsets(G, f, method, tol, rank_tol, block, floor, dim, noise)
    W = np.concatenate(wts)
    best = int(np.lexsort((np.arange(len(S)), key))[0])
    return MVEChoice(S[best], int(r[best]), float(lv[best]), W[best])


@dataclass(frozen=True)
class MVE(GramRule):
    """Minimum-volume-ellipsoid averaging ``MVE_f`` (docs/theory.md §5.2).

    Among the subsets ``S`` of ``m - f`` of the ``m`` vectors, take the one whose
    minimum-volume enclosing ellipsoid (MVEE) has the least volume and output the ellipsoid's
    centre (``center="ellipsoid"``) or the mean of ``S`` (``center="mean"``).

    The points of ``S`` span an affine subspace of dimension ``r <= min(d, m-f-1)``; the MVEE
    is computed inside it (coordinates from the eigen-decomposition of the centred sub-Gram
    matrix, directions with eigenvalue ``<= rank_tol·λ_max`` or below the rounding noise of
    the subset's entries ``4·eps·(m-f)·(sqrt(d)+2)·max_{i∈S} G_ii`` dropped, so that duplicated
    points count as one; :mod:`.mvee`). Volumes are compared in the common dimension
    ``k = min(d, m-f-1)`` (docs/theory.md §5.2: in ``R^d`` when the subsets are full-dimensional
    there, in their hull's dimension ``m-f-1`` when ``d`` is larger), each flat direction of a
    subset counted at its numerical threshold ``θ`` (the ellipsoid inflated to the rounding noise:
    ``log vol = log vol_r + ½(k-r)·log θ``); remaining ties go to the first subset in
    ``itertools.combinations`` order. So an exactly degenerate subset (e.g. collinear points,
    duplicates) has a tiny volume and is preferred, as in exact arithmetic, but a subset that
    only *looks* flat because one far value dwarfs its other directions (in float64,
    directions below ``rank_tol·λ_max`` are lost) pays for its length. In 1-D the rule is
    "the subset of least range, its midpoint" (``center="mean"``: its mean, i.e. MDA's output),
    up to ties and the solver's relative tolerance ``tol``.

    Guarantees (``proofs/mve.md``): in 1-D, one round moves an honest node at most
    ``(2f/(n-f) + 1/2)·Δ`` from the honest mean, and this is tight; MVE does not contract at
    ``n = 7, f = 1`` and has no finite averaging constant in ``d >= 2`` (a Byzantine value in
    the affine hull of nearly degenerate honest values makes a flat subset that wins however
    far it is). The original spec's claim of an asymptotically optimal constant is refuted there;
    MDA is the rule with a proven constant. With values in general position and ``d >= m-f-1`` all
    subsets have ``r = m-f-1``, and the MVEE of ``m-f`` affinely independent points is the
    Löwner ellipsoid of their simplex, whose centre is their mean.

    ``method="fast"``: Khachiyan/Todd–Yildirim to relative tolerance ``tol``, vectorised over
    subsets; ``method="exact"``: cvxpy (``max log det A s.t. ||A p_i + b|| <= 1``), the reference.
    Cost: ``C(m, f)`` subsets (raises ValueError beyond ``max_subsets``) of ``O((m-f)³)`` work
    each, plus one Gram product.

    Precondition: ``m >= 2f+1``. With at most ``f`` Byzantine values, an honest subset is a
    candidate and the chosen ``S`` contains ``>= m-2f >= 1`` honest points.
    """

    name: ClassVar[str] = "mve"
    label: ClassVar[str] = "mve"

    method: str = "fast"
    center: str = "ellipsoid"
    tol: float = DEFAULT_TOL
    rank_tol: float = DEFAULT_RANK_TOL
    max_subsets: int = 1_000_000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method not in ("fast", "exact"):
            raise ValueError(f"mve: method must be 'fast' or 'exact', got {self.method!r}")
        if self.center not in ("ellipsoid", "mean"):
            raise ValueError(f"mve: center must be 'ellipsoid' or 'mean', got {self.center!r}")
        if not (self.tol > 0 and self.rank_tol >= 0):
            raise ValueError(f"mve needs tol > 0 and rank_tol >= 0, got {self.tol}, "
                             f"{self.rank_tol}")

    def min_size(self) -> int:
        return 2 * self.f + 1

    def _size_expr(self) -> str:
        return "2f+1"

    def choice(self, g: Gram) -> MVEChoice:
        m = g.G.shape[0]
        n_sub = math.comb(m, self.f)
        if n_sub > self.max_subsets:
            raise ValueError(
                f"mve enumerates C(m, f) = C({m}, {self.f}) = {n_sub} subsets, more than "
                f"max_subsets={self.max_subsets}; raise max_subsets to run it anyway"
            )
        return mve_choice(g.G, self.f, self.method, self.tol, self.rank_tol, dim=g.d,
                          noise=g.noise())

    def coefficients(self, g: Gram) -> np.ndarray:
        c = self.choice(g)
        a = np.zeros(g.G.shape[0])
        if self.center == "mean":
            a[c.subset] = 1.0 / len(c.subset)
        else:
            a[c.subset] = c.center_weights
        return a


# --------------------------------------------------------------------------------------------
# functions


def mda(view: Any, f: int) -> Any:
    """Minimum-diameter averaging: the mean of the ``m-f`` values of least diameter."""
    return MDA(f)(view)


def mve(view: Any, f: int, method: str = "fast", center: str = "ellipsoid", *,
        tol: float = DEFAULT_TOL, rank_tol: float = DEFAULT_RANK_TOL) -> Any:
    """Minimum-volume-ellipsoid averaging (see :class:`MVE`)."""
    return MVE(f, method, center, tol, rank_tol)(view)


__all__ = ["MDA", "MVE", "MVEChoice", "mda", "mda_subset", "mve", "mve_choice", "mve_subsets"]
