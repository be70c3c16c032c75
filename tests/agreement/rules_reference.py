"""Slow, obviously-correct reference implementations of the robust rules (float64, explicit
coordinates and distances, loops and full sorts): the harness the rule tests compare with
(test_rules_reference.py checks the references themselves by hand)."""

from __future__ import annotations

import itertools

import numpy as np


def dist2(X: np.ndarray) -> np.ndarray:
    m = len(X)
    D = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            D[i, j] = float(np.sum((X[i] - X[j]) ** 2))
    return D


def trimmed_mean(X: np.ndarray, f: int) -> np.ndarray:
    S = np.sort(np.asarray(X, np.float64), axis=0)
    return S[f : len(S) - f].mean(axis=0)


def median(X: np.ndarray) -> np.ndarray:
    return np.median(np.asarray(X, np.float64), axis=0)


def krum_scores(X: np.ndarray, f: int, q: int | None = None) -> np.ndarray:
    m = len(X)
    q = m - f - 2 if q is None else q
    D = dist2(X)
    return np.array([sum(sorted(D[i, j] for j in range(m) if j != i)[:q]) for i in range(m)])


def krum(X: np.ndarray, f: int) -> np.ndarray:
    s = krum_scores(X, f)
    return np.asarray(X, np.float64)[int(np.argmin(s))]


def multi_krum(X: np.ndarray, f: int, k: int) -> np.ndarray:
    s = krum_scores(X, f)
    best = sorted(range(len(X)), key=lambda i: (s[i], i))[:k]
    return np.asarray(X, np.float64)[best].mean(axis=0)


def bulyan(X: np.ndarray, f: int) -> np.ndarray:
    X = np.asarray(X, np.float64)
    rem = list(range(len(X)))
    sel = []
    for _ in range(len(X) - 2 * f):
        q = min(max(len(rem) - f - 2, 1), len(rem) - 1)
        s = krum_scores(X[rem], f, q)
        sel.append(rem.pop(int(np.argmin(s))))
    Z = X[sel]
    theta = len(Z)
    beta = theta - 2 * f
    med = np.median(Z, axis=0)
    out = np.empty(X.shape[1])
    for c in range(X.shape[1]):
        order = np.argsort(np.abs(Z[:, c] - med[c]), kind="stable")[:beta]
        out[c] = Z[order, c].mean()
    return out


def geometric_median_objective(X: np.ndarray, z: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(X, np.float64) - z, axis=1).sum())


def centered_clipping(X: np.ndarray, tau: float | None, iterations: int, center: np.ndarray,
                      f: int) -> np.ndarray:
    X = np.asarray(X, np.float64)
    v = np.asarray(center, np.float64).copy()
    m = len(X)
    if tau is None:
        tau = sorted(np.linalg.norm(X - v, axis=1))[m - f - 1]
    for _ in range(iterations):
        step = np.zeros_like(v)
        for x in X:
            z = x - v
            n = np.linalg.norm(z)
            step += z * (min(1.0, tau / n) if n > 0 else 1.0)
        v = v + step / m
    return v


def nnm(X: np.ndarray, f: int) -> np.ndarray:
    X = np.asarray(X, np.float64)
    m = len(X)
    D = dist2(X)
    out = np.empty_like(X)
    for i in range(m):
        order = sorted(range(m), key=lambda j: (D[i, j], j != i, j))[: m - f]
        out[i] = X[order].mean(axis=0)
    return out


def mda_subset(X: np.ndarray, f: int) -> tuple[tuple[int, ...], float]:
    """The lexicographically first subset of m-f points of least diameter (enumeration)."""
    D = np.sqrt(dist2(X))
    best, best_d = None, np.inf
    for S in itertools.combinations(range(len(X)), len(X) - f):
        diam = max((D[i, j] for i in S for j in S), default=0.0)
        if diam < best_d:
            best, best_d = S, diam
    return best, best_d


def mda(X: np.ndarray, f: int) -> np.ndarray:
    S, _ = mda_subset(X, f)
    return np.asarray(X, np.float64)[list(S)].mean(axis=0)


def mvee_explicit(P: np.ndarray) -> tuple[np.ndarray, float, int]:
    """MVEE of points in explicit coordinates by cvxpy, inside their affine hull found by an
    SVD of the centred points: (centre in R^d, log-volume, affine dimension)."""
    import cvxpy as cp

    P = np.asarray(P, np.float64)
    mu = P.mean(axis=0)
    _, s, Vt = np.linalg.svd(P - mu, full_matrices=False)
    r = int((s > 1e-7 * max(s.max(), 1e-300)).sum()) if s.size else 0
    if r == 0:
        return mu, -np.inf, 0
    Y = (P - mu) @ Vt[:r].T
    A = cp.Variable((r, r), PSD=True)
    b = cp.Variable(r)
    cons = [cp.norm(A @ y + b, 2) <= 1 for y in Y]
    cp.Problem(cp.Maximize(cp.log_det(A)), cons).solve(solver="CLARABEL")
    Av = A.value
    c = -np.linalg.solve(Av, b.value)
    return mu + c @ Vt[:r], float(-np.linalg.slogdet(Av)[1]), r


def mve(X: np.ndarray, f: int) -> tuple[tuple[int, ...], np.ndarray, float, int]:
    """Enumerate the subsets: least affine dimension, then least log-volume, first in order."""
    best = None
    for S in itertools.combinations(range(len(X)), len(X) - f):
        c, lv, r = mvee_explicit(np.asarray(X, np.float64)[list(S)])
        key = (r, lv)
        if best is None or key < best[0]:
            best = (key, S, c)
    (r, lv), S, c = best
    return S, c, lv, r
