"""Distance-based rules: Krum, Multi-Krum, Bulyan, geometric median, centered clipping, NNM.

All of them depend on the ``d``-dimensional vectors only through the ``m x m`` Gram matrix
``G = X Xᵀ`` (one ``m²·d`` product, float64, see :mod:`._backend`): the rule computes an
``m``-vector of coefficients ``a`` from ``G`` and outputs ``aᵀX`` (one ``m·d`` combination). In a
batch, ``G`` is computed once for all ``m`` values, each view takes its sub-matrix, and all
outputs come from one ``(k, m) @ (m, d)`` product.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ._backend import (
    Gram,
    Prepared,
    Rule,
    _torch,
    all_finite,
    check_f,
    check_size,
    combine,
    gram,
    is_tensor,
    nonfinite_error,
    prepare,
    sq_distances,
)
from .coordinate import Median, closest_to_median_mean
from .preagg import Staged

# --------------------------------------------------------------------------------------------
# the Gram-rule base class


@dataclass(frozen=True)
class GramRule(Rule):
    """A rule of the form ``y = Σ_i a_i x_i`` with coefficients ``a = coefficients(G)``."""

    def coefficients(self, g: Gram) -> np.ndarray:  # pragma: no cover - abstract
        """The ``(m,)`` float64 coefficient vector of the output, from the view's Gram matrix."""
        raise NotImplementedError

    def _apply(self, prep: Prepared) -> Any:
        return combine(prep, self.coefficients(gram(prep, self.label)))

    def _apply_batch(self, prep: Prepared, masks: np.ndarray) -> Any:
        g = gram(prep, self.label)
        A = np.zeros((masks.shape[0], prep.m))
        for i, mk in enumerate(masks):
            idx = np.flatnonzero(mk)
            A[i, idx] = self.coefficients(g.sub(idx))
        return combine(prep, A)


# --------------------------------------------------------------------------------------------
# Krum and friends


def krum_scores(D: np.ndarray, f: int, neighbours: int | None = None) -> np.ndarray:
    """Krum scores from squared distances: ``score(i) = Σ`` of the ``m-f-2`` (or ``neighbours``)
    smallest ``||x_i - x_j||²`` over ``j != i``."""
    m = D.shape[0]
    q = m - f - 2 if neighbours is None else neighbours
    Dn = D.copy()
    np.fill_diagonal(Dn, np.inf)
    Dn.sort(axis=1)
    return Dn[:, :q].sum(axis=1)


@dataclass(frozen=True)
class Krum(GramRule):
    """Krum (Blanchard et al., NeurIPS 2017).

    ``score(i) = Σ_{j ∈ N_i} ||x_i - x_j||²`` where ``N_i`` are the ``m-f-2`` nearest neighbours
    of ``x_i`` (itself excluded); output the ``x_i`` of least score (ties: lowest index).
    Distances come from the Gram matrix: ``||x_i - x_j||² = G_ii + G_jj - 2G_ij``.

    Precondition: ``m >= 2f+3``.
    Guarantee: none claimed here (a baseline; Blanchard et al. prove (α, f)-Byzantine resilience
    for i.i.d. gradients, which says nothing about averaging agreement).
    """

    name: ClassVar[str] = "krum"
    label: ClassVar[str] = "krum"

    def min_size(self) -> int:
        return 2 * self.f + 3

    def _size_expr(self) -> str:
        return "2f+3"

    def coefficients(self, g: Gram) -> np.ndarray:
        scores = krum_scores(g.distances2(), self.f)
        a = np.zeros(len(scores))
        a[int(np.argmin(scores))] = 1.0
        return a


@dataclass(frozen=True)
class MultiKrum(GramRule):
    """Multi-Krum (El Mhamdi et al. 2018): the mean of the ``k`` vectors of lowest Krum score
    (ties: lowest index); ``k = m - f`` when not given.

    Precondition: ``m >= 2f+3`` and ``1 <= k <= m``. Guarantee: none claimed (baseline).
    """

    name: ClassVar[str] = "multi-krum"
    label: ClassVar[str] = "multi_krum"

    k: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k is not None and (isinstance(self.k, bool) or int(self.k) != self.k
                                   or self.k < 1):
            raise ValueError(f"multi_krum needs k >= 1, got k={self.k}")

    def min_size(self) -> int:
        return max(2 * self.f + 3, self.k or 0)

    def _size_expr(self) -> str:
        return "2f+3" if (self.k or 0) <= 2 * self.f + 3 else "k"

    def coefficients(self, g: Gram) -> np.ndarray:
        m = g.G.shape[0]
        k = m - self.f if self.k is None else self.k
        scores = krum_scores(g.distances2(), self.f)
        best = np.argsort(scores, kind="stable")[:k]
        a = np.zeros(m)
        a[best] = 1.0 / k
        return a


def bulyan_selection(D: np.ndarray, f: int) -> np.ndarray:
    """Indices of the ``θ = m - 2f`` vectors chosen by iterated Krum (in selection order).

    At each step Krum is applied to the ``r`` remaining vectors with ``max(r - f - 2, 1)``
    neighbours (the last steps have ``r < 2f+3``), the winner is moved to the selection.
    """
    m = D.shape[0]
    remaining = list(range(m))
    chosen = []
    for _ in range(m - 2 * f):
        sub = D[np.ix_(remaining, remaining)]
        q = max(len(remaining) - f - 2, 1)
        j = int(np.argmin(krum_scores(sub, f, min(q, len(remaining) - 1))))
        chosen.append(remaining.pop(j))
    return np.array(chosen, dtype=np.intp)


@dataclass(frozen=True)
class Bulyan(Rule):
    """Bulyan (El Mhamdi, Guerraoui, Rouault, ICML 2018).

    1. select ``θ = m - 2f`` vectors by iterated Krum (:func:`bulyan_selection`);
    2. per coordinate, average the ``β = θ - 2f`` selected values closest to the coordinate-wise
       median of the selected values (ties: the lower window of sorted values).

    Precondition: ``m >= 4f+3``. Guarantee: none claimed (baseline).
    """

    name: ClassVar[str] = "bulyan"
    label: ClassVar[str] = "bulyan"

    def min_size(self) -> int:
        return 4 * self.f + 3

    def _size_expr(self) -> str:
        return "4f+3"

    def _finish(self, prep: Prepared, idx: np.ndarray) -> Any:
        sel = prep.subset(np.isin(np.arange(prep.m), idx))
        beta = len(idx) - 2 * self.f
        return closest_to_median_mean(sel, beta, self.label)

    def _apply(self, prep: Prepared) -> Any:
        g = gram(prep, self.label)
        return self._finish(prep, bulyan_selection(g.distances2(), self.f))

    def _apply_batch(self, prep: Prepared, masks: np.ndarray) -> Any:
        D = gram(prep, self.label).distances2()
        rows = []
        for mk in masks:
            idx = np.flatnonzero(mk)
            rows.append(self._finish(prep, idx[bulyan_selection(D[np.ix_(idx, idx)], self.f)]))
        return _torch().stack(rows) if prep.use_torch else np.stack(rows)


# --------------------------------------------------------------------------------------------
# geometric median


def weiszfeld_coefficients(G: np.ndarray, tol: float, max_iter: int, eps: float
                           ) -> tuple[np.ndarray, int]:
    """Smoothed Weiszfeld iterations in coefficient space.

    ``z = Σ a_i x_i`` (start: ``a = 1/m``), ``||x_i - z||² = G_ii - 2(Ga)_i + aᵀGa``,
    ``w_i = 1 / max(eps, ||x_i - z||)``, ``a <- w / Σw``; stop when the objective
    ``F(a) = Σ_i ||x_i - z||`` changes by at most ``tol·F`` or after ``max_iter`` steps.
    Returns ``(a, iterations)``.
    """
    m = G.shape[0]
    g = np.diag(G)
    a = np.full(m, 1.0 / m)

    def dists(a: np.ndarray) -> np.ndarray:
        Ga = G @ a
        return np.sqrt(np.maximum(g - 2.0 * Ga + a @ Ga, 0.0))

    dist = dists(a)
    obj = dist.sum()
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        w = 1.0 / np.maximum(eps, dist)
        a = w / w.sum()
        dist = dists(a)
        new = dist.sum()
        done = abs(obj - new) <= tol * new
        obj = new
        if done:
            break
    return a, it


@dataclass(frozen=True)
class GeometricMedian(GramRule):
    """Geometric median ``argmin_z Σ_i ||x_i - z||`` by the smoothed Weiszfeld algorithm
    (Pillutla, Kakade, Harchaoui, "Robust aggregation for federated learning", 2022):
    ``z <- Σ_i w_i x_i / Σ_i w_i`` with ``w_i = 1/max(eps, ||x_i - z||)``, run in the
    ``m``-dimensional coefficient space ``z = Σ a_i x_i`` through the Gram matrix. ``eps`` is
    absolute (units of the data); stop on relative objective change ``<= tol`` or ``max_iter``.

    Precondition: ``m >= 2f+1`` (breakdown point 1/2).
    Guarantee: none claimed for averaging agreement (baseline); the exact geometric median stays
    within ``O(Δ)`` of the honest values when ``f < m/2``.
    """

    name: ClassVar[str] = "geometric-median"
    label: ClassVar[str] = "geometric_median"

    tol: float = 1e-7
    max_iter: int = 500
    eps: float = 1e-8

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.tol >= 0 and self.max_iter >= 1 and self.eps > 0):
            raise ValueError(
                f"geometric_median needs tol >= 0, max_iter >= 1 and eps > 0, got "
                f"tol={self.tol}, max_iter={self.max_iter}, eps={self.eps}"
            )

    def min_size(self) -> int:
        return 2 * self.f + 1

    def _size_expr(self) -> str:
        return "2f+1"

    def coefficients(self, g: Gram) -> np.ndarray:
        a, _ = weiszfeld_coefficients(g.G, self.tol, self.max_iter, self.eps / g.scale)
        return a


# --------------------------------------------------------------------------------------------
# centered clipping


def _center_form(prep: Prepared, center: Any, who: str) -> Any:
    if prep.use_torch:
        torch = _torch()
        c = center if is_tensor(center) else torch.as_tensor(np.asarray(center))
        c = c.detach().to(device=prep.x.device, dtype=prep.x.dtype)
    else:
        c = center.detach().cpu().numpy() if is_tensor(center) else np.asarray(center)
        c = c.astype(prep.x.dtype, copy=False)
    if tuple(c.shape) != (prep.d,):
        raise ValueError(f"{who}: center must have shape ({prep.d},), got {tuple(c.shape)}")
    if not all_finite(c):
        raise ValueError(f"{who}: center contains non-finite values (NaN or ±inf)")
    return c


def clipping_coefficients(Q: np.ndarray, m: int, centre: int, f: int, tau: float | None,
                          iterations: int) -> np.ndarray:
    """Centered clipping in coefficient space over rows ``[x_0..x_{m-1}, extra...]``.

    ``v = Σ c_j row_j`` starts at the row ``centre``; each step
    ``v <- v + (1/m) Σ_i min(1, τ/||x_i - v||)(x_i - v)``. ``Q`` is the Gram matrix of all rows.
    """
    n = Q.shape[0]
    c = np.zeros(n)
    c[centre] = 1.0
    q = np.diag(Q)[:m]
    for it in range(iterations):
        Qc = Q @ c
        dist = np.sqrt(np.maximum(q - 2.0 * Qc[:m] + c @ Qc, 0.0))
        if it == 0 and tau is None:
            tau = float(np.sort(dist)[m - f - 1])
        s = np.ones(m)
        far = dist > tau
        s[far] = tau / dist[far]
        c *= 1.0 - s.sum() / m
        c[:m] += s / m
    return c


@dataclass(frozen=True)
class CenteredClipping(Rule):
    """Centered clipping (Karimireddy, He, Jaggi, ICML 2021).

    Start at a centre ``v_0`` and iterate ``v <- v + (1/m) Σ_i clip_τ(x_i - v)`` with
    ``clip_τ(z) = z · min(1, τ/||z||)``, ``iterations`` times. The paper starts from the previous
    round's aggregate (momentum); without history the default centre here is the coordinate-wise
    **median** of the view (robust when ``f < m/2``); pass ``center`` to use another one (e.g. the
    previous aggregate). ``tau=None`` picks ``τ`` as the ``(m-f)``-th smallest ``||x_i - v_0||``, so
    that the ``f`` farthest points are clipped in the first step. Run in coefficient space over the
    Gram matrix of ``[x_1..x_m, v_0]``.

    Precondition: ``m >= 2f+1``. Guarantee: none claimed (baseline).
    """

    name: ClassVar[str] = "centered-clipping"
    label: ClassVar[str] = "centered_clipping"

    tau: float | None = None
    iterations: int = 3
    center: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tau is not None and not self.tau > 0:
            raise ValueError(f"centered_clipping needs tau > 0, got tau={self.tau}")
        if self.iterations < 1:
            raise ValueError(
                f"centered_clipping needs iterations >= 1, got iterations={self.iterations}"
            )

    def min_size(self) -> int:
        return 2 * self.f + 1

    def _size_expr(self) -> str:
        return "2f+1"

    def _centres(self, prep: Prepared, masks: np.ndarray | None) -> Any:
        if self.center is not None:
            return _center_form(prep, self.center, self.label)[None, :]
        med = Median()
        if masks is None:
            return med._apply(prep)[None, :]
        return med._apply_batch(prep, masks)

    def _apply(self, prep: Prepared) -> Any:
        V = self._centres(prep, None)
        g = gram(prep, self.label, extra=[V])
        tau = None if self.tau is None else self.tau / g.scale
        c = clipping_coefficients(g.G, prep.m, prep.m, self.f, tau, self.iterations)
        return combine(prep, c, extra=V)

    def _apply_batch(self, prep: Prepared, masks: np.ndarray) -> Any:
        V = self._centres(prep, masks)
        g = gram(prep, self.label, extra=[V])
        k, m = masks.shape
        A = np.zeros((k, m + V.shape[0]))
        tau = None if self.tau is None else self.tau / g.scale
        for i, mk in enumerate(masks):
            ci = m + (0 if V.shape[0] == 1 else i)
            idx = np.append(np.flatnonzero(mk), ci)
            Q = g.G[np.ix_(idx, idx)]
            A[i, idx] = clipping_coefficients(Q, len(idx) - 1, len(idx) - 1, self.f, tau,
                                              self.iterations)
        return combine(prep, A, extra=V)


# --------------------------------------------------------------------------------------------
# nearest-neighbour mixing


def nnm_matrix(D: np.ndarray, f: int) -> np.ndarray:
    """Mixing matrix ``W``: row ``i`` puts ``1/(m-f)`` on the ``m-f`` nearest neighbours of
    ``x_i`` (itself first, then by distance, ties by index)."""
    m = D.shape[0]
    q = m - f
    W = np.zeros((m, m))
    idx = np.arange(m)
    for i in range(m):
        order = np.lexsort((idx, idx != i, D[i]))
        W[i, order[:q]] = 1.0 / q
    return W


@dataclass(frozen=True)
class NNM(Staged):
    """Nearest-neighbour mixing (Allouah et al., AISTATS 2023) followed by an inner rule.

    Replace each ``x_i`` by ``y_i = (1/(m-f)) Σ_{j ∈ N_i} x_j`` where ``N_i`` are the ``m-f``
    nearest neighbours of ``x_i`` (itself included), then apply ``inner`` (a registry name,
    built with the same ``f`` and ``inner_params``) to ``y_1..y_m``. ``make_rule("nnm+X", f)``
    builds ``NNM(f, inner="X")`` (:mod:`agreement.rules.preagg`); ``arc+nnm+X`` clips first.
    With a Gram-based inner rule the mixed view is never materialised: ``Gram(Y) = W G Wᵀ``
    and the output is ``(aᵀW) X``.

    Precondition: ``m >= max(2f+1, inner.min_size())``.
    Guarantee: for averaging agreement, with the trimmed mean inside, every honest output lies
    within ``f/(n-2f)·Δ2(x)`` of the honest inputs' per-coordinate box (proofs/nnm.md,
    Proposition 1); its contraction is measured, not proven (docs/theory.md §5.5). Allouah et
    al. show NNM turns an aggregation rule robust in their ``(f, κ)`` sense into one with a
    ``κ`` of order ``f/(m-f)``.
    """

    name: ClassVar[str] = "nnm"
    label: ClassVar[str] = "nnm"

    def min_size(self) -> int:
        return max(2 * self.f + 1, self.inner_rule().min_size())

    def _size_expr(self) -> str:
        inner = self.inner_rule()
        return "2f+1" if inner.min_size() <= 2 * self.f + 1 else inner._size_expr()

    def _mixed(self, prep: Prepared, g: Gram, idx: np.ndarray) -> Any:
        inner = self.inner_rule()
        W = nnm_matrix(g.sub(idx).distances2(), self.f)
        Wfull = np.zeros((len(idx), prep.m))
        Wfull[:, idx] = W
        if isinstance(inner, GramRule):
            Gy = W @ g.sub(idx).G @ W.T
            a = inner.coefficients(Gram(0.5 * (Gy + Gy.T), g.scale, g.d))
            return ("coef", a @ Wfull)
        Y = combine(prep, Wfull)
        return ("value", inner._apply(Prepared(Y, prep.use_torch, prep.kind, prep.out_dtype,
                                               prep.device)))

    def _apply(self, prep: Prepared) -> Any:
        g = gram(prep, self.label)
        kind, val = self._mixed(prep, g, np.arange(prep.m))
        return combine(prep, val) if kind == "coef" else val

    def _apply_batch(self, prep: Prepared, masks: np.ndarray) -> Any:
        g = gram(prep, self.label)
        res = [self._mixed(prep, g, np.flatnonzero(mk)) for mk in masks]
        if res[0][0] == "coef":
            return combine(prep, np.stack([v for _, v in res]))
        rows = [v for _, v in res]
        return _torch().stack(rows) if prep.use_torch else np.stack(rows)


# --------------------------------------------------------------------------------------------
# functions


def krum(view: Any, f: int) -> Any:
    """Krum: the vector whose ``m-f-2`` nearest neighbours are closest (see :class:`Krum`)."""
    return Krum(f)(view)


def multi_krum(view: Any, f: int, k: int | None = None) -> Any:
    """Mean of the ``k`` (default ``m-f``) vectors of lowest Krum score."""
    return MultiKrum(f, k)(view)


def bulyan(view: Any, f: int) -> Any:
    """Bulyan over iterated Krum (see :class:`Bulyan`); needs ``m >= 4f+3``."""
    return Bulyan(f)(view)


def geometric_median(view: Any, tol: float = 1e-7, max_iter: int = 500,
                     eps: float = 1e-8) -> Any:
    """Geometric median by smoothed Weiszfeld iterations (see :class:`GeometricMedian`)."""
    return GeometricMedian(0, tol, max_iter, eps)(view)


def centered_clipping(view: Any, tau: float | None = None, iterations: int = 3,
                      center: Any = None, *, f: int = 0) -> Any:
    """Centered clipping from ``center`` (default: the coordinate-wise median), see
    :class:`CenteredClipping`."""
    return CenteredClipping(f, tau, iterations, center)(view)


def nnm(view: Any, f: int) -> Any:
    """The nearest-neighbour-mixed view ``(m, d)``: row ``i`` is the mean of the ``m-f``
    nearest neighbours of ``x_i`` (itself included); needs ``m >= f+1``."""
    who = "nnm"
    check_f(who, f)
    prep = prepare(view, who)
    check_size(who, prep.m, f, f + 1, "f+1")
    g = gram(prep, who)
    return prep.wrap(combine(prep, nnm_matrix(g.distances2(), f)))


__all__ = [
    "NNM",
    "Bulyan",
    "CenteredClipping",
    "GeometricMedian",
    "GramRule",
    "Krum",
    "MultiKrum",
    "bulyan",
    "bulyan_selection",
    "centered_clipping",
    "clipping_coefficients",
    "geometric_median",
    "krum",
    "krum_scores",
    "multi_krum",
    "nnm",
    "nnm_matrix",
    "nonfinite_error",
    "sq_distances",
    "weiszfeld_coefficients",
]
