"""Worst-case searches for the per-round claims of ``agreement.claims`` (one round, witness
views), deterministic: a budget in evaluations, one seeded generator.

What is searched (the exact object of every per-round claim):

- honest inputs ``x`` (``h = n - b`` vectors of ``R^d``, ``b <= f`` Byzantine nodes), the
  ``b`` Byzantine values (one value per Byzantine node: reliable broadcast), the honest
  views, and the order of the view's rows (ties in a rule are broken by row order);
- the views the witness gather allows (:func:`agreement.engine.check_views`): each view has
  ``n-f..n`` of the ``n`` values, any two views share ``>= n-f`` values (a node's view may
  omit its own value, and silent Byzantine nodes are in no view).

Reduction to one or two views (exact, used throughout). Every per-round quantity is a max
over pairs of honest nodes (diameter, per-coordinate range) or over single nodes (distance of
an output to the honest mean). Giving half the honest nodes view ``V1`` and the rest ``V2`` is
allowed whenever ``|V1|, |V2| >= n-f`` and ``|V1 ∩ V2| >= n-f``. So a candidate is
``(x, b, V1, V2, order)`` and the objectives (the measures of ``agreement.claims``) are

- ``coord-contraction``: ``max_c |y1_c - y2_c| / range_c(x)`` (trimmed mean, per coordinate);
- ``coord-error``: ``max_{j, c} |yj_c - x̄_c| / range_c(x)`` (trimmed mean, per coordinate);
- ``l2-contraction``: ``||y1 - y2||_2 / Δ2(x)``;
- ``bias``: ``max_j ||yj - x̄||_2 / Δ2(x)`` (= the averaging ratio ``||ȳ - x̄|| / Δ2(x)`` of the
  round in which every honest node gets view ``Vj``),

each with the claims table's tolerance: the numerator less ``64·eps·max(|x|, |y|)`` (the
rounding slack of :func:`agreement.claims.slack`), so that ``judge`` compares with the bound
as the run evaluator does. Many views of the same ``(x, b)`` are evaluated in one
``rule.batch`` call and the worst legal pair (or view) is kept.

Every evaluation goes through the rule as implemented: ``make_rule(name, f).batch(values,
masks)`` on the ``n`` values of one round, as the round engine calls it. **One evaluation is
the rule applied to one view** (one row of ``masks``); the budget counts them, so the result
is the same on every machine for the same seed and budget (no clock is read; the one caveat
is floating point: a numpy/BLAS build that rounds the rule's arithmetic differently could
steer a climb elsewhere). ``seconds`` is only a safety cap, reported in
:attr:`SearchResult.capped` when hit, which breaks that determinism.

Generators (the budget is split between them in fixed shares, :data:`SHARES`):

- ``levels``: honest values on 2-3 levels of a random line (random counts per level), the
  Byzantine values at random positions of the same line (together or not; near the span or
  beyond one of its ends by a random fraction of it: the form of the tight rounds; some
  may be silent: fewer than ``f`` values, or ``b < f`` Byzantine nodes), every view that
  omits up to ``f`` rows chosen by level (all the views that differ on such inputs, so all
  legal pairs are compared), rows
  in honest-first, Byzantine-first or random order; then a local search on the counts, level
  positions and Byzantine positions (the family of the tight constructions of
  ``trimmed_mean.md`` and ``mda.md``);
- ``flat`` (d >= 2): nearly degenerate honest values (all but one on a line, or in general
  position) with a Byzantine value on their line / in the affine hull of a subset, far away;
  then a line search on the Byzantine distance (``mve.md`` Proposition 5);
- ``extreme``: level inputs scaled to float extremes (tiny or huge scales, large offsets) and
  Byzantine values at the largest valid magnitude (``netsim.messages.valid_vector``);
- ``random``: random inputs and views, then hill climbing (Gaussian moves with a shrinking
  step, Byzantine values snapped onto honest values or their affine combinations, view
  toggles that keep the views legal).
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agreement.claims import slack
from agreement.engine import check_views
from agreement.rules import make_rule
from netsim.messages import valid_vector

OBJECTIVES = ("coord-contraction", "coord-error", "l2-contraction", "bias")
SHARES = {"levels": 0.79, "flat": 0.01, "extreme": 0.1, "random": 0.1}  # of the budget
# the coordinate-wise rule in d > 1: its ℓ2 worst cases are off any line (cube corners, per
# coordinate structures), which the random climb reaches; its rounds are cheap
SHARES_TM = {"levels": 0.3, "flat": 0.0, "extreme": 0.05, "random": 0.65}
DEFAULT_EVALS = 6000  # evaluations (rule on one view) per search
RULE_ERRORS = (ArithmeticError, ValueError, np.linalg.LinAlgError)


@dataclass
class Candidate:
    """One round: honest inputs ``x`` (h, d), Byzantine values ``b`` (k, d), ``k <= f``, views
    ``V1, V2`` (boolean over the ``n = h + k`` nodes: honest first, then Byzantine) and the
    order of the rows given to the rule (``None``: node order)."""

    x: np.ndarray
    b: np.ndarray
    v1: np.ndarray
    v2: np.ndarray
    order: np.ndarray | None = None

    def values(self) -> np.ndarray:
        return np.concatenate([self.x, self.b]).astype(np.float64)

    def masks(self) -> np.ndarray:
        return np.stack([self.v1, self.v2])

    def copy(self) -> Candidate:
        return Candidate(self.x.copy(), self.b.copy(), self.v1.copy(), self.v2.copy(),
                         None if self.order is None else self.order.copy())

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
            "row_order": None if self.order is None else [int(i) for i in self.order],
        }


def legal(v1: np.ndarray, v2: np.ndarray, n: int, f: int) -> bool:
    """Views allowed by the witness gather: sizes ``n-f..n`` and overlap ``>= n-f``."""
    return bool(v1.sum() >= n - f and v2.sum() >= n - f and (v1 & v2).sum() >= n - f)


def check_candidate(c: Candidate, n: int, f: int) -> None:
    """Raise ``AssertionError`` unless the candidate's views are witness views (the engine's
    own check, on the full ``h`` honest views)."""
    check_views(c.honest_masks(), n, f, "witness", np.arange(n))


def _diam(x: np.ndarray) -> float:
    diff = x[:, None, :] - x[None, :, :]
    return float(np.sqrt((diff**2).sum(-1)).max())


def _q(num: np.ndarray | float, den: np.ndarray | float, tol: float) -> np.ndarray:
    """``max(num - tol, 0) / den`` with 0/0 = 0 and x/0 = inf (den within ``tol`` of 0)."""
    num = np.maximum(np.asarray(num, dtype=np.float64) - tol, 0.0)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > tol, num / np.where(den > tol, den, 1.0),
                        np.where(num > 0, np.inf, 0.0))


def objective_views(kind: str, x: np.ndarray, Y: np.ndarray, pairs: np.ndarray
                    ) -> tuple[float, int, int]:
    """The objective over views: honest inputs ``x`` (h, d), outputs ``Y`` (k, d) of ``k``
    views, ``pairs`` (p, 2) the legal pairs among them (contraction objectives). Returns
    ``(value, i, j)``: the worst pair (or view ``i = j``)."""
    tol = max(slack(x), slack(Y))
    xbar = x.mean(axis=0)
    if kind in ("coord-contraction", "l2-contraction"):
        if len(pairs) == 0:
            return -math.inf, 0, 0
        diff = Y[pairs[:, 0]] - Y[pairs[:, 1]]
        if kind == "coord-contraction":
            r = x.max(axis=0) - x.min(axis=0)
            q = _q(np.abs(diff), r[None, :], tol).max(axis=1)
        else:
            q = _q(np.linalg.norm(diff, axis=1), _diam(x), tol)
        k = int(np.argmax(q))
        return float(q[k]), int(pairs[k, 0]), int(pairs[k, 1])
    if kind == "coord-error":
        r = x.max(axis=0) - x.min(axis=0)
        q = _q(np.abs(Y - xbar), r[None, :], tol).max(axis=1)
    elif kind == "bias":
        q = _q(np.linalg.norm(Y - xbar, axis=1), _diam(x), tol)
    else:
        raise ValueError(f"unknown objective {kind!r}; known: {', '.join(OBJECTIVES)}")
    k = int(np.argmax(q))
    return float(q[k]), k, k


def objective_value(kind: str, x: np.ndarray, y: np.ndarray) -> float:
    """The objective of one round with two views: honest inputs ``x`` (h, d), outputs ``y``
    (2, d) of ``V1, V2`` (a legal pair). Degenerate inputs (zero range / diameter) give 0
    when the outputs do not move, ``inf`` when they do."""
    return objective_views(kind, x, np.asarray(y, dtype=np.float64), np.array([[0, 1]]))[0]


def legal_pairs(masks: np.ndarray, n: int, f: int) -> np.ndarray:
    """The pairs ``(i, j)``, ``i <= j``, of rows of ``masks`` that are legal view pairs."""
    M = masks.astype(np.int64)
    sizes = M.sum(axis=1)
    inter = M @ M.T
    ok = (inter >= n - f) & (sizes[:, None] >= n - f) & (sizes[None, :] >= n - f)
    i, j = np.nonzero(np.triu(ok))
    return np.stack([i, j], axis=1)


@dataclass
class SearchResult:
    """The worst candidate found, its objective value and how many evaluations it took
    (``by_generator``: the worst value each generator reached)."""

    worst: float
    candidate: Candidate | None
    evaluations: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    errors: int = 0
    first_error: tuple[str, Candidate] | None = None
    capped: bool = False
    by_generator: dict[str, float] = field(default_factory=dict)
    found_by: str = ""


class BudgetSpent(Exception):
    """Raised inside a generator when its share of the evaluations (or the cap) is spent."""


class Evaluator:
    """Evaluates candidates through ``rule.batch`` (the rule as implemented), counting one
    evaluation per view, keeping the worst candidate seen."""

    def __init__(self, rule: str, n: int, f: int, kind: str,
                 rule_params: dict[str, Any] | None = None, max_evals: int | None = None,
                 deadline: float | None = None) -> None:
        if kind not in OBJECTIVES:
            raise ValueError(f"unknown objective {kind!r}; known: {', '.join(OBJECTIVES)}")
        self.rule = make_rule(rule, f, **(rule_params or {}))
        self.n, self.f, self.kind = n, f, kind
        self.count = 0
        self.limit = max_evals
        self.deadline = deadline
        self.capped = False
        self.errors = 0
        self.first_error: tuple[str, Candidate] | None = None
        self.best = -math.inf
        self.best_c: Candidate | None = None
        self.best_by = ""
        self.generator = ""
        self.by_generator: dict[str, float] = {}

    def _spend(self, k: int) -> None:
        if self.limit is not None and self.count + k > self.limit:
            raise BudgetSpent
        if self.deadline is not None and time.perf_counter() > self.deadline:
            self.capped = True
            raise BudgetSpent
        self.count += k

    def outputs(self, values: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return np.asarray(self.rule.batch(values, masks), dtype=np.float64)

    def views(self, x: np.ndarray, b: np.ndarray, masks: np.ndarray,
              order: np.ndarray | None = None, pairs: np.ndarray | None = None
              ) -> tuple[float, Candidate | None]:
        """The worst legal pair (or view) among ``masks`` (k, n) for inputs ``x`` and
        Byzantine values ``b``, rows in ``order``; ``-inf`` when the rule raises on a legal
        round (counted in ``errors``, the first kept in ``first_error``: a defect of the
        rule, reported by ``verify``) or a value is not valid."""
        n = x.shape[0] + b.shape[0]
        vals = np.concatenate([x, b]).astype(np.float64)
        if not all(valid_vector(v) for v in vals):
            return -math.inf, None
        self._spend(len(masks))
        perm = np.arange(n) if order is None else order
        try:
            Y = self.outputs(vals[perm], masks[:, perm])
        except RULE_ERRORS as e:
            self.errors += 1
            if self.first_error is None:
                self.first_error = (f"{type(e).__name__}: {e}",
                                    Candidate(x.copy(), b.copy(), masks[0].copy(),
                                              masks[0].copy(), order))
            return -math.inf, None
        if pairs is None:
            pairs = legal_pairs(masks, self.n, self.f)
        val, i, j = objective_views(self.kind, x, Y, pairs)
        if not (val > -math.inf):
            return val, None
        c = Candidate(x.copy(), b.copy(), masks[i].copy(), masks[j].copy(),
                      None if order is None else order.copy())
        if val > self.best:
            self.best, self.best_c, self.best_by = val, c, self.generator
        if val > self.by_generator.get(self.generator, -math.inf):
            self.by_generator[self.generator] = val
        return val, c

    def __call__(self, c: Candidate) -> float:
        """The objective of a two-view candidate (its pair and both single views)."""
        return self.views(c.x, c.b, c.masks(), c.order, np.array([[0, 1]]))[0]


# -- views ---------------------------------------------------------------------------------------

def all_views(n: int, f: int) -> list[np.ndarray]:
    """Every view the witness gather allows a node: subsets of ``n-f..n`` of ``n`` rows."""
    out = []
    for k in range(n - f, n + 1):
        for s in itertools.combinations(range(n), k):
            v = np.zeros(n, bool)
            v[list(s)] = True
            out.append(v)
    return out


def group_views(groups: list[list[int]], n: int, f: int) -> np.ndarray:
    """Every view that omits up to ``f`` rows, chosen by group (``k`` rows of a group: its
    first ``k``). On inputs constant within each group these are all the views there are, up
    to which rows of a group are omitted (which changes only tie-breaking), and omitting the
    same rows keeps the most pairs legal (``legal_pairs``: together at most ``f`` omitted)."""
    out = []
    sizes = [len(g) for g in groups]
    for counts in itertools.product(*[range(min(s, f) + 1) for s in sizes]):
        if sum(counts) > f:
            continue
        v = np.ones(n, bool)
        for g, k in zip(groups, counts, strict=True):
            v[g[:k]] = False
        out.append(v)
    return np.stack(out)


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


def _order(rng: np.random.Generator, h: int, k: int) -> np.ndarray | None:
    """Row order: node order (honest first), Byzantine rows first, or a random permutation."""
    r = rng.random()
    if r < 0.5:
        return None
    if r < 0.8:
        return np.concatenate([np.arange(h, h + k), np.arange(h)])
    return rng.permutation(h + k)


# -- the levels generator (tight constructions of trimmed_mean.md and mda.md) -------------------

@dataclass
class Levels:
    """Inputs on a line ``a + t·u``: honest counts per level at positions ``t``, Byzantine
    positions ``tb`` (one per Byzantine node that sends), and the row order."""

    counts: list[int]
    t: list[float]
    tb: list[float]
    order_kind: int
    silent: int = 0  # Byzantine nodes in no view (b = len(tb) + silent <= f)


def _compositions(rng: np.random.Generator, h: int, parts: int) -> list[int]:
    cuts = np.sort(rng.choice(np.arange(1, h), size=parts - 1, replace=False))
    return list(np.diff(np.concatenate([[0], cuts, [h]])).astype(int))


STAIRS_RULES = frozenset({"ball-mda"})
"""Rules whose worst rounds put the Byzantine values beyond one end at two distances (ball
MDA: one just past the honest span, the others a span further, proofs/ball_mda.md
Proposition 4): the levels generator tries that form too (the other rules' searches, and
their seeded figures, are unchanged)."""


def _random_levels(rng: np.random.Generator, n: int, f: int, stairs: bool = False) -> Levels:
    nbyz = f if rng.random() < 0.75 else int(rng.integers(0, f + 1))
    h = n - nbyz
    silent = 0
    if nbyz and rng.random() < 0.15:  # some Byzantine nodes silent: in no view
        silent = int(rng.integers(1, nbyz + 1))
    parts = 2 if (rng.random() < 0.6 or h < 3) else 3
    counts = _compositions(rng, h, parts)
    t = [0.0, 1.0] if parts == 2 else [0.0, float(rng.uniform(0.05, 0.95)), 1.0]
    k = nbyz - silent
    mode = rng.random()
    if stairs and k > 1 and rng.random() < 0.5:  # beyond one end, at two distances
        d1 = float(rng.uniform(0.5, 1.5))
        d2 = d1 + float(rng.uniform(0.5, 1.5))
        tb = [1.0 + d1] + [1.0 + d2] * (k - 1)
        if rng.random() < 0.5:
            tb = [-(t - 1.0) for t in tb]
    elif mode < 0.4:  # together, beyond one end by δ·span (the form of the tight rounds)
        delta = float(rng.random())
        tb = [1.0 + delta if rng.random() < 0.5 else -delta] * k
    elif mode < 0.6:  # each beyond a random end
        tb = [1.0 + float(rng.random()) if rng.random() < 0.5 else -float(rng.random())
              for _ in range(k)]
    else:  # anywhere near the honest span, together half the time
        tb = [float(rng.uniform(-1.5, 2.5)) for _ in range(k)]
        if tb and rng.random() < 0.5:
            tb = [tb[0]] * k
    return Levels(counts, t, tb, int(rng.integers(3)), silent)


def _build(lv: Levels, n: int, f: int, a: np.ndarray, u: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Inputs, views (:func:`group_views` by level, each sending Byzantine node its own
    group) and order for a :class:`Levels`; silent Byzantine nodes are omitted in every view
    (counted against the ``f`` omissions)."""
    x = np.concatenate([np.repeat([a + ti * u], c, axis=0)
                        for ti, c in zip(lv.t, lv.counts, strict=True) if c > 0])
    h = x.shape[0]
    nb = len(lv.tb) + lv.silent
    b = np.array([a + ti * u for ti in lv.tb] + [a] * lv.silent).reshape(nb, len(a))
    groups, start = [], 0
    for c in lv.counts:
        if c > 0:
            groups.append(list(range(start, start + c)))
            start += c
    places: dict[float, list[int]] = {}  # Byzantine nodes at one place: one group
    for k, tk in enumerate(lv.tb):
        places.setdefault(tk, []).append(h + k)
    groups += list(places.values())
    masks = group_views(groups, n, f - lv.silent)
    if lv.silent:
        masks[:, h + len(lv.tb):] = False
        sizes = masks.sum(axis=1)
        masks = masks[sizes >= n - f]
    if lv.order_kind == 0:
        order = None
    elif lv.order_kind == 1:
        order = np.concatenate([np.arange(h, n), np.arange(h)])
    else:
        order = np.concatenate([np.arange(h)[::-1], np.arange(h, n)])  # honest, reversed
    return x, b, masks, order


def _mutate_levels(rng: np.random.Generator, lv: Levels, step: float) -> Levels:
    counts, t, tb = list(lv.counts), list(lv.t), list(lv.tb)
    kind = int(rng.integers(6))
    if kind == 5 and len(tb) > 1:  # gather the Byzantine values at one of them
        tb = [tb[int(rng.integers(len(tb)))]] * len(tb)
        return Levels(counts, t, tb, lv.order_kind, lv.silent)
    if kind == 0 and len(counts) > 1:  # one honest node to another level
        i, j = rng.choice(len(counts), size=2, replace=False)
        if counts[i] > 1:
            counts[i] -= 1
            counts[j] += 1
    elif kind == 1 and len(t) == 3:  # move the middle level
        t[1] = float(np.clip(t[1] + step * rng.normal(), 0.01, 0.99))
    elif kind in (2, 3) and tb:  # move a Byzantine value (or all that share its place),
        k = int(rng.integers(len(tb)))  # or snap it next to a level
        same = [i for i in range(len(tb)) if tb[i] == tb[k]] if rng.random() < 0.5 else [k]
        if kind == 2:
            new = tb[k] + step * float(rng.normal())
        else:
            new = float(rng.choice(t)) + float(rng.choice([-1.0, 0.0, 1.0])) * (
                1 - abs(step) * float(rng.random()))
        for i in same:
            tb[i] = new
    else:
        return Levels(counts, t, tb, int(rng.integers(3)), lv.silent)
    return Levels(counts, t, tb, lv.order_kind, lv.silent)


def levels_search(ev: Evaluator, d: int, rng: np.random.Generator, steps: int = 25,
                  scale: float = 1.0, offset: float = 0.0) -> None:
    """Restarts of :func:`_random_levels` on a random line, each climbed ``steps`` times
    (moves accepted when the objective does not decrease; the step shrinks from 0.5 to
    1e-3), until the evaluator's budget is spent."""
    n, f = ev.n, ev.f
    while True:
        u = np.ones(1) if d == 1 else rng.normal(size=d)
        u = u / np.linalg.norm(u) * scale
        a = np.full(d, offset) if d == 1 else offset + rng.normal(size=d) * scale
        lv = _random_levels(rng, n, f, stairs=ev.rule.name in STAIRS_RULES)
        val, _ = ev.views(*_build(lv, n, f, a, u))
        for it in range(steps):
            step = 0.5 * (1e-3 / 0.5) ** (it / max(steps - 1, 1))
            prop = _mutate_levels(rng, lv, step)
            pv, _ = ev.views(*_build(prop, n, f, a, u))
            if pv >= val and math.isfinite(pv):
                lv, val = prop, pv


# -- the flat generator (mve.md Proposition 5) --------------------------------------------------

def _flat_inputs(rng: np.random.Generator, h: int, f: int, d: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nearly degenerate honest values and Byzantine values in their flat, far away. Returns
    ``(x, b, anchor, direction)``: the Byzantine values are ``anchor + L·direction``."""
    if rng.random() < 0.5 or d < h - 1:  # all but one on a line
        u = rng.normal(size=d)
        u /= np.linalg.norm(u)
        a = rng.normal(size=d)
        t = np.sort(rng.random(h))
        t = (t - t[0]) / (t[-1] - t[0])
        x = a + t[:, None] * u
        j = int(rng.integers(h))  # one honest value off the line, at a height ~ the span
        w = rng.normal(size=d)
        w -= (w @ u) * u
        x[j] += (10 ** rng.uniform(-0.3, 0.3)) * w / max(np.linalg.norm(w), 1e-300)
        anchor, direction = x[(j + 1) % h], u
    else:  # general position, Byzantine on the line through two honest values of a flat
        x = rng.normal(size=(h, d))
        i, j = rng.choice(h, size=2, replace=False)
        anchor, direction = x[i], (x[i] - x[j]) / np.linalg.norm(x[i] - x[j])
    L = 10 ** rng.uniform(0.5, 1.5) * (1 if rng.random() < 0.5 else -1)
    b = np.repeat([anchor + L * direction], f, axis=0)
    if f > 1:
        b[1:] = x[rng.integers(h, size=f - 1)]
    return x, b, anchor, direction


def _at_distance(ev: Evaluator, x: np.ndarray, b: np.ndarray, anchor: np.ndarray,
                 u: np.ndarray, masks: np.ndarray, order: np.ndarray | None, dist: float
                 ) -> float:
    b2 = b.copy()
    b2[0] = anchor + dist * u
    return ev.views(x, b2, masks, order)[0]


def flat_search(ev: Evaluator, d: int, rng: np.random.Generator, bisections: int = 6) -> None:
    """Restarts of :func:`_flat_inputs` with two views (all ``n`` values; all but the far
    Byzantine value: a legal pair), then a line search on the Byzantine distance ``L`` along
    its line: doubling while the objective does not decrease, then ``bisections`` geometric
    bisections between the last ``L`` that did and the first that did not (the flat subset
    wins up to a threshold, where the ratio peaks: ``mve.md`` Proposition 5)."""
    n, f = ev.n, ev.f
    h = n - f
    full, honest = np.ones(n, bool), np.ones(n, bool)
    honest[h] = False  # without the far Byzantine value
    masks = np.stack([full, honest])
    while True:
        x, b, anchor, u = _flat_inputs(rng, h, f, d)
        order = _order(rng, h, f)
        L = float((b[0] - anchor) @ u)
        at = functools.partial(_at_distance, ev, x, b, anchor, u, masks, order)
        val = at(L)
        bad = None
        for _ in range(40):  # doubling
            v2 = at(2 * L)
            if not (v2 >= val and math.isfinite(v2)):
                bad = 2 * L
                break
            L, val = 2 * L, v2
        if bad is None:
            continue
        for _ in range(bisections):
            mid = math.copysign(math.sqrt(L * bad), L)
            vm = at(mid)
            if vm >= val and math.isfinite(vm):
                L, val = mid, vm
            else:
                bad = mid


# -- extreme float values -----------------------------------------------------------------------

def extreme_search(ev: Evaluator, d: int, rng: np.random.Generator) -> None:
    """Level inputs at float extremes: scales 1e-150..1e100, offsets up to 1e15 times the
    spread, and (half the time) one Byzantine value at the largest valid magnitude, rows in
    Byzantine-first order half the time."""
    n, f = ev.n, ev.f
    big = 2.0 ** 499.5 / math.sqrt(d)  # ||v||² = 2^999 <= 2^1000: valid, just
    while True:
        scale = float(10.0 ** rng.choice([-150, -30, -8, 0, 8, 30, 100]))
        offset = float(rng.choice([0.0, 1e8, 1e15])) * scale
        lv = _random_levels(rng, n, f)
        u = np.ones(1) if d == 1 else rng.normal(size=d)
        u = u / np.linalg.norm(u) * scale
        a = np.full(d, offset)
        x, b, masks, order = _build(lv, n, f, a, u)
        if len(b) and rng.random() < 0.5:
            b[0] = big * np.sign(rng.normal(size=d))
            if len(b) > 1:
                b[1] = a + float(rng.uniform(-1, 2)) * u
            if rng.random() < 0.5:
                order = np.concatenate([np.arange(len(x), n), np.arange(len(x))])
        ev.views(x, b, masks, order)


# -- random restarts + local search --------------------------------------------------------------

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
    return x, _byz_guess(rng, x, f)


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
    k_b = c.b.shape[0]
    c = c.copy()
    span = float(max(np.ptp(c.x, axis=0).max(), 1e-12))
    kind = rng.integers(6)
    if kind == 0:  # move one honest value
        c.x[rng.integers(h)] += step * span * rng.normal(size=d)
    elif kind == 1 and k_b:  # move one Byzantine value
        c.b[rng.integers(k_b)] += step * span * rng.normal(size=d)
    elif kind == 2 and k_b:  # snap a Byzantine value onto an honest one, or an affine combination
        k = int(rng.integers(k_b))
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


def random_search(ev: Evaluator, d: int, rng: np.random.Generator, iters: int = 150,
                  start: Candidate | None = None) -> None:
    """Random restarts (the first from ``start`` when given), each followed by ``iters``
    steps of hill climbing (moves accepted when the objective does not decrease; the step
    shrinks from 0.3 to 1e-3 of the honest span)."""
    n, f = ev.n, ev.f
    h = n - f
    first = True
    while True:
        if start is not None and first:
            cur = start.copy()
        else:
            x, b = random_inputs(rng, h, f, d)
            v1, v2 = random_views(rng, n, f)
            cur = Candidate(x, b, v1, v2, _order(rng, h, f))
        first = False
        val = ev(cur)
        for it in range(iters):
            step = 0.3 * (1e-3 / 0.3) ** (it / max(iters - 1, 1))
            prop = _mutate(rng, cur, n, f, step)
            pv = ev(prop)
            if pv >= val and np.isfinite(pv):
                cur, val = prop, pv


def search(rule: str, n: int, f: int, d: int, kind: str, budget: int = DEFAULT_EVALS,
           seed: int = 0, rule_params: dict[str, Any] | None = None,
           seconds: float | None = None) -> SearchResult:
    """Worst case of objective ``kind`` for ``rule`` at ``(n, f, d)`` within ``budget``
    evaluations (the rule on one view), split between the generators in the shares
    :data:`SHARES` (:data:`SHARES_TM` for the trimmed mean in d > 1; ``flat``'s share goes to
    ``levels`` in 1-D; ``random`` starts once from
    the worst so far unless ``flat`` found it: MVE's rounds on those inputs are slow).
    Deterministic for a given ``(seed, budget)``; ``seconds`` is a safety cap only
    (``SearchResult.capped`` says when it stopped the search). The returned
    candidate's views are checked with :func:`agreement.engine.check_views`."""
    if not (n >= 1 and f >= 0 and n - f >= 1 and d >= 1 and budget >= 1):
        raise ValueError(f"bad search parameters n={n}, f={f}, d={d}, budget={budget} "
                         "(budget: a number of evaluations >= 1)")
    t0 = time.perf_counter()
    ev = Evaluator(rule, n, f, kind, rule_params,
                   deadline=None if seconds is None else t0 + seconds)
    rng = np.random.default_rng(seed)
    shares = dict(SHARES_TM if rule == "trimmed-mean" and d > 1 else SHARES)
    if d == 1:
        shares["levels"] += shares.pop("flat")
    spent = 0.0
    for name, share in shares.items():
        spent += share
        ev.limit = round(budget * spent) if name != "random" else budget
        ev.generator = name
        try:
            if name == "levels":
                levels_search(ev, d, rng)
            elif name == "flat":
                flat_search(ev, d, rng)
            elif name == "extreme":
                extreme_search(ev, d, rng)
            else:  # from the worst so far, unless a flat one (slow rounds for MVE)
                random_search(ev, d, rng, start=None if ev.best_by == "flat" else ev.best_c)
        except BudgetSpent:
            pass
        if ev.capped:
            break
    out = SearchResult(ev.best if ev.best_c is not None else -1.0, ev.best_c, ev.count,
                       time.perf_counter() - t0, errors=ev.errors, first_error=ev.first_error,
                       capped=ev.capped, by_generator=dict(ev.by_generator), found_by=ev.best_by)
    if ev.capped:
        out.notes.append(f"stopped by the {seconds} s safety cap after {ev.count} evaluations")
    if out.candidate is not None:
        check_candidate(out.candidate, n, f)
    return out


__all__ = [
    "DEFAULT_EVALS",
    "OBJECTIVES",
    "SHARES",
    "SHARES_TM",
    "BudgetSpent",
    "Candidate",
    "Evaluator",
    "Levels",
    "SearchResult",
    "all_views",
    "check_candidate",
    "extreme_search",
    "flat_search",
    "group_views",
    "legal",
    "legal_pairs",
    "levels_search",
    "objective_value",
    "objective_views",
    "random_inputs",
    "random_search",
    "random_views",
    "search",
]
