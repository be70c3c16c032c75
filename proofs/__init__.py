"""proofs: the constants of THEORY.md as code, their proofs in writing, and machine checks.

- :mod:`proofs.constants`: the bounds (a re-export of :mod:`agreement.constants`, the one
  source of truth), each docstring naming its proof in ``proofs/*.md`` (index: ``README.md``);
- :mod:`proofs.search`: worst-case search of one round under witness views;
- :mod:`proofs.verify`: one row per (claim, n, f, d): bound, worst found, tightness;
  ``python -m proofs verify [--json] [--budget S] [--protocol P]``;
- :mod:`proofs.lower_bound`: the two-world scenario of the bound ``C >= f/(n-f)`` in the
  simulator; :mod:`proofs.mve`: the MVE counterexamples;
- :func:`check` / :func:`assert_bounds`: an :class:`agreement.AgreementResult` against the
  proven bounds, for users' tests.

Claims checked on a run (every round ``r``, honest vectors ``x^r``, ``x^0`` the inputs), when
the run is within the protocol's resilience (``n >= 3f+1`` for trimmed-mean, ``6f+1`` for mda):

- trimmed-mean: ``range_c(x^{r+1}) <= λ·range_c(x^r)`` (``tm-contraction``),
  ``|x̄^{r+1}_c - x̄^r_c| <= 2f/(n-f)·range_c(x^r)`` (``tm-error``), and
  ``||x̄^T - x̄^0|| <= C_TM·Δ2(x^0)`` (``averaging``);
- mda: ``Δ2(x^{r+1}) <= κ·Δ2(x^r)`` (``mda-contraction``), ``||x̄^{r+1} - x̄^r|| <= β·Δ2(x^r)``
  (``mda-bias``), ``||x̄^T - x̄^0|| <= C_MDA·Δ2(x^0)`` (``averaging``);
- mve, d = 1: ``||x̄^{r+1} - x̄^r|| <= (2f/(n-f) + 1/2)·Δ2(x^r)`` (``mve-bias``; proven
  when the honest range is above the honest subsets' own noise floor, which holds except at
  float64's resolution: ``mve.md`` Theorem 3, Lemma 2b); no contraction or averaging
  constant is proven (see ``mve.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from agreement import constants as K

from . import constants

REL_TOL = 1e-9


@dataclass(frozen=True)
class Verdict:
    """One claim on one run: the worst measured ratio, the bound, and where it was worst."""

    claim: str
    bound: float
    measured: float
    holds: bool
    where: str = ""

    def __str__(self) -> str:
        v = "holds" if self.holds else "VIOLATED"
        return f"{self.claim}: measured {self.measured:.6g} vs bound {self.bound:.6g} " \
               f"({v}{', ' + self.where if self.where else ''})"


def _tol(history: np.ndarray) -> float:
    """Absolute rounding slack: a few ulps of the dtype at the values' scale."""
    eps = float(np.finfo(history.dtype).eps) if history.dtype.kind == "f" else 1e-15
    return 64 * eps * max(1.0, float(np.abs(history).max()))


def _ratio_check(name: str, bound: float, nums: list[float], dens: list[float], tol: float,
                 what: str) -> Verdict:
    worst, where, ok = 0.0, "", True
    for r, (a, b) in enumerate(zip(nums, dens, strict=True)):
        if a > bound * b + tol + REL_TOL * bound * b:
            ok = False
        q = a / b if b > tol else (0.0 if a <= tol else math.inf)
        if q > worst:
            worst, where = q, f"{what} {r}"
    return Verdict(name, bound, worst, ok, where)


def check(result: Any) -> dict[str, Verdict]:
    """The verdict per claim for an :class:`agreement.AgreementResult` (module doc).

    Returns an empty dict for protocols without proven claims or runs below their
    resilience (nothing is claimed there)."""
    H = np.asarray(result.history, dtype=np.float64)
    n, f, d, proto = result.n, result.f, result.d, result.protocol
    tol = _tol(np.asarray(result.history))
    means = H.mean(axis=1)  # (T+1, d)
    diam = [float(x) for x in result.diameters]
    T = H.shape[0] - 1
    out: dict[str, Verdict] = {}
    try:
        if proto == "trimmed-mean":
            lam, err = K.tm_contraction(n, f), K.tm_error_factor(n, f)
            C = K.tm_averaging_constant(n, f, d)
        elif proto == "mda":
            kappa, beta = K.mda_contraction(n, f), K.mda_bias(n, f)
            C = K.mda_averaging_constant(n, f)
        elif proto == "mve":
            beta = K.mve_bias(n, f, d)
        else:
            return out
    except ValueError:  # below the resilience bound: no claim
        return out
    if proto == "trimmed-mean":
        rng = H.max(axis=1) - H.min(axis=1)  # (T+1, d)
        out["tm-contraction"] = _coord_check("tm-contraction", lam, rng[1:], rng[:-1], tol)
        dev = np.abs(means[1:] - means[:-1])
        out["tm-error"] = _coord_check("tm-error", err, dev, rng[:-1], tol)
    elif proto == "mda":
        out["mda-contraction"] = _ratio_check("mda-contraction", kappa, diam[1:], diam[:-1],
                                              tol, "round")
    if proto in ("mda", "mve") and math.isfinite(beta):
        steps = [float(np.linalg.norm(means[r + 1] - means[r])) for r in range(T)]
        name = "mda-bias" if proto == "mda" else "mve-bias"
        out[name] = _ratio_check(name, beta, steps, diam[:-1], tol, "round")
    if proto in ("trimmed-mean", "mda"):
        out["averaging"] = _ratio_check("averaging", C, [float(result.averaging_error)],
                                        [diam[0]], tol, "inputs")
    return out


def _coord_check(name: str, bound: float, num: np.ndarray, den: np.ndarray, tol: float
                 ) -> Verdict:
    """Per round and coordinate: ``num <= bound·den`` (arrays (T, d))."""
    if num.size == 0:
        return Verdict(name, bound, 0.0, True)
    ok = bool((num <= bound * den * (1 + REL_TOL) + tol).all())
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(den > tol, num / np.where(den > tol, den, 1.0),
                     np.where(num > tol, np.inf, 0.0))
    r, c = np.unravel_index(int(np.argmax(q)), q.shape)
    return Verdict(name, bound, float(q[r, c]), ok, f"round {r}, coordinate {c}")


class BoundViolation(AssertionError):
    """A run broke a proven bound (the message names the claim, the run and how to replay)."""


def assert_bounds(result: Any) -> dict[str, Verdict]:
    """``check(result)``, raising :class:`BoundViolation` (an ``AssertionError``) with a
    readable message when a claim is violated; returns the verdicts otherwise."""
    verdicts = check(result)
    bad = [v for v in verdicts.values() if not v.holds]
    if bad:
        lines = "\n  ".join(str(v) for v in bad)
        raise BoundViolation(
            f"{result.protocol} run (n={result.n}, f={result.f}, d={result.d}, "
            f"rounds={result.rounds}, engine={result.engine}, byzantine={result.byzantine}, "
            f"scheduler={result.scheduler}, seed={result.seed}) violates:\n  {lines}\n"
            "replay it with agreement.run(...) and these parameters; proofs in proofs/*.md"
        )
    return verdicts


__all__ = ["BoundViolation", "Verdict", "assert_bounds", "check", "constants"]
