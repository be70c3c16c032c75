"""Minimum-volume enclosing ellipsoids (MVEE) of small point sets, through Gram matrices.

Notation: ``n`` points spanning an affine subspace of dimension ``r <= n-1``. Their coordinates
inside the affine hull come from the centred Gram matrix ``Gc = J G J`` (``J = I - 11ᵀ/n``):
``Gc = V Λ Vᵀ``, keep the eigenvalues ``λ > rank_tol · λ_max`` (the others are rounding noise
or genuinely flat directions), and ``P = V_r Λ_r^{1/2}`` (row ``i`` = coordinates of point ``i``
relative to the centroid in an orthonormal basis of the hull; ``P Pᵀ = Gc`` up to the dropped
directions). A point with hull coordinates ``y`` is ``x̄ + Σ_i w_i (x_i - x̄)`` with
``w = V_r Λ_r^{-1/2} y``, so everything maps back to ``R^d`` as a combination of the points.

The MVEE ``E = {x : (x - c)ᵀ A (x - c) <= 1}`` of ``p_1..p_n ∈ R^r`` solves
``max log det A`` (its volume is ``ω_r · det(A)^{-1/2}``). Two solvers:

* ``fast``: the dual ``max_u log det M(u)``, ``M(u) = Σ u_i q_i q_iᵀ``, ``q_i = (p_i, 1)``,
  ``u >= 0``, ``Σu = 1``, by Khachiyan's algorithm with Todd–Yildirim away steps
  (Kumar & Yildirim 2005; Todd & Yildirim 2007). With ``κ_i = q_iᵀ M(u)⁻¹ q_i`` (note
  ``Σ u_i κ_i = r+1``), each step moves weight towards the point of largest ``κ`` or away from
  the support point of smallest ``κ``, ``u <- (1-τ)u + τ e_j`` with the exact line search
  ``τ = (κ_j - (r+1)) / ((r+1)(κ_j - 1))`` (clipped so that ``u_j >= 0``). It stops when
  ``max_i κ_i <= (1+tol)(r+1)`` and ``min_{u_i>0} κ_i >= (1-tol)(r+1)``. Then
  ``c = Σ u_i p_i`` and, with ``Σ_u = Σ u_i (p_i - c)(p_i - c)ᵀ``, every point satisfies
  ``(p_i - c)ᵀ Σ_u⁻¹ (p_i - c) = κ_i - 1``, so the ellipsoid ``(x-c)ᵀ Σ_u⁻¹ (x-c) <= max κ - 1``
  contains them all; its log-volume (without ``log ω_r``)
  ``½ log det Σ_u + (r/2) log(max κ - 1)`` is within ``(r/2)·log(1+tol·(r+1)/r)`` of the optimum,
  which is ``½ log det Σ_u* + (r/2) log r``. Vectorised over a batch of point sets.
* ``exact``: cvxpy, ``max log det A  s.t.  ||A p_i + b|| <= 1`` (``A`` symmetric PSD), the
  ellipsoid ``{x : ||A x + b|| <= 1}``, centre ``-A⁻¹b``, log-volume ``-log det A``, solved
  for whitened points (the MVEE is affine-equivariant) with tight Clarabel tolerances.
  The reference; needs cvxpy with an exponential-cone + SDP solver (Clarabel or SCS).

Special cases: ``r = 0`` (all points equal): the ellipsoid is the point, log-volume ``-inf``.
``r = 1``: the segment between the extreme points, centre the midpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_TOL = 1e-7
# Relative to a set's largest eigenvalue, eigh's own rounding (~ n·eps·λ_max): a looser tolerance
# (1e-10 was used) let one far outlier (|b| ~ 1e6 x the honest spread) hide every honest
# direction of the subsets containing it, which then counted as lower-dimensional and won.
DEFAULT_RANK_TOL = 64 * float(np.finfo(np.float64).eps)


def centred(G: np.ndarray) -> np.ndarray:
    """``J G J`` for a stack of Gram matrices ``(..., n, n)``."""
    rm = G.mean(axis=-1, keepdims=True)
    cm = G.mean(axis=-2, keepdims=True)
    tm = G.mean(axis=(-2, -1), keepdims=True)
    Gc = G - rm - cm + tm
    return 0.5 * (Gc + np.swapaxes(Gc, -1, -2))


def affine_rank_eig(G: np.ndarray, rank_tol: float = DEFAULT_RANK_TOL,
                    floor: float | np.ndarray = 0.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigen-decomposition of the centred Gram matrices of a stack ``(B, n, n)``.

    Returns ``(lam, V, r)``: eigenvalues in *descending* order ``(B, n)``, eigenvectors
    ``(B, n, n)`` (columns, same order) and the affine dimension ``r`` of each set (``(B,)``):
    the number of eigenvalues above ``rank_tol · λ_max`` and above ``floor`` (the rounding noise
    of the Gram matrix, so that duplicated points are recognised as such; a scalar or one per
    set, ``(B,)``) and above 0.
    """
    lam, V = np.linalg.eigh(centred(G))
    lam = lam[..., ::-1]
    V = V[..., ::-1]
    top = np.maximum(lam[..., :1], 0.0)
    fl = np.maximum(np.asarray(floor, dtype=np.float64), 0.0)
    if fl.ndim:
        fl = fl[..., None]
    r = ((lam > rank_tol * top) & (lam > fl)).sum(axis=-1)
    return lam, V, r


def hull_coordinates(lam: np.ndarray, V: np.ndarray, r: int) -> np.ndarray:
    """``P = V_r Λ_r^{1/2}``: ``(B, n, r)`` coordinates of the points in their affine hull."""
    return V[..., :r] * np.sqrt(lam[..., None, :r])


def hull_to_weights(y: np.ndarray, lam: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Coefficients ``a`` (``Σa = 1``) with ``Σ a_i x_i`` = the point of hull coordinates ``y``."""
    r = y.shape[-1]
    n = V.shape[-2]
    w = V[..., :r] @ (y / np.sqrt(lam[..., :r]))
    return 1.0 / n + w - w.mean(axis=-1, keepdims=True)


# --------------------------------------------------------------------------------------------
# fast path: Khachiyan / Todd-Yildirim, batched


@dataclass
class KhachiyanResult:
    weights: np.ndarray  # (B, n) u: the centre is Σ u_i p_i
    log_volume: np.ndarray  # (B,)
    iterations: int
    converged: np.ndarray  # (B,) bool


def khachiyan(P: np.ndarray, tol: float = DEFAULT_TOL, max_iter: int = 100_000
              ) -> KhachiyanResult:
    """MVEE of a batch of point sets ``P`` (``(B, n, r)``, each spanning ``R^r``, ``r >= 1``).

    On a line (``r = 1``) the MVEE is the segment ``[min, max]``: its centre, half-length and
    weights (``½`` on each end) are exact, with no iteration. Otherwise: the MVEE is
    affine-equivariant, so each set is first whitened (centred, and mapped by
    ``T = U S^{-1/2}`` from its covariance ``U S Uᵀ`` to unit covariance): the iterations then
    see a well-conditioned ``M(u)`` however elongated the set is (an elongated set made the
    unwhitened ``M(u)`` numerically singular). The weights ``u`` are invariant; the log-volume
    is mapped back by ``+ ½ Σ log S``.
    """
    B, n, r = P.shape
    if r == 1:  # exact: the MVEE of points on a line is the segment [min, max]
        lo, hi = P[:, :, 0].argmin(axis=1), P[:, :, 0].argmax(axis=1)
        u = np.zeros((B, n))
        u[np.arange(B), lo] += 0.5
        u[np.arange(B), hi] += 0.5
        half = 0.5 * (P[np.arange(B), hi, 0] - P[np.arange(B), lo, 0])
        with np.errstate(divide="ignore"):
            logvol = np.log(half)
        return KhachiyanResult(u, logvol, 0, np.ones(B, bool))
    D = r + 1
    mu = P.mean(axis=1, keepdims=True)
    cov = np.einsum("bnr,bns->brs", P - mu, P - mu) / n
    s_cov, U = np.linalg.eigh(cov)
    s_cov = np.maximum(s_cov, np.finfo(np.float64).tiny)
    P = np.einsum("bnr,brs->bns", P - mu, U / np.sqrt(s_cov)[:, None, :])
    log_scale = 0.5 * np.log(s_cov).sum(axis=1)
    Q = np.concatenate([P, np.ones((B, n, 1))], axis=-1)  # lifted points
    u = np.full((B, n), 1.0 / n)
    ridge = 1e-12 * np.eye(D)
    active = np.arange(B)
    kappa_all = np.empty((B, n))
    converged = np.zeros(B, bool)
    it = 0
    for it in range(max_iter + 1):
        Qa = Q[active]
        ua = u[active]
        M = np.einsum("bnd,bn,bne->bde", Qa, ua, Qa)
        # whitened, M(u) has eigenvalues O(1) while u spans the set; a ridge far below that
        # keeps it invertible when a nearly degenerate set drives u onto a flat support
        M += ridge
        X = np.linalg.solve(M, np.swapaxes(Qa, 1, 2))  # (b, D, n)
        kappa = np.einsum("bnd,bdn->bn", Qa, X)
        kappa_all[active] = kappa
        jp = np.argmax(kappa, axis=1)
        kp = kappa[np.arange(len(active)), jp]
        supp = ua > 0
        km_masked = np.where(supp, kappa, np.inf)
        jm = np.argmin(km_masked, axis=1)
        km = km_masked[np.arange(len(active)), jm]
        eps_plus = kp / D - 1.0
        eps_minus = 1.0 - km / D
        done = np.maximum(eps_plus, eps_minus) <= tol
        converged[active[done]] = True
        keep = ~done
        if not keep.any() or it == max_iter:
            break
        active = active[keep]
        fwd = (eps_plus >= eps_minus)[keep]
        j = np.where(fwd, jp[keep], jm[keep])
        kj = np.where(fwd, kp[keep], km[keep])
        uj = u[active, j]
        tau = (kj - D) / (D * np.maximum(kj - 1.0, 1e-300))
        drop = ~fwd & (tau <= -uj / (1.0 - uj))
        tau = np.where(drop, -uj / (1.0 - uj), tau)
        u[active] *= (1.0 - tau)[:, None]
        u[active, j] += tau
        u[active[drop], j[drop]] = 0.0
        np.maximum(u, 0.0, out=u)
    # log-volume of the enclosing ellipsoid (x-c)ᵀ Σ_u⁻¹ (x-c) <= max κ - 1
    c = np.einsum("bn,bnr->br", u, P)
    Pc = P - c[:, None, :]
    S = np.einsum("bn,bnr,bns->brs", u, Pc, Pc)
    sign, logdet = np.linalg.slogdet(S)
    kmax = kappa_all.max(axis=1)
    logvol = 0.5 * logdet + 0.5 * r * np.log(np.maximum(kmax - 1.0, 1e-300))
    logvol = np.where(sign > 0, logvol + log_scale, -np.inf)
    return KhachiyanResult(u, logvol, it, converged)


# --------------------------------------------------------------------------------------------
# exact path: cvxpy


def mvee_cvxpy(P: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact MVEE of ``n`` points ``P`` (``(n, r)``, spanning ``R^r``, ``r >= 1``) by cvxpy:
    ``max log det A  s.t.  ||A p_i + b||_2 <= 1``. Returns ``(centre (r,), log-volume)``."""
    try:
        import cvxpy as cp
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("method='exact' needs cvxpy (pip install 'jungle[mve]')") from exc
    n, r = P.shape
    # conditioning: the MVEE is affine-equivariant, so solve for whitened points
    # p' = L⁻¹(p - μ) (L Lᵀ = covariance) and map back: c = μ + L c', log-vol += log det L
    mu = P.mean(axis=0)
    L = np.linalg.cholesky(np.cov(P, rowvar=False, bias=True).reshape(r, r))
    Ps = np.linalg.solve(L, (P - mu).T).T
    A = cp.Variable((r, r), PSD=True)
    b = cp.Variable(r)
    cons = [cp.norm(Ps @ A + np.ones((n, 1)) @ cp.reshape(b, (1, r), order="C"), 2, axis=1)
            <= 1]
    prob = cp.Problem(cp.Maximize(cp.log_det(A)), cons)
    solvers = cp.installed_solvers()
    if "CLARABEL" in solvers:
        prob.solve(solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10,
                   max_iter=500)
    elif "SCS" in solvers:
        prob.solve(solver="SCS", eps=1e-9, max_iters=200_000)
    else:  # pragma: no cover - depends on the environment
        prob.solve()
    if A.value is None or prob.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"mve exact: the conic solver failed (status {prob.status})")
    Av = 0.5 * (A.value + A.value.T)
    centre = mu + L @ -np.linalg.solve(Av, b.value)
    _, logdet = np.linalg.slogdet(Av)
    return centre, float(-logdet + np.log(np.diag(L)).sum())


# --------------------------------------------------------------------------------------------
# public helper in explicit coordinates


@dataclass
class Ellipsoid:
    """An MVEE in ``R^d``: its centre, its affine dimension ``dim`` and its log-volume in that
    dimension (without the constant ``log ω_dim``; ``-inf`` for a single point); ``weights``
    are the coefficients of the centre on the input points."""

    center: np.ndarray
    log_volume: float
    dim: int
    weights: np.ndarray


def weights_from_gram(G: np.ndarray, method: str = "fast", tol: float = DEFAULT_TOL,
                      rank_tol: float = DEFAULT_RANK_TOL, floor: float = 0.0
                      ) -> tuple[np.ndarray, float, int]:
    """MVEE of the points whose Gram matrix is ``G`` (``(n, n)``, any centre):
    ``(weights of the centre, log-volume, affine dimension)``."""
    lam, V, r_arr = affine_rank_eig(G[None], rank_tol, floor)
    r = int(r_arr[0])
    n = G.shape[0]
    if r == 0:
        return np.full(n, 1.0 / n), -np.inf, 0
    P = hull_coordinates(lam, V, r)
    if method == "fast":
        res = khachiyan(P, tol)
        return res.weights[0], float(res.log_volume[0]), r
    if method == "exact":
        y, lv = mvee_cvxpy(P[0])
        return hull_to_weights(y, lam[0], V[0]), lv, r
    raise ValueError(f"mvee: method must be 'fast' or 'exact', got {method!r}")


def mvee(points: np.ndarray, method: str = "fast", tol: float = DEFAULT_TOL,
         rank_tol: float = DEFAULT_RANK_TOL) -> Ellipsoid:
    """Minimum-volume enclosing ellipsoid of ``points`` (``(n, d)`` numpy), computed inside
    their affine hull (see the module docstring)."""
    X = np.asarray(points, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"mvee: points must be a non-empty (n, d) array, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("mvee: points contain non-finite values (NaN or ±inf)")
    Xc = X - X.mean(axis=0)
    G = Xc @ Xc.T
    floor = 4.0 * float(np.finfo(np.float64).eps) * np.sqrt(X.shape[1]) * float(np.diag(G).max())
    w, lv, r = weights_from_gram(G, method, tol, rank_tol, floor)
    return Ellipsoid(w @ X, lv, r, w)


__all__ = [
    "DEFAULT_RANK_TOL",
    "DEFAULT_TOL",
    "Ellipsoid",
    "KhachiyanResult",
    "affine_rank_eig",
    "centred",
    "hull_coordinates",
    "hull_to_weights",
    "khachiyan",
    "mvee",
    "mvee_cvxpy",
    "weights_from_gram",
]
