"""Worst-case searches for the per-round claims of THEORY.md §5 (one round, witness views).

What is searched (the exact object of every per-round claim):

- honest inputs ``x`` (``h = n - f`` vectors of ``R^d``), ``f`` Byzantine values ``b`` (one
  value per Byzantine node: reliable broadcast), and the honest views;
- the views the witness gather allows (:func:`agreement.engine.check_views`): each view has
  ``n-f..n`` of the ``n`` values, any two views share ``>= n-f`` values.

Reduction to one or two views (exact, used throughout). Every per-round quantity is a max
over pairs of honest nodes (diameter, per-coordinate range) or over single nodes (distance of
an output to the honest mean, whose average ``||ȳ - x̄||`` is at most the max and equals it when
every honest node is given that one view: a constant family of views is allowed). Giving half
the honest nodes view ``V1`` and the rest ``V2`` is allowed whenever ``|V1|, |V2| >= n-f`` and
``|V1 ∩ V2| >= n-f``. So a candidate is ``(x, b, V1, V2)`` and the objectives are

- ``coord-contraction``: ``max_c |y1_c - y2_c| / range_c(x)`` (trimmed mean, per coordinate);
- ``coord-error``: ``max_{j, c} |yj_c - x̄_c| / range_c(x)`` (trimmed mean, per coordinate);
- ``l2-contraction``: ``||y1 - y2||_2 / Δ2(x)``;
- ``bias``: ``max_j ||yj - x̄||_2 / Δ2(x)`` (= the averaging ratio ``||ȳ - x̄|| / Δ2(x)`` of the
  round in which every honest node gets view ``Vj``).

Every evaluation goes through the rule as implemented: ``get_rule(name, f).batch(values,
masks)`` on the ``n`` values of one round (honest rows first, then the Byzantine rows), as the
round engine calls it.

Search: exhaustive over views (all pairs) for ``d = 1`` with honest values on a grid and
Byzantine values on a wider grid, then random restarts with a local search (Gaussian
coordinate perturbations with a shrinking step, Byzantine values snapped onto honest values
or their affine combinations, single-node view toggles that keep the views legal),
hill-climbing on the objective. One ``numpy.random.default_rng(seed)``; a budget in seconds
(the search stops at the first check after it; results are reproducible for a given number
of evaluations, which :class:`SearchResult` records).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agreement.engine import check_views
from agreement.rules import get_rule

OBJECTIVES = ("coord-contraction", "coord-error", "l2-contraction", "bias")
MAX_EXHAUSTIVE_VIEWS = 256  # one rule.batch call evaluates every view: keep it short


@dataclass
class Candidate:
    """One round: honest inputs ``x`` (h, d), Byzantine values ``b`` (f, d), views ``V1, V2``
    (boolean over the ``n`` rows: honest first, then Byzantine)."""

    x: np.ndarray
    b: np.ndarray
    v1: np.ndarray
    v2: np.ndarray

    def values(self) -> np.ndarray:
        return np.concatenate([self.x, self.b]).astype(np.float64)

    def masks(self) -> np.ndarray:
        return np.stack([self.v1, self.v2])

    def copy(self) -> Candidate:
        return Candidate(self.x.copy(), self.b.copy(), self.v1.copy(), self.v2.copy())

    def honest_masks(self) -> np.ndarray:
        """The ``h`` honest views: the first half of the honest nodes get ``V1``, the rest
        ``V2`` (what :func:`agreement.engine.check_views` validates)."""
        h = self.x.shape[0]
        k = (h + 1) // 2
        return np.stack([self.v1] * k + [self.v2] * (h - k))

    def as_dict(self) -> dict[str, Any]:
        n = len(self.v1)
        return {
            "honest": self.x.tolist(),
            "byzantine": self.b.tolist(),
            "view1": [int(i) for i in range(n) if self.v1[i]],
            "view2": [int(i) for i in range(n) if self.v2[i]],
        }


def legal(v1: np.ndarray, v2: np.ndarray, n: int, f: int) -> bool:
    """Views allowed by the witness gather: sizes ``n-f..n`` and overlap ``>= n-f``."""
    return bool(v1.sum() >= n - f and v2.sum() >= n - f and (v1 & v2).sum() >= n - f)


def check_candidate(c: Candidate, n: int, f: int) -> None:
    """Raise ``AssertionError`` unless the candidate's views are witness views (the engine's
    own check, on the full ``h`` honest views)."""
    versions = np.arange(n)
    check_views(c.honest_masks(), n, f, "witness", versions)


def _ranges(x: np.ndarray) -> np.ndarray:
    return x.max(axis=0) - x.min(axis=0)


def _diam(x: np.ndarray) -> float:
    diff = x[:, None, :] - x[None, :, :]
    return float(np.sqrt((diff**2).sum(-1)).max())


def objective_value(kind: str, x: np.ndarray, y: np.ndarray) -> float:
    """The objective of one round: honest inputs ``x`` (h, d), outputs ``y`` (2, d) of the
    two views (see the module doc). Degenerate inputs (zero range / diameter) give 0 when
    the outputs do not move, ``inf`` when they do."""
    xbar = x.mean(axis=0)
    if kind in ("coord-contraction", "coord-error"):
        r = _ranges(x)
        num = np.abs(y[0] - y[1]) if kind == "coord-contraction" else np.abs(y - xbar).max(0)
        tiny = 1e-12 * max(1.0, float(np.abs(x).max()))
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(r > tiny, num / np.where(r > tiny, r, 1.0),
                         np.where(num > tiny, np.inf, 0.0))
        return float(q.max())
    D = _diam(x)
    if kind == "l2-contraction":
        num = float(np.linalg.norm(y[0] - y[1]))
    elif kind == "bias":
        num = float(np.linalg.norm(y - xbar, axis=1).max())
    else:
        raise ValueError(f"unknown objective {kind!r}; known: {', '.join(OBJECTIVES)}")
    tiny = 1e-12 * max(1.0, float(np.abs(x).max()))
    if tiny >= D:
        return 0.0 if num <= tiny else math.inf
    return num / D


@dataclass
class SearchResult:
    """The worst candidate found, its objective value and how many evaluations it took."""

    worst: float
    candidate: Candidate | None
    evaluations: int
    seconds: float
    exhaustive: bool = False
    notes: list[str] = field(default_factory=list)
    errors: int = 0
    first_error: tuple[str, Candidate] | None = None


class Evaluator:
    """Evaluates candidates through ``rule.batch`` (the rule as implemented)."""

    def __init__(self, rule: str, n: int, f: int, kind: str,
                 rule_params: dict[str, Any] | None = None) -> None:
        if kind not in OBJECTIVES:
            raise ValueError(f"unknown objective {kind!r}; known: {', '.join(OBJECTIVES)}")
        self.rule = get_rule(rule, f, **(rule_params or {}))
        self.n, self.f, self.kind = n, f, kind
        self.count = 0
        self.errors = 0
        self.first_error: tuple[str, Candidate] | None = None

    def outputs(self, c: Candidate) -> np.ndarray:
        self.count += 1
        return np.asarray(self.rule.batch(c.values(), c.masks()), dtype=np.float64)

    def __call__(self, c: Candidate) -> float:
        """The objective, or ``-inf`` when the rule raises on a legal round (a finite view
        of the right size): such rounds are counted in ``errors`` and the first one is kept
        in ``first_error`` (a defect of the rule, reported by ``verify``)."""
        try:
            y = self.outputs(c)
        except (ArithmeticError, ValueError, np.linalg.LinAlgError) as e:
            self.errors += 1
            if self.first_error is None:
                self.first_error = (f"{type(e).__name__}: {e}", c.copy())
            return -math.inf
        return objective_value(self.kind, c.x, y)


# -- exhaustive (d = 1) ------------------------------------------------------------------------

def all_views(n: int, f: int) -> list[np.ndarray]:
    """Every view the witness gather allows a node: subsets of ``n-f..n`` of ``n`` rows."""
    out = []
    for k in range(n - f, n + 1):
        for s in itertools.combinations(range(n), k):
            v = np.zeros(n, bool)
            v[list(s)] = True
            out.append(v)
    return out


def exhaustive_1d(ev: Evaluator, deadline: float,
                  honest_grid: tuple[float, ...] = (0.0, 0.5, 1.0),
                  byz_grid: tuple[float, ...] = (-1.0, 0.0, 0.25, 0.5, 0.75, 1.0, 2.0),
                  ) -> SearchResult:
    """All honest multisets on ``honest_grid`` (WLOG sorted: every view pair is enumerated),
    all Byzantine multisets on ``byz_grid``, all legal view pairs; in 1-D. One ``rule.batch``
    call per (honest, Byzantine) pair evaluates every view at once."""
    n, f = ev.n, ev.f
    h = n - f
    t0 = time.perf_counter()
    views = all_views(n, f)
    V = np.stack(views)
    inter = V.astype(int) @ V.T.astype(int)
    p1, p2 = np.nonzero(inter >= n - f)
    best, best_c = -1.0, None
    complete = True
    for hv in itertools.combinations_with_replacement(honest_grid, h):
        if hv[0] == hv[-1]:
            continue  # zero range: no claim
        for bv in itertools.combinations_with_replacement(byz_grid, f):
            if time.perf_counter() > deadline:
                complete = False
                break
            vals = np.array(hv + bv, dtype=np.float64)[:, None]
            ev.count += 1
            try:
                y = np.asarray(ev.rule.batch(vals, V), dtype=np.float64)[:, 0]
            except (ArithmeticError, ValueError, np.linalg.LinAlgError) as e:
                ev.errors += 1
                if ev.first_error is None:
                    ev.first_error = (f"{type(e).__name__}: {e}",
                                      Candidate(vals[:h].copy(), vals[h:].copy(), V[0], V[0]))
                continue
            x = vals[:h, 0]
            lo, hi = x.min(), x.max()
            R = hi - lo
            if ev.kind in ("coord-contraction", "l2-contraction"):
                q = np.abs(y[p1] - y[p2]) / R
                k = int(np.argmax(q))
                a, bb = int(p1[k]), int(p2[k])
            else:
                q = np.abs(y - x.mean()) / R
                k = int(np.argmax(q))
                a = bb = k
            if q[k] > best:
                best = float(q[k])
                best_c = Candidate(vals[:h].copy(), vals[h:].copy(), V[a].copy(), V[bb].copy())
        else:
            continue
        break
    return SearchResult(best, best_c, ev.count, time.perf_counter() - t0, exhaustive=complete)


# -- random restarts + local search --------------------------------------------------------------

def random_views(rng: np.random.Generator, n: int, f: int) -> tuple[np.ndarray, np.ndarray]:
    """A random legal view pair: a common core of ``n-f`` rows, then each of the remaining
    ``f`` rows goes to V1, V2, both or neither."""
    core = rng.choice(n, size=n - f, replace=False)
    v1 = np.zeros(n, bool)
    v1[core] = True
    v2 = v1.copy()
    for k in np.setdiff1d(np.arange(n), core):
        r = rng.integers(4)
        v1[k] |= r in (1, 3)
        v2[k] |= r in (2, 3)
    return v1, v2


def random_inputs(rng: np.random.Generator, h: int, f: int, d: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Honest inputs from a few families (cube, Gaussian, two clusters, cube corners,
    near-degenerate) and Byzantine values near, on or far from them."""
    kind = rng.integers(5)
    if kind == 0:
        x = rng.random((h, d))
    elif kind == 1:
        x = rng.normal(size=(h, d))
    elif kind == 2:
        side = rng.random(h) < 0.5
        x = np.where(side[:, None], 1.0, 0.0) + 0.05 * rng.normal(size=(h, d))
    elif kind == 3:
        x = (rng.random((h, d)) < 0.5).astype(np.float64)
    else:
        x = rng.normal(size=(h, d)) * np.geomspace(1, 1e-3, d)
    if np.ptp(x, axis=0).max() == 0:
        x[0] += 1.0
    b = _byz_guess(rng, x, f)
    return x, b


def _byz_guess(rng: np.random.Generator, x: np.ndarray, f: int) -> np.ndarray:
    h, d = x.shape
    lo, hi = x.min(0), x.max(0)
    span = np.maximum(hi - lo, 1e-9)
    kind = rng.integers(4)
    if kind == 0:
        return lo + span * rng.uniform(-0.5, 1.5, size=(f, d))
    if kind == 1:
        return x[rng.integers(h, size=f)] + 0.01 * span * rng.normal(size=(f, d))
    if kind == 2:  # affine combinations of honest values (in their affine hull)
        w = rng.normal(size=(f, h)) * (rng.random((f, h)) < 0.6)
        w[:, 0] += 1 - w.sum(1)
        return w @ x
    return lo + span * rng.choice([-1.0, 0.0, 1.0, 2.0], size=(f, d))


def _mutate(rng: np.random.Generator, c: Candidate, n: int, f: int, step: float) -> Candidate:
    h, d = c.x.shape
    c = c.copy()
    span = float(max(np.ptp(c.x, axis=0).max(), 1e-12))
    kind = rng.integers(6)
    if kind == 0:  # move one honest value
        c.x[rng.integers(h)] += step * span * rng.normal(size=d)
    elif kind == 1 and f:  # move one Byzantine value
        c.b[rng.integers(f)] += step * span * rng.normal(size=d)
    elif kind == 2 and f:  # snap a Byzantine value onto an honest one, or an affine combination
        k = int(rng.integers(f))
        w = rng.normal(size=h) * (rng.random(h) < 0.5)
        w[rng.integers(h)] += 1 - w.sum()
        c.b[k] = w @ c.x if rng.random() < 0.5 else c.x[rng.integers(h)].copy()
    elif kind == 3:  # push one coordinate of one value to the honest extremes
        j = int(rng.integers(h))
        col = int(rng.integers(d))
        c.x[j, col] = c.x[:, col].min() if rng.random() < 0.5 else c.x[:, col].max()
    else:  # toggle one node in one view, if the views stay legal
        for _ in range(8):
            v1, v2 = c.v1.copy(), c.v2.copy()
            v = v1 if rng.random() < 0.5 else v2
            k = int(rng.integers(n))
            v[k] = not v[k]
            if legal(v1, v2, n, f):
                c.v1, c.v2 = v1, v2
                break
    return c


def local_search(ev: Evaluator, d: int, deadline: float, rng: np.random.Generator,
                 iters: int = 300, max_restarts: int | None = None,
                 start: Candidate | None = None, max_evals: int | None = None
                 ) -> SearchResult:
    """Random restarts, each followed by ``iters`` steps of hill climbing (moves accepted
    when the objective does not decrease; the step size shrinks from 0.3 to 1e-3 of the
    honest span)."""
    n, f = ev.n, ev.f
    h = n - f
    t0 = time.perf_counter()
    best, best_c = -1.0, None
    restarts = 0
    def out_of_evals() -> bool:
        return max_evals is not None and ev.count >= max_evals

    while (time.perf_counter() < deadline and not out_of_evals()
           and (max_restarts is None or restarts < max_restarts)):
        if start is not None and restarts == 0:
            cur = start.copy()
        else:
            x, b = random_inputs(rng, h, f, d)
            v1, v2 = random_views(rng, n, f)
            cur = Candidate(x, b, v1, v2)
        restarts += 1
        val = ev(cur)
        for it in range(iters):
            if time.perf_counter() > deadline or out_of_evals():
                break
            step = 0.3 * (1e-3 / 0.3) ** (it / max(iters - 1, 1))
            prop = _mutate(rng, cur, n, f, step)
            pv = ev(prop)
            if pv >= val and np.isfinite(pv):
                cur, val = prop, pv
        if val > best:
            best, best_c = val, cur.copy()
    res = SearchResult(best, best_c, ev.count, time.perf_counter() - t0)
    res.notes.append(f"{restarts} restarts x {iters} steps")
    return res


def search(rule: str, n: int, f: int, d: int, kind: str, budget: float, seed: int = 0,
           rule_params: dict[str, Any] | None = None, iters: int = 300,
           max_evals: int | None = None) -> SearchResult:
    """Worst case of objective ``kind`` for ``rule`` at ``(n, f, d)`` within ``budget`` seconds:
    exhaustive in 1-D first (up to half the budget), then random restarts with local search
    (started once from the exhaustive worst). The returned candidate's views are checked
    with :func:`agreement.engine.check_views`.

    With ``max_evals`` the local search stops after that many evaluations (counting the
    exhaustive ones): the result is then the same on every machine, provided the budget is
    not reached first (``SearchResult.seconds`` tells)."""
    if not (n >= 1 and f >= 0 and n - f >= 1 and d >= 1 and budget > 0):
        raise ValueError(f"bad search parameters n={n}, f={f}, d={d}, budget={budget}")
    ev = Evaluator(rule, n, f, kind, rule_params)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    end = t0 + budget
    results = []
    if d == 1 and sum(math.comb(n, k) for k in range(n - f, n + 1)) <= MAX_EXHAUSTIVE_VIEWS:
        results.append(exhaustive_1d(ev, t0 + budget / 2))
    start = results[0].candidate if results else None  # exhaustive worst seeds the climb
    results.append(local_search(ev, d, end, rng, iters=iters, start=start,
                                max_evals=max_evals))
    best = max(results, key=lambda r: r.worst)
    out = SearchResult(best.worst, best.candidate, ev.count, time.perf_counter() - t0,
                       exhaustive=len(results) > 1 and bool(results[0].exhaustive),
                       notes=[n for r in results for n in r.notes], errors=ev.errors,
                       first_error=ev.first_error)
    if out.candidate is not None:
        check_candidate(out.candidate, n, f)
    return out


__all__ = [
    "OBJECTIVES",
    "Candidate",
    "Evaluator",
    "SearchResult",
    "all_views",
    "check_candidate",
    "exhaustive_1d",
    "legal",
    "local_search",
    "objective_value",
    "random_inputs",
    "random_views",
    "search",
]
