"""The claims table: every proven bound of the protocols, once, and one evaluator.

One :class:`Claim` per proven statement (its protocol and rule parameters, the statement, the
proof in ``proofs/*.md``, the bound as a function of ``(n, f, d)`` from
:mod:`agreement.constants`, what is measured, and the ``(n, f, d)`` configurations that
``python -m proofs verify`` searches). Everything that checks a bound reads this table:
``proofs.check`` / ``proofs.assert_bounds`` (this module's :func:`evaluate`), the CLI's
"within bound" fields (``agreement.cli``), the project's tests, and ``proofs.verify`` (whose
rows are the claims with configurations).

What is measured (``Claim.measure``; on a run: honest vectors ``x^r`` after round ``r``, ``x̄^r``
their mean, every round ``r < T``; in a search: one round, see ``proofs/search.py``):

- ``coord-contraction``: ``range_c(x^{r+1}) <= B·range_c(x^r)`` for every coordinate ``c``;
- ``coord-error``: ``|x^{r+1}_{j,c} - x̄^r_c| <= B·range_c(x^r)`` for every node ``j``, ``c``;
- ``coord-validity``: ``x^{r+1}_{j,c}`` within ``[min_j x^r_{j,c}, max_j x^r_{j,c}]``
  (``B = 0``: the excess over the honest box, relative to the range);
- ``l2-contraction``: ``Δ2(x^{r+1}) <= B·Δ2(x^r)``;
- ``bias``: ``||x^{r+1}_j - x̄^r|| <= B·Δ2(x^r)`` for every node ``j``;
- ``averaging``: ``||x̄^T - x̄^0|| <= B·Δ2(x^0)`` (the whole run);
- ``box-excess``: ``x^{r+1}_{j,c}`` within ``[min_j x^r_{j,c} - B·Δ2(x^r), max_j x^r_{j,c} +
  B·Δ2(x^r)]`` (the excess over the honest box, relative to the ℓ2 diameter).

One tolerance rule (:func:`within`): a measured ``a`` against ``B·b`` holds iff
``a <= B·b·(1 + 1e-9) + 64·eps·M``, with ``eps`` the machine epsilon of the run's dtype and
``M`` the largest magnitude among the values involved: a few ulps of the dtype at the
values' scale (the rules' own rounding: a mean of ``m <= 64`` values is exact to ``m·eps·M``)
plus a relative ``1e-9`` on the bound. This was ``proofs.check``'s rule; the CLI's absolute
``1e-9`` on ratios and the tests' ``1e-9·max(1, M)`` were looser at small scales and
stricter in float32. The searches (``proofs.search``) measure ``max(a - 64·eps·M, 0) / b``
and compare it with ``B·(1 + 1e-9)``: the same rule.

Verdicts (:data:`Status`): ``holds``, ``violated``, ``no-claim`` (the protocol has no proven
bound: median, krum, mean; MVE's ellipsoid centre in ``d >= 2``; a run below the
protocol's resilience, where the constants raise ``ValueError``; or a run with another
gather than the protocol's, e.g. first-quorum: the proofs assume witness views), and, for
searches only, ``search-too-short`` (the search reached less than 0.9 of the best known
construction).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from . import constants as K
from .protocol import get_config

Status = Literal["holds", "violated", "no-claim", "search-too-short"]
HOLDS: Status = "holds"
VIOLATED: Status = "violated"
NO_CLAIM: Status = "no-claim"
SEARCH_TOO_SHORT: Status = "search-too-short"
STATUSES: tuple[Status, ...] = (HOLDS, VIOLATED, NO_CLAIM, SEARCH_TOO_SHORT)

MEASURES = ("coord-contraction", "coord-error", "coord-validity", "l2-contraction", "bias",
            "averaging", "box-excess")
REL_TOL = 1e-9   # relative slack on the bound
ULPS = 64        # absolute slack: ULPS·eps(dtype)·(largest magnitude involved)
TOO_SHORT = 0.9  # a search below this fraction of the best known construction is too short


def slack(values: Any) -> float:
    """The absolute rounding slack of :func:`within`: ``64·eps(dtype)·max|values|``."""
    a = np.asarray(values)
    eps = float(np.finfo(a.dtype).eps) if a.dtype.kind == "f" else float(np.finfo(float).eps)
    if a.size == 0:
        return 0.0
    m = float(np.abs(a.astype(np.float64)).max())
    return ULPS * eps * m if math.isfinite(m) else math.inf


def within(measured: Any, bound: float, base: Any, tol: float) -> Any:
    """The one tolerance rule: ``measured <= bound·base·(1 + 1e-9) + tol`` (elementwise)."""
    return measured <= bound * base * (1 + REL_TOL) + tol


def ratio(num: Any, den: Any, tol: float) -> Any:
    """``num / den``, 0 where both are within ``tol`` of 0 and ``inf`` where only ``den`` is."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > tol, num / np.where(den > tol, den, 1.0),
                        np.where(num > tol, np.inf, 0.0))


@dataclass(frozen=True)
class Verdict:
    """One claim on one run (or one search row): the worst measured ratio, the bound, where it
    was worst, and the :data:`Status`. ``holds`` is ``status == "holds"``."""

    claim: str
    bound: float
    measured: float
    status: Status
    where: str = ""

    @property
    def holds(self) -> bool:
        return self.status == HOLDS

    def __str__(self) -> str:
        if self.status == NO_CLAIM:
            return f"{self.claim}: no claim ({self.where})"
        v = "VIOLATED" if self.status == VIOLATED else self.status
        return (f"{self.claim}: measured {self.measured:.6g} vs bound {self.bound:.6g} "
                f"({v}{', ' + self.where if self.where else ''})")


@dataclass(frozen=True)
class Claim:
    """A proven bound: ``measure <= bound(n, f, d)`` (see the module doc) for ``protocol``
    run with ``rule_params``; ``configs`` are the ``(n, f, d)`` that ``proofs.verify``
    searches (none: checked on runs only). ``role`` marks the claim that the CLI reports as
    the protocol's contraction or averaging bound."""

    name: str
    protocol: str
    measure: str
    bound: Callable[[int, int, int], float]
    statement: str
    proof: str
    configs: tuple[tuple[int, int, int], ...] = ()
    rule_params: tuple[tuple[str, Any], ...] = ()
    role: Literal["contraction", "averaging"] | None = None
    search_factor: int = 1
    """``proofs.verify`` searches this claim's rows with ``search_factor`` times its budget (a
    claim whose known worst round the default search does not reach, e.g. ball-MDA's bias)."""

    @property
    def rule(self) -> str:
        """The rule the protocol applies (``agreement.protocol.get_config``: a named or a
        composed protocol)."""
        return get_config(self.protocol).rule

    @property
    def objective(self) -> str:
        """The objective of ``proofs.search`` for this claim (the same name as the measure)."""
        return self.measure

    def bound_at(self, n: int, f: int, d: int) -> tuple[float | None, str]:
        """``(bound, "")``, or ``(None, why)`` when nothing is claimed at ``(n, f, d)``: below
        the resilience (the constants raise ``ValueError``) or no finite bound."""
        try:
            b = float(self.bound(n, f, d))
        except ValueError as e:
            return None, str(e)
        if not math.isfinite(b):
            return None, f"no finite bound for {self.protocol} at d={d} ({self.proof})"
        return b, ""


def _validity(n: int, f: int) -> float:
    """Validity of the trimmed mean: excess 0 over the honest box, for ``n >= 3f+1``."""
    K.tm_contraction(n, f)  # the resilience check (raises ValueError below n >= 3f+1)
    return 0.0


TM_CONFIGS = ((4, 1, 1), (7, 2, 1), (10, 3, 1), (7, 1, 3))
MDA_CONFIGS = ((7, 1, 1), (7, 1, 3), (13, 2, 1), (13, 2, 4))

CLAIMS: tuple[Claim, ...] = (
    Claim("tm-contraction", "trimmed-mean", "coord-contraction",
          lambda n, f, d: K.tm_contraction(n, f),
          "range_c(y) <= f/(n-2f) · range_c(x) for every coordinate c",
          "trimmed_mean.md#theorem-1", TM_CONFIGS, role="contraction"),
    Claim("tm-error", "trimmed-mean", "coord-error",
          lambda n, f, d: K.tm_error_factor(n, f),
          "|y_j,c - x̄_c| <= 2f/(n-f) · range_c(x)",
          "trimmed_mean.md#theorem-2", TM_CONFIGS),
    Claim("tm-validity", "trimmed-mean", "coord-validity", lambda n, f, d: _validity(n, f),
          "y_j,c in [min_j x_j,c, max_j x_j,c] (the output stays in the honest box)",
          "trimmed_mean.md#lemma-0-clipping"),
    Claim("tm-l2-contraction", "trimmed-mean", "l2-contraction",
          lambda n, f, d: K.tm_l2_contraction(n, f, d, 1),
          "Δ2(y) <= min(√d, √(n-1)) · f/(n-2f) · Δ2(x)",
          "trimmed_mean.md#corollary-4", ((4, 1, 2), (7, 2, 3), (10, 2, 8))),
    Claim("tm-averaging", "trimmed-mean", "averaging",
          lambda n, f, d: K.tm_averaging_constant(n, f, d),
          "||x̄^T - x̄^0|| <= C_TM · Δ2(x^0), C_TM = 2f/(n-f)·min(√d, √(n-f-1))/(1-λ)",
          "trimmed_mean.md#theorem-5", role="averaging"),
    Claim("mda-contraction", "mda", "l2-contraction",
          lambda n, f, d: K.mda_contraction(n, f),
          "Δ2(y) <= κ(n, f) · Δ2(x) (κ = 8/15 at n=7, f=1; 0.6 at n=13, f=2)",
          "mda.md#theorem-1", MDA_CONFIGS, role="contraction"),
    Claim("mda-bias", "mda", "bias",
          lambda n, f, d: K.mda_bias(n, f),
          "||y_j - x̄|| <= (f/(n-2f) + 2f/(n-f)) · Δ2(x)",
          "mda.md#theorem-2", MDA_CONFIGS),
    Claim("mda-averaging", "mda", "averaging",
          lambda n, f, d: K.mda_averaging_constant(n, f),
          "||x̄^T - x̄^0|| <= C_MDA · Δ2(x^0), C_MDA = β/(1-κ)",
          "mda.md#theorem-3", role="averaging"),
    Claim("mve-bias", "mve", "bias",
          lambda n, f, d: K.mve_bias(n, f, d),
          "||y_j - x̄|| <= (2f/(n-f) + 1/2) · Δ2(x) in 1-D (the least-range midpoint); no "
          "finite bound for d >= 2",
          "mve.md#theorem-3", ((7, 1, 1), (7, 1, 2), (7, 1, 6))),
    Claim("mve-contraction", "mve", "l2-contraction",
          lambda n, f, d: K.mve_contraction(n, f, d),
          "Δ2(y) <= Δ2(x) in 1-D (no contraction); no finite bound for d >= 2",
          "mve.md#theorem-3", ((7, 1, 1), (7, 1, 2))),
    Claim("mve-mean-contraction", "mve", "l2-contraction",
          lambda n, f, d: K.mve_mean_contraction(n, f, d),
          "center='mean', 1-D: Δ(y) <= κ(n,f)·Δ(x) (MDA's κ: in 1-D the rule is MDA)",
          "mve.md#theorem-7", ((7, 1, 1), (13, 2, 1)), (("center", "mean"),)),
    Claim("mve-mean-bias", "mve", "bias",
          lambda n, f, d: K.mve_mean_bias(n, f, d),
          "center='mean', 1-D: |y_j - x̄| <= (f/(n-2f) + 2f/(n-f))·Δ(x) (MDA's β)",
          "mve.md#theorem-7", ((7, 1, 1), (13, 2, 1)), (("center", "mean"),)),
    Claim("mve-mean-averaging", "mve", "averaging",
          lambda n, f, d: K.mve_mean_averaging_constant(n, f, d),
          "center='mean', 1-D: ||x̄^T - x̄^0|| <= C_MDA · Δ2(x^0)",
          "mve.md#theorem-7", (), (("center", "mean"),), role="averaging"),
)

# -- the pre-aggregated protocols (docs/theory.md §5.5, proofs/nnm.md) -------------------------
#
# Proven: NNM then the trimmed mean keeps every honest output within f/(n-2f)·Δ2(x) of the
# honest inputs' per-coordinate box (proofs/nnm.md, Proposition 1; checked on runs). Nothing is
# proven about their contraction or bias: those are MEASURED_CLAIMS, without a bound, kept out
# of CLAIMS (every run and search row about them is ``no-claim``); ``python -m proofs verify``
# searches them after the proven rows and reports the worst round it finds, recorded in
# MEASURED below.


def _nnm_box(n: int, f: int) -> float:
    """NNM + TM: the excess over the honest box per unit of ``Δ2(x)``, ``f/(n-2f)``."""
    K.tm_contraction(n, f)  # the resilience check (raises ValueError below n >= 3f+1)
    return f / (n - 2 * f)


CLAIMS += (
    Claim("nnm-box", "nnm", "box-excess", lambda n, f, d: _nnm_box(n, f),
          "y_j,c in [min_j x_j,c - f/(n-2f)·Δ2(x), max_j x_j,c + f/(n-2f)·Δ2(x)]",
          "nnm.md#proposition-1"),
)

# -- ball MDA (docs/theory.md §5.3, "Ball MDA"; proofs/ball_mda.md): proven, dimension-free ----

BALL_MDA_CONFIGS = ((6, 1, 1), (12, 2, 1), (12, 2, 3), (16, 2, 4))

CLAIMS += (
    Claim("ball-mda-contraction", "ball-mda", "l2-contraction",
          lambda n, f, d: K.ball_mda_contraction(n, f),
          "Δ2(y) <= κ_ball(n, f) · Δ2(x) (κ_ball = min(2κ, κ_B): 0.9 at n=12, f=2; "
          "0.619 at n=16, f=2), dimension-free",
          "ball_mda.md#theorem-1", BALL_MDA_CONFIGS, role="contraction", search_factor=10),
    Claim("ball-mda-bias", "ball-mda", "bias",
          lambda n, f, d: K.ball_mda_bias(n, f),
          "||y_j - x̄|| <= (2f/(n-2f) + 2f/(n-f)) · Δ2(x), dimension-free",
          "ball_mda.md#theorem-2", BALL_MDA_CONFIGS, search_factor=10),
    Claim("ball-mda-averaging", "ball-mda", "averaging",
          lambda n, f, d: K.ball_mda_averaging_constant(n, f),
          "||x̄^T - x̄^0|| <= C · Δ2(x^0), C = β/(1-κ_ball), dimension-free",
          "ball_mda.md#theorem-3", role="averaging"),
)

PREAGG_CONFIGS = ((7, 1, 1), (7, 1, 3), (10, 3, 1), (10, 3, 2))
MEASURED_TEXT = "measured, not proven"


def _measured(protocol: str) -> Callable[[int, int, int], float]:
    def bound(n: int, f: int, d: int) -> float:
        raise ValueError(f"{MEASURED_TEXT}: no proven bound for {protocol} "
                         "(docs/theory.md §5.5; python -m proofs verify reports the worst "
                         "round found)")
    return bound


MEASURED_CLAIMS: tuple[Claim, ...] = tuple(
    Claim(f"{p}-{what}", p, measure, _measured(p),
          f"{MEASURED_TEXT}: {text} (worst round found by python -m proofs verify)",
          "nnm.md#what-is-measured", PREAGG_CONFIGS, role=role)
    for p in ("nnm", "arc+nnm+trimmed-mean")
    for what, measure, text, role in (
        ("contraction", "l2-contraction", "Δ2(y) / Δ2(x)", "contraction"),
        ("bias", "bias", "max_j ||y_j - x̄|| / Δ2(x)", None),
    )
)
"""Claims without a proven bound, only measured (``bound_at`` is ``None``)."""

MEASURED: dict[tuple[str, int, int, int], float] = {
    ('nnm-contraction', 7, 1, 1): 0.2666553301275079,
    ('nnm-contraction', 7, 1, 3): 0.26663494552192585,
    ('nnm-contraction', 10, 3, 1): 1.3917750074903485,
    ('nnm-contraction', 10, 3, 2): 1.3300646803723717,
    ('nnm-bias', 7, 1, 1): 0.533211120245392,
    ('nnm-bias', 7, 1, 3): 0.5333145258027084,
    ('nnm-bias', 10, 3, 1): 1.606500124880692,
    ('nnm-bias', 10, 3, 2): 1.479061496359228,
    ('arc+nnm+trimmed-mean-contraction', 7, 1, 1): 0.26666666666665245,
    ('arc+nnm+trimmed-mean-contraction', 7, 1, 3): 0.3282449035929902,
    ('arc+nnm+trimmed-mean-contraction', 10, 3, 1): 0.9999999999999858,
    ('arc+nnm+trimmed-mean-contraction', 10, 3, 2): 1.2551711620438757,
    ('arc+nnm+trimmed-mean-bias', 7, 1, 1): 0.5333333333333191,
    ('arc+nnm+trimmed-mean-bias', 7, 1, 3): 0.5323765194976042,
    ('arc+nnm+trimmed-mean-bias', 10, 3, 1): 1.16134760214428,
    ('arc+nnm+trimmed-mean-bias', 10, 3, 2): 1.5060719999604006,
}
"""``(claim, n, f, d) -> worst ratio`` found by ``python -m proofs verify`` (default budget,
6000 evaluations a row, seed 0: the measured rows are seeded 1000 + their position,
``proofs.verify.jobs``) for the claims without a proven bound: measured, not proven.
A worst round *found*, so a lower bound on the true worst case, never an upper bound; a ratio
above 1 (n = 3f+1) is a round that spreads the honest values (no contraction)."""

BY_NAME: dict[str, Claim] = {c.name: c for c in CLAIMS}
MEASURED_BY_NAME: dict[str, Claim] = {c.name: c for c in MEASURED_CLAIMS}
PROTOCOLS: tuple[str, ...] = tuple(dict.fromkeys(c.protocol for c in CLAIMS))


def claims_for(protocol: str, rule_params: dict[str, Any] | None = None) -> list[Claim]:
    """The claims of ``protocol`` run with exactly these rule parameters (``{}``: defaults)."""
    params = tuple(sorted((rule_params or {}).items()))
    return [c for c in CLAIMS if c.protocol == protocol and tuple(sorted(c.rule_params)) == params]


def judge(measured: float, bound: float | None, best_known: float | None = None) -> Status:
    """The verdict of a search row: ``violated`` when ``measured`` exceeds the bound (the
    tolerance of :func:`within` on a ratio already net of rounding slack), otherwise
    ``search-too-short`` when below 0.9 of the best known construction, otherwise ``holds``
    (``no-claim`` when ``bound`` is ``None``)."""
    if bound is not None and not bool(within(measured, bound, 1.0, 0.0)):
        return VIOLATED
    if best_known is not None and math.isfinite(best_known) and best_known > 0 \
            and not measured >= TOO_SHORT * best_known:
        return SEARCH_TOO_SHORT
    return HOLDS if bound is not None else NO_CLAIM


# -- evaluation on a run --------------------------------------------------------------------------

def _worst(name: str, bound: float, num: np.ndarray, den: np.ndarray, tol: float,
           where: Callable[[tuple[int, ...]], str]) -> Verdict:
    if num.size == 0:
        return Verdict(name, bound, 0.0, HOLDS, "no round")
    ok = bool(np.all(within(num, bound, den, tol)))
    q = ratio(num, den, tol)
    idx = np.unravel_index(int(np.argmax(q)), q.shape)
    return Verdict(name, bound, float(q[idx]), HOLDS if ok else VIOLATED, where(idx))


def measure_run(claim: Claim, bound: float, history: Any, diameters: Any = None,
                averaging_error: float | None = None) -> Verdict:
    """Evaluate ``claim`` (its bound ``bound`` already at the run's ``(n, f, d)``) on the
    honest history ``(T+1, h, d)`` of a run."""
    raw = np.asarray(history)
    tol = slack(raw)
    H = raw.astype(np.float64)
    T = H.shape[0] - 1
    means = H.mean(axis=1)
    lo, hi = H.min(axis=1), H.max(axis=1)
    rng = hi - lo
    diam = (np.asarray(diameters, dtype=np.float64) if diameters is not None
            else np.array([_diam(h) for h in H]))

    def rc(i: tuple[int, ...]) -> str:
        return f"round {i[0]}, coordinate {i[1]}"

    def rnd(i: tuple[int, ...]) -> str:
        return f"round {i[0]}"

    m = claim.measure
    if m == "coord-contraction":
        return _worst(claim.name, bound, rng[1:], rng[:-1], tol, rc)
    if m == "coord-error":
        dev = np.abs(H[1:] - means[:-1, None, :]).max(axis=1) if T else np.zeros((0, 1))
        return _worst(claim.name, bound, dev, rng[:-1], tol, rc)
    if m == "coord-validity":
        exc = np.maximum(np.maximum(H[1:].max(axis=1) - hi[:-1], lo[:-1] - H[1:].min(axis=1)),
                         0.0) if T else np.zeros((0, 1))
        return _worst(claim.name, bound, exc, rng[:-1], tol, rc)
    if m == "l2-contraction":
        return _worst(claim.name, bound, diam[1:], diam[:-1], tol, rnd)
    if m == "box-excess":
        exc = np.maximum(np.maximum(H[1:].max(axis=1) - hi[:-1], lo[:-1] - H[1:].min(axis=1)),
                         0.0) if T else np.zeros((0, 1))
        return _worst(claim.name, bound, exc, np.broadcast_to(diam[:-1, None], exc.shape), tol,
                      rc)
    if m == "bias":
        dev = (np.linalg.norm(H[1:] - means[:-1, None, :], axis=2).max(axis=1) if T
               else np.zeros(0))
        return _worst(claim.name, bound, dev, diam[:-1], tol, rnd)
    if m == "averaging":
        err = (float(np.linalg.norm(means[-1] - means[0])) if averaging_error is None
               else float(averaging_error))
        return _worst(claim.name, bound, np.array([err]), diam[:1], tol, lambda i: "inputs")
    raise ValueError(f"unknown measure {m!r}; known: {', '.join(MEASURES)}")


def _diam(x: np.ndarray) -> float:
    diff = x[:, None, :] - x[None, :, :]
    return float(np.sqrt((diff**2).sum(-1)).max()) if len(x) else 0.0


def no_claim(protocol: str, why: str) -> dict[str, Verdict]:
    """The one ``no-claim`` verdict of a run about which nothing is claimed."""
    return {NO_CLAIM: Verdict(NO_CLAIM, math.nan, math.nan, NO_CLAIM, f"{protocol}: {why}")}


def evaluate(result: Any) -> dict[str, Verdict]:
    """The verdict of every claim of the table on a run (an :class:`agreement.AgreementResult`
    or anything with ``protocol, n, f, d, history``, optionally ``diameters``,
    ``averaging_error`` and ``rule_params``). Never empty: a run about which nothing is claimed
    (a protocol without a proven bound, a run below its resilience, MVE's ellipsoid centre in
    ``d >= 2``) gets one ``no-claim`` verdict saying why."""
    proto, n, f, d = result.protocol, result.n, result.f, result.d
    params = getattr(result, "rule_params", None) or {}
    claims = claims_for(proto, params)
    try:
        cfg = get_config(proto)
    except ValueError:
        cfg = None
    if not claims:
        why = cfg.guarantee if cfg is not None else "not a named protocol"
        return no_claim(proto, f"no proven bound ({why})")
    gather = getattr(result, "gather", None)
    if cfg is not None and gather is not None and gather != cfg.gather:
        return no_claim(proto, f"the bounds are proven for the {cfg.gather} gather, the run "
                               f"used {gather}")
    out: dict[str, Verdict] = {}
    reasons: list[str] = []
    for c in claims:
        b, why = c.bound_at(n, f, d)
        if b is None:
            reasons.append(why)
            continue
        out[c.name] = measure_run(c, b, result.history, getattr(result, "diameters", None),
                                  getattr(result, "averaging_error", None))
    if not out:
        return no_claim(proto, "; ".join(dict.fromkeys(reasons)))
    return out


def role_status(verdicts: dict[str, Verdict], role: str) -> bool | None:
    """For the CLI: ``True``/``False`` when the claims of this ``role`` (contraction or
    averaging) hold / one is violated, ``None`` when none is evaluated (no claim)."""
    mine = [v for k, v in verdicts.items() if k in BY_NAME and BY_NAME[k].role == role]
    if not mine:
        return None
    return all(v.status == HOLDS for v in mine)


__all__ = [
    "BY_NAME", "CLAIMS", "HOLDS", "MEASURED", "MEASURED_BY_NAME", "MEASURED_CLAIMS",
    "MEASURED_TEXT", "MEASURES", "NO_CLAIM",
    "PROTOCOLS", "REL_TOL",
    "SEARCH_TOO_SHORT", "STATUSES", "TOO_SHORT", "ULPS", "VIOLATED", "Claim", "Status",
    "Verdict", "claims_for", "evaluate", "judge", "measure_run", "no_claim", "ratio",
    "role_status", "slack", "within",
]
