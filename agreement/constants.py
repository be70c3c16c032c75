"""The constants of docs/theory.md as code: contraction factors, averaging constants, round counts.

One source of truth: the protocols choose their round counts here, the tests and the CLI
compare measured runs with these bounds, and ``proofs`` (which reads agreement) proves or
refutes them. Claims the original spec marked **[to prove]** are marked so in the docstrings;
docs/theory.md gives each one's status.

Notation: ``n`` nodes, ``f`` Byzantine, ``h = n - f`` honest, ``d`` the dimension,
``Δ2(x)`` the honest ℓ2 diameter, ``x̄`` the honest mean.

Resilience, one rule for every protocol (:func:`resilient`, :func:`min_n`): a protocol with a
proven per-round contraction runs where that contraction is below 1 (and the witness gather
runs: ``n >= 3f+1``): trimmed-mean ``λ = f/(n-2f) < 1`` iff ``n >= 3f+1``; MDA (and MVE, see
:func:`resilience_factor`) ``κ(n,f) < 1``, from n = 5 at f = 1, 10 at f = 2, 14 at f = 3
(about 4.6f; ``proofs/mda.md``, "Resilience"); ball MDA ``κ_ball(n,f) < 1``, from n = 6, 12,
17 at f = 1, 2, 3 (about 5.7f; ``proofs/ball_mda.md``). The original spec's ``n >= 6f+1``
for MDA and MVE came from its loose ``4f/(n-2f)`` and is history. A protocol without a
proven contraction (median, krum, mean) claims nothing and runs wherever the witness
gather does.
"""

from __future__ import annotations

import functools
import math

import numpy as np


def _check(n: int, f: int, k: int, what: str) -> None:
    if f < 0 or n < 1:
        raise ValueError(f"{what} needs n >= 1 and f >= 0, got n={n}, f={f}")
    if n < k * f + 1:
        raise ValueError(f"{what} needs n >= {k}f+1, got n={n}, f={f}")


def _kappa(n: int, f: int) -> float:
    """MDA's κ(n, f) without the resilience check (defined for n >= 2f+1)."""
    e1, e2 = (f + 1) // 2, f // 2
    return (f + e1) / (n - 2 * f + e1) + (f + e2) / (n - 2 * f + e2)


def mda_min_n(f: int) -> int:
    """The smallest ``n >= 3f+1`` with ``κ(n, f) < 1`` (:func:`mda_contraction`): 1 at f = 0,
    5 at f = 1, 10 at f = 2, 14 at f = 3, about 4.6f for large f. ``κ`` decreases in n
    (each term ``1 - (n-3f)/(n-2f+e)`` does), so this is the first n of the κ < 1 region,
    and every larger n is in it (``proofs/mda.md``, "Resilience")."""
    if f < 0:
        raise ValueError(f"f must be >= 0, got {f}")
    n = 3 * f + 1
    while _kappa(n, f) >= 1:
        n += 1
    return n


def _check_kappa(n: int, f: int, what: str) -> None:
    """MDA's (and MVE's) resilience: ``n >= 3f+1`` and ``κ(n, f) < 1``."""
    _check(n, f, 3, what)
    if _kappa(n, f) >= 1:
        raise ValueError(
            f"{what} needs κ(n,f) < 1 (proofs/mda.md): κ({n},{f}) = {_kappa(n, f):.4f}; "
            f"the smallest n for f={f} is {mda_min_n(f)}"
        )


def lower_bound_averaging_constant(n: int, f: int) -> float:
    """No averaging agreement achieves ``C < f/(n-f)`` (docs/theory.md §2); proven in
    ``proofs/lower_bound.md`` and run in the simulator by ``proofs.lower_bound``.

    Two indistinguishable worlds, inputs f nodes at 1 and n-f at 0: in world A the f nodes
    at 1 are Byzantine but act honestly (Δ2(x) = 0, so every honest output must be 0); in
    world B f of the nodes at 0 are Byzantine and act honestly (x̄ = f/(n-f), Δ2(x) = 1).
    """
    if not 0 <= f < n:
        raise ValueError(f"needs 0 <= f < n, got n={n}, f={f}")
    return f / (n - f)


# -- trimmed mean (docs/theory.md §5.1), n >= 3f+1 ------------------------------------------------

def tm_contraction(n: int, f: int) -> float:
    """Per-coordinate, per-round contraction of the honest range under RB-TM:
    ``range_c(y) <= λ·range_c(x)``, ``λ = f/(n-2f)`` (< 1 iff n >= 3f+1; 1/2 at n = 4, f = 1).

    Proven and tight: ``proofs/trimmed_mean.md``, Theorem 1 (witness views: sizes n-f..n,
    pairwise overlap >= n-f; any b <= f Byzantine nodes)."""
    _check(n, f, 3, "trimmed-mean agreement")
    return f / (n - 2 * f)


def tm_error_factor(n: int, f: int) -> float:
    """Per-coordinate, per-round deviation from the honest mean:
    ``|y_j,c - x̄_c| <= (2f/(n-f)) · range_c(x)``.

    Proven and tight: ``proofs/trimmed_mean.md``, Theorem 2."""
    _check(n, f, 3, "trimmed-mean agreement")
    return 2 * f / (n - f)


def tm_l2_contraction(n: int, f: int, d: int, rounds: int = 1) -> float:
    """``Δ2(y^T) <= min(√d, √(n-1)) · λ^T · Δ2(x)``: the ℓ2 factor after ``rounds`` rounds.

    Proof: ``proofs/trimmed_mean.md`` (Corollary 4): ``Δ2(y) <= ||range(y)||_2``, every range
    shrinks by ``λ`` per round, and ``||range(x)||_2 <= min(√d, √(h-1)) · Δ2(x)`` for ``h``
    points (Lemma 3), with ``h = n-b <= n`` honest nodes when ``b <= f`` are Byzantine.
    The original spec states ``√d``; the ``√(n-1)`` cap is the strengthening for small ``n``.
    """
    lam = tm_contraction(n, f)
    return min(math.sqrt(d), math.sqrt(max(n - 1, 1))) * lam**rounds


def _range_norm_factor(n: int, f: int) -> float:
    """``√(n-f-1)``: with ``h = n-b`` honest nodes, ``(2f/h)·||range(x)||_2 <= (2f/h)·√(h-1)·Δ2(x)``
    and ``√(h-1)/h`` decreases for ``h >= 2``, so ``h = n-f`` is the worst case
    (proofs/trimmed_mean.md, Lemma 3 and Theorem 5)."""
    return math.sqrt(max(n - f - 1, 1))


def tm_rounds(n: int, f: int, d: int, halvings: float) -> int:
    """Rounds for a ``2^-N`` ℓ2 contraction: ``T = ceil((N + ½·log2 min(d, n-1)) / log2(1/λ))``
    (from ``min(√d, √(n-1)) · λ^T <= 2^-N``; proofs/trimmed_mean.md, Corollary 4). The original
    spec's ``ceil((N + ½·log2 d) / log2(1/λ))`` is the same with ``√d`` alone (never fewer rounds).
    """
    lam = tm_contraction(n, f)
    if lam == 0:
        return 1
    scale = min(d, max(n - 1, 1))
    return max(1, math.ceil((halvings + 0.5 * math.log2(scale)) / math.log2(1 / lam)))


def tm_averaging_constant(n: int, f: int, d: int) -> float:
    """``C_TM <= (2f/(n-f)) · min(√d, √(n-f-1)) / (1 - λ)``, proven in
    ``proofs/trimmed_mean.md`` (Theorem 5), for any number of rounds.

    The original spec's claim was ``(2f/(n-f)) · min(√d, h/√2) / (1-λ)``: true (``√(h-1) <= h/√2``)
    but loose; the proof gives ``√(h-1)``. The per-round error ``(2f/(n-f))·range_c`` compounds
    against ranges shrinking by ``λ`` per round: a geometric series ``Σ_r λ^r <= 1/(1-λ)``.
    """
    lam = tm_contraction(n, f)
    return tm_error_factor(n, f) * min(math.sqrt(d), _range_norm_factor(n, f)) / (1 - lam)


# -- minimum-diameter averaging (docs/theory.md §5.3), n >= 3f+1 and κ(n,f) < 1 ------------------

def mda_contraction(n: int, f: int) -> float:
    """Per-round ℓ2 contraction of MDA under witness views: ``Δ2(y) <= κ · Δ2(x)`` with

        κ = max over integers e1, e2 >= 0, e1 + e2 <= f of
            (f + e1)/(n - 2f + e1) + (f + e2)/(n - 2f + e2)

    (the max is at the balanced split ``e1 = ceil(f/2)``, ``e2 = floor(f/2)``; for even f,
    ``κ = 3f/(n - 3f/2)``). Proven in ``proofs/mda.md``, Theorem 1; tight at n = 7, f = 1
    (κ = 8/15, reached by the search).

    Defined (and the protocol allowed) where ``n >= 3f+1`` and ``κ < 1``: from
    ``n = mda_min_n(f)`` (5 at f = 1, 10 at f = 2, 14 at f = 3); below it raises
    ``ValueError`` stating κ and that smallest n. The lemmas of ``proofs/mda.md`` need only
    ``n >= 3f+1``; ``κ < 1`` is what makes it a contraction and ``C_MDA`` finite. (The original
    spec's ``n >= 6f+1``, where ``κ <= 4f/(n-f) < 1``, is a sufficient condition only.)

    The original spec claimed ``4f/(n-2f)``: true but loose (``κ < 4f/(n-2f)`` for every f >= 1);
    its note "1-D worst case seen: 3f/(n-2f)" is refuted: 3f/(n-2f) > κ is never reached.
    """
    _check_kappa(n, f, "MDA agreement")
    return _kappa(n, f)


def mda_bias(n: int, f: int) -> float:
    """Per-round bias of MDA: ``||y_j - x̄|| <= (f/(n-2f) + 2f/(n-f)) · Δ2(x)`` for every honest
    output (hence for ``ȳ``). Proven in ``proofs/mda.md``, Theorem 2 (for every n >= 3f+1;
    given here in MDA's region κ(n,f) < 1); tight at n = 7, f = 1."""
    _check_kappa(n, f, "MDA agreement")
    return f / (n - 2 * f) + 2 * f / (n - f)


def mda_averaging_constant(n: int, f: int) -> float:
    """``C_MDA <= β / (1 - κ)`` with ``β = mda_bias``, ``κ = mda_contraction``: the per-round
    bias compounds against diameters shrinking by κ per round (a geometric series); proven
    in ``proofs/mda.md``, Theorem 3. About ``(3f/n)·1 / (1 - 3f/n)``: O(f/h).

    The original spec's ``(f/(n-2f) + 2f/(n-f)) · (n-2f)/(n-6f)`` is the same series with the looser
    ``4f/(n-2f)``: true, and larger than this constant. Finite exactly where κ < 1 (MDA's
    region, :func:`mda_min_n`).
    """
    _check_kappa(n, f, "MDA agreement")
    return mda_bias(n, f) / (1 - mda_contraction(n, f))


# -- ball MDA (docs/theory.md §5.3, "Ball MDA"), n >= 3f+1 and κ_ball(n,f) < 1 ------------------

@functools.lru_cache(maxsize=4096)
def _ball_kappa(n: int, f: int) -> float:
    """Ball MDA's proven contraction ``min(2κ, κ_B)`` without the resilience check (defined
    for n >= 3f+1; ``proofs/ball_mda.md``, Theorem 1):

        κ_B = max over integers t in [0, f], e1, e2 >= 0 with e1 + e2 <= f - t, b in [0, f]
              (c = n - f + t, p = c - 2f, A = 1 + b/p, w = (1 - b/p)/(c - f + min(e1, e2)))
              of  A·(f + e1)/(c - f + e1) + A·(f + e2)/(c - f + e2) + (f - b)·max(w, 0).
    """
    if f == 0:
        return 0.0
    two_kappa = 2 * _kappa(n, f)
    best = 0.0
    for t in range(f + 1):
        c = n - f + t
        p = c - 2 * f
        e = np.arange(f - t + 1, dtype=np.float64)
        e1, e2, b = np.meshgrid(e, e, np.arange(f + 1, dtype=np.float64), indexing="ij")
        ok = e1 + e2 <= f - t
        a = 1 + b / p
        w = (1 - b / p) / (c - f + np.minimum(e1, e2))
        v = (a * (f + e1) / (c - f + e1) + a * (f + e2) / (c - f + e2)
             + (f - b) * np.maximum(w, 0.0))
        best = max(best, float(v[ok].max()))
    return min(two_kappa, best)


def ball_mda_min_n(f: int) -> int:
    """The smallest ``n >= 3f+1`` with ``κ_ball(n, f) < 1`` (:func:`ball_mda_contraction`):
    1 at f = 0, 6 at f = 1, 12 at f = 2, 17 at f = 3, 23 at f = 4, about 5.7f (MDA's exact
    region starts at about 4.6f; the plain ``2κ < 1`` at about 7.5f). Every larger n is in
    the region for f <= 40 (checked by the tests; ``proofs/ball_mda.md``, "Resilience")."""
    if f < 0:
        raise ValueError(f"f must be >= 0, got {f}")
    n = 3 * f + 1
    # κ_ball >= its (t, e1, e2, b) = (0, 0, f, 0) term 2f/(n-2f) + 2f/(n-f): skip below it
    while f and 2 * f / (n - 2 * f) + 2 * f / (n - f) >= 1:
        n += 1
    while _ball_kappa(n, f) >= 1:
        n += 1
    return n


def _check_ball(n: int, f: int, what: str) -> None:
    """Ball MDA's resilience: ``n >= 3f+1`` and ``κ_ball(n, f) < 1``."""
    _check(n, f, 3, what)
    if _ball_kappa(n, f) >= 1:
        raise ValueError(
            f"{what} needs κ_ball(n,f) < 1 (proofs/ball_mda.md): κ_ball({n},{f}) = "
            f"{_ball_kappa(n, f):.4f}; the smallest n for f={f} is {ball_mda_min_n(f)}"
        )


def ball_mda_contraction(n: int, f: int) -> float:
    """Per-round ℓ2 contraction of ball MDA under witness views:
    ``Δ2(y) <= κ_ball(n,f)·Δ2(x)``, ``κ_ball = min(2κ, κ_B)`` with ``κ`` MDA's
    (:func:`mda_contraction`) and ``κ_B`` the finite maximum of ``proofs/ball_mda.md``,
    Theorem 1 (a Byzantine value of the chosen set counts ``2Δ2`` from the common part,
    an honest one ``Δ2`` plus ``Δ2`` per Byzantine value of the common part): 0.619 at
    n = 16, f = 2 (2κ = 0.923), 0.277 at n = 64, f = 4. Proven, not tight: the construction
    of ``proofs/ball_mda.md`` reaches ``(2f-1)/(n-2f) + 2f/(n-f)`` (0.536 at (16, 2), above
    MDA's κ = 0.462 there). Dimension-free: no ``d`` anywhere (norms and means only).

    Defined where ``n >= 3f+1`` and ``κ_ball < 1``: from ``ball_mda_min_n(f)`` (6, 12, 17 at
    f = 1, 2, 3); below it raises ``ValueError`` stating κ_ball and that smallest n."""
    _check_ball(n, f, "ball-MDA agreement")
    return _ball_kappa(n, f)


def ball_mda_bias(n: int, f: int) -> float:
    """Per-round bias of ball MDA: ``||y_j - x̄|| <= (2f/(n-2f) + 2f/(n-f))·Δ2(x)`` for every
    honest output (hence for ``ȳ``): MDA's Theorem 2 with ``2Δ2`` for each Byzantine value of
    the chosen set (``proofs/ball_mda.md``, Theorem 2). Proven; the construction there
    reaches ``(2f-1)/(n-2f) + 2f/(n-f)`` (0.865 of it at (16, 2)). Dimension-free."""
    _check_ball(n, f, "ball-MDA agreement")
    return 2 * f / (n - 2 * f) + 2 * f / (n - f)


def ball_mda_averaging_constant(n: int, f: int) -> float:
    """``C_ball <= β / (1 - κ_ball)`` with ``β = ball_mda_bias``, ``κ_ball =
    ball_mda_contraction``: the geometric series of ``proofs/mda.md`` Theorem 3
    (``proofs/ball_mda.md``, Theorem 3). Finite exactly where ``κ_ball < 1``; dimension-free
    (0.382 at n = 64, f = 4, for any d)."""
    _check_ball(n, f, "ball-MDA agreement")
    return ball_mda_bias(n, f) / (1 - ball_mda_contraction(n, f))


# -- minimum-volume-ellipsoid averaging (docs/theory.md §5.2), MDA's region κ(n,f) < 1 -----------

def mve_range_factor(n: int, f: int) -> float:
    """1-D only: ``γ = 1``: the chosen subset's range is at most ``Δ(x)`` and its output (the
    midpoint) within ``Δ(x)/2`` of each of its points. Exact closed form since commit de568b0:
    the MVEE of a rank-1 set is the segment ``[min, max]`` (``agreement.rules.mvee.khachiyan``,
    no iteration), so no solver tolerance enters (before, Khachiyan's ``tol = 1e-7`` gave
    ``γ = sqrt(1 + 2·tol) = 1 + 1e-7``, and it needed Khachiyan to converge; before b66de04 the
    rule weighed the range by the subset's spread and ``γ`` was ``(q/2)^((q-2)/(2(q-1)))``,
    1.55 at n = 7, f = 1).

    In 1-D the rule (agreement.rules.subsets.MVE, volumes compared in ``min(d, m-f-1) = 1``
    dimension) is exactly "the (m-f)-subset of least range, its midpoint": the honest
    (m-f)-subset is a candidate of range ``<= Δ(x)``. ``proofs/mve.md``, Lemma 2, under
    condition (N) (the honest range above an honest subset's own noise floor; Byzantine values
    no longer enter it since de568b0, and Lemma 2b shows it holds by itself except at ranges
    near float64's resolution of the values) and (U) (no underflow in the Gram matrix:
    Proposition 9).

    MVE's functions are given in MDA's region ``n >= 3f+1``, ``κ(n,f) < 1``
    (:func:`mda_min_n`): the one contraction proven for MVE is its mean variant's 1-D
    contraction, which is MDA's ``κ`` (:func:`mve_mean_contraction`), so MVE takes MDA's
    resilience condition (The original spec's ``n >= 6f+1`` is history).
    """
    _check_kappa(n, f, "MVE agreement")
    return 1.0


def mve_bias(n: int, f: int, d: int) -> float:
    """Per-round bias of MVE (ellipsoid centre) as implemented: ``||y_j - x̄|| <= B·Δ2(x)``.

    d = 1: ``B = 2f/(n-f) + γ/2 = 2f/(n-f) + 1/2`` (``γ = mve_range_factor(n, f) = 1``)
    (``proofs/mve.md``, Theorem 3, under (N) and (U), see :func:`mve_range_factor`). Tight:
    for any n the construction of Proposition 4 reaches ``1/2 + 2f/(n-f) - ε/2``, so MVE's
    averaging constant does not tend to 0 with f/n: the original spec's "asymptotically optimal" is
    refuted. (Proposition 8, a far Byzantine value lifting the view-wide noise floor at
    f >= 2, broke it before de568b0; Proposition 9, a value above 1.3e154 whose rescaling
    made the honest Gram entries underflow, broke (U) at f >= 2 before c2bdada: such values
    are now invalid, never in a view, so (U) holds for every view of the protocol.)
    d >= 2: ``inf``: no finite bound (Proposition 5: a Byzantine value on the line of nearly
    degenerate honest values makes a flat subset win however far it is; in exact arithmetic
    unbounded, as implemented bounded only through the rounding threshold; measured ratios
    about 630 at d = 2 and 250 at d = 10 with n = 7, f = 1).
    """
    _check_kappa(n, f, "MVE agreement")
    if d < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    if d == 1:
        return 2 * f / (n - f) + mve_range_factor(n, f) / 2
    return math.inf


def mve_contraction(n: int, f: int, d: int) -> float:
    """Per-round ℓ2 contraction bound of MVE as implemented: ``γ = 1`` in 1-D (no
    contraction; ``proofs/mve.md`` Theorem 3 (under (N), (U)) and Proposition 6: at n = 7,
    f = 1 an adversary keeps the honest diameter from shrinking, so the bound 1 is the
    supremum and MVE is not an averaging agreement there), ``inf`` for d >= 2."""
    _check_kappa(n, f, "MVE agreement")
    return mve_range_factor(n, f) if d == 1 else math.inf


def mve_mean_contraction(n: int, f: int, d: int) -> float:
    """MVE with ``center="mean"`` (docs/theory.md §5.2's option), 1-D: ``Δ(y) <= γ·κ(n,f)·Δ(x)``
    with ``γ = mve_range_factor = 1``, ``κ = mda_contraction``: in 1-D the mean variant is MDA
    (the least-range subset, its mean), so this is MDA's constant; ``inf`` for d >= 2 (the
    flat subset of ``proofs/mve.md`` Proposition 5 breaks it). ``proofs/mve.md``, Theorem 7
    (under (N), (U))."""
    _check_kappa(n, f, "MVE agreement")
    return mve_range_factor(n, f) * mda_contraction(n, f) if d == 1 else math.inf


def mve_mean_bias(n: int, f: int, d: int) -> float:
    """MVE with ``center="mean"``, 1-D: ``|y_j - x̄| <= (γ·f/(n-2f) + 2f/(n-f))·Δ(x)`` with
    ``γ = 1``: MDA's ``β``; ``inf`` for d >= 2. ``proofs/mve.md``, Theorem 7."""
    _check_kappa(n, f, "MVE agreement")
    if d != 1:
        return math.inf
    return mve_range_factor(n, f) * f / (n - 2 * f) + 2 * f / (n - f)


def mve_mean_averaging_constant(n: int, f: int, d: int) -> float:
    """MVE with ``center="mean"``, 1-D: ``C = bias/(1 - γκ)`` when ``γκ < 1`` (everywhere in
    MVE's region ``κ(n,f) < 1``, since ``γ = 1``): MDA's ``C_MDA``, 1.143 at n = 7,
    f = 1 and 1.465 at n = 13, f = 2; ``inf`` for d >= 2. ``proofs/mve.md``, Theorem 7."""
    k = mve_mean_contraction(n, f, d)
    return mve_mean_bias(n, f, d) / (1 - k) if k < 1 else math.inf


def mve_averaging_constant(n: int, f: int, d: int) -> float:
    """The averaging constant proven for MVE (ellipsoid centre): ``inf`` (none). No per-round
    contraction below 1 holds (``mve_contraction``; Proposition 6), so per-round biases need
    not sum; see ``proofs/mve.md`` for the counterexamples and the gap to the lower bound
    ``f/(n-f)``. (The ``center="mean"`` variant has one in 1-D:
    ``mve_mean_averaging_constant``.)"""
    _check_kappa(n, f, "MVE agreement")
    return math.inf


# -- round counts for a target -----------------------------------------------------------------

def rounds_for_target(
    protocol: str, n: int, f: int, d: int, delta: float, input_diameter: float
) -> int:
    """Rounds after which the protocol's proven contraction guarantees ``Δ2(y) <= delta``,
    given ``Δ2(x) <= input_diameter``.

    trimmed-mean: ``min(√d, √(n-1)) · λ^T · D <= δ`` (proofs/trimmed_mean.md, Corollary 4);
    mda: ``κ^T · D <= δ`` (``mda_contraction``); ball-mda: ``κ_ball^T · D <= δ``
    (``ball_mda_contraction``). Other protocols (MVE included:
    ``proofs/mve.md``) have no proven contraction and raise ``NotImplementedError``.
    """
    if delta <= 0 or input_diameter < 0:
        raise ValueError("need delta > 0 and input_diameter >= 0")
    if input_diameter <= delta:
        return 1
    ratio = delta / input_diameter
    if protocol == "trimmed-mean":
        lam, scale = tm_contraction(n, f), min(math.sqrt(d), math.sqrt(max(n - 1, 1)))
    elif protocol == "mda":
        lam, scale = mda_contraction(n, f), 1.0
    elif protocol == "ball-mda":
        lam, scale = ball_mda_contraction(n, f), 1.0
    else:
        raise NotImplementedError(
            f"no proven contraction for {protocol!r}: give a fixed number of rounds"
        )
    if lam == 0:
        return 1
    # the least T >= 1 with scale·λ^T <= ratio; the logarithms give it up to rounding, so the
    # candidate is moved to the exact boundary of the condition as evaluated
    t = max(1, math.ceil(math.log(ratio / scale) / math.log(lam)))
    while t > 1 and scale * lam ** (t - 1) <= ratio:
        t -= 1
    while scale * lam**t > ratio:
        t += 1
    return t


def contraction(protocol: str, n: int, f: int, d: int) -> float | None:
    """The protocol's per-round ℓ2 contraction bound, or ``None`` when none is proven (MVE:
    none below 1 exists, see :func:`mve_contraction`).

    For trimmed-mean the proven per-round statement is per coordinate (``λ`` on every
    coordinate's range); its ℓ2 consequence over one round is ``min(√d, √(n-1)) · λ``
    (:func:`tm_l2_contraction`), loose when d is large, so tests check the per-coordinate
    form.
    """
    if protocol == "trimmed-mean":
        return tm_contraction(n, f)
    if protocol == "mda":
        return mda_contraction(n, f)
    if protocol == "ball-mda":
        return ball_mda_contraction(n, f)
    return None


def averaging_constant(protocol: str, n: int, f: int, d: int) -> float | None:
    """The protocol's averaging constant ``C`` (``||ȳ - x̄|| <= C·Δ2(x)``), or ``None`` when
    none is proven (MVE: :func:`mve_averaging_constant`)."""
    if protocol == "trimmed-mean":
        return tm_averaging_constant(n, f, d)
    if protocol == "mda":
        return mda_averaging_constant(n, f)
    if protocol == "ball-mda":
        return ball_mda_averaging_constant(n, f)
    return None


# -- resilience: where the proven contraction is below 1 ---------------------------------------

PROVEN_CONTRACTION = ("trimmed-mean", "mda", "mve", "ball-mda")
"""The protocols whose resilience comes from a proven per-round contraction."""


def resilience_factor(protocol: str, n: int, f: int) -> float | None:
    """The proven per-round contraction whose being below 1 is ``protocol``'s resilience, at
    ``n >= 3f+1`` (``None`` for a protocol without one: median, krum, mean, any other name).

    trimmed-mean: ``λ = f/(n-2f)`` (per coordinate, proofs/trimmed_mean.md Theorem 1);
    mda: ``κ(n,f)`` (proofs/mda.md Theorem 1); mve: ``κ(n,f)`` as well: MVE's ellipsoid centre
    has no contraction (proofs/mve.md Proposition 6), and its only proven one is the mean
    variant's 1-D contraction, MDA's κ (proofs/mve.md Theorem 7), so MVE gets MDA's region;
    ball-mda: ``κ_ball(n,f)`` (proofs/ball_mda.md Theorem 1).
    """
    _check(n, f, 3, f"the {protocol} protocol")
    if protocol == "trimmed-mean":
        return f / (n - 2 * f)
    if protocol in ("mda", "mve"):
        return _kappa(n, f)
    if protocol == "ball-mda":
        return _ball_kappa(n, f)
    return None


def resilient(protocol: str, n: int, f: int) -> bool:
    """The one resilience rule: ``n >= 3f+1`` (the witness gather) and, for a protocol with a
    proven contraction, that contraction below 1 (:func:`resilience_factor`). A protocol
    without one is a baseline that claims nothing and runs wherever the witness gather runs
    (its rule's own view-size need is checked by ``agreement.protocol.check_resilience``)."""
    if n < 1 or f < 0 or n < 3 * f + 1:
        return False
    k = resilience_factor(protocol, n, f)
    return k is None or k < 1


def min_n(protocol: str, f: int) -> int:
    """The smallest n at which :func:`resilient` holds: ``3f+1`` for trimmed-mean (λ < 1 iff
    n >= 3f+1) and for the protocols without a proven contraction; :func:`mda_min_n` for mda
    and mve; :func:`ball_mda_min_n` for ball-mda. The region is upward closed (λ and κ
    decrease in n)."""
    if f < 0:
        raise ValueError(f"f must be >= 0, got {f}")
    if protocol in ("mda", "mve"):
        return mda_min_n(f)
    if protocol == "ball-mda":
        return ball_mda_min_n(f)
    return 3 * f + 1


def resilience_table(f_max: int = 10) -> list[dict[str, float]]:
    """MDA's smallest n per f (f = 1..f_max) with κ and C_MDA there (proofs/mda.md,
    "Resilience"): ``python -c "from agreement.constants import *; print_resilience_table()"``.
    """
    rows = []
    for f in range(1, f_max + 1):
        n = mda_min_n(f)
        rows.append({"f": f, "n": n, "n/f": n / f, "kappa_below": _kappa(n - 1, f),
                     "kappa": mda_contraction(n, f), "C_MDA": mda_averaging_constant(n, f)})
    return rows


def print_resilience_table(f_max: int = 10) -> None:
    """Print :func:`resilience_table` as a Markdown table."""
    print("| f | smallest n | n/f | κ(n-1, f) | κ(n, f) | C_MDA(n, f) |")
    print("|---|---|---|---|---|---|")
    for r in resilience_table(f_max):
        print(f"| {r['f']} | {r['n']} | {r['n/f']:.2f} | {r['kappa_below']:.4f} | "
              f"{r['kappa']:.4f} | {r['C_MDA']:.3f} |")
