"""proofs: the constants of docs/theory.md as code, their proofs in writing, and machine checks.

- :mod:`proofs.constants`: the bounds (a re-export of :mod:`agreement.constants`, the one
  source of truth), each docstring naming its proof in ``proofs/*.md`` (index: ``README.md``);
- :mod:`proofs.search`: worst-case search of one round under witness views;
- :mod:`proofs.verify`: one row per (claim, n, f, d): bound, worst found, tightness;
  ``python -m proofs verify [--json] [--budget N] [--seconds S] [--protocol P]``;
- :mod:`proofs.lower_bound`: the two-world scenario of the bound ``C >= f/(n-f)`` in the
  simulator; :mod:`proofs.mve`: the MVE counterexamples;
- :func:`check` / :func:`assert_bounds`: an :class:`agreement.AgreementResult` against the
  proven bounds, for users' tests: both evaluate the one claims table,
  :mod:`agreement.claims` (which also gives the CLI's "within bound" fields and verify's
  rows), with its one tolerance rule (64 ulps of the run's dtype at the values' scale plus
  a relative 1e-9 on the bound).

Verdicts: ``holds``, ``violated``, ``no-claim`` (nothing proven: median, krum, mean, MVE's
ellipsoid centre in d >= 2, or a run below the protocol's resilience, where the constants
raise ``ValueError``). ``check`` never returns an empty dict: a run about which nothing is
claimed gets one ``no-claim`` verdict saying why; ``assert_bounds`` fails on it unless
``allow_no_claim=True``.

Claims checked on a run (every round ``r``, honest vectors ``x^r``, ``x^0`` the inputs), when
the run is within the protocol's resilience (the constants' preconditions):

- trimmed-mean: ``range_c(x^{r+1}) <= λ·range_c(x^r)`` (``tm-contraction``),
  ``|x^{r+1}_{j,c} - x̄^r_c| <= 2f/(n-f)·range_c(x^r)`` (``tm-error``), the outputs in the
  honest box (``tm-validity``), ``Δ2(x^{r+1}) <= min(√d, √(n-1))·λ·Δ2(x^r)``
  (``tm-l2-contraction``) and ``||x̄^T - x̄^0|| <= C_TM·Δ2(x^0)`` (``tm-averaging``);
- mda: ``Δ2(x^{r+1}) <= κ·Δ2(x^r)`` (``mda-contraction``), ``||x^{r+1}_j - x̄^r|| <=
  β·Δ2(x^r)`` (``mda-bias``), ``||x̄^T - x̄^0|| <= C_MDA·Δ2(x^0)`` (``mda-averaging``);
- mve, d = 1: ``||x^{r+1}_j - x̄^r|| <= (2f/(n-f) + 1/2)·Δ2(x^r)`` (``mve-bias``) and
  ``Δ2(x^{r+1}) <= Δ2(x^r)`` (``mve-contraction``; both proven when the honest range is
  above the honest subsets' own noise floor, which holds except at float64's resolution:
  ``mve.md`` Theorem 3, Lemma 2b); no averaging constant is proven (see ``mve.md``).
"""

from __future__ import annotations

from typing import Any

from agreement.claims import NO_CLAIM, VIOLATED, Verdict, evaluate

from . import constants

REL_TOL = 1e-9


def check(result: Any) -> dict[str, Verdict]:
    """The verdict per claim of :mod:`agreement.claims` for an
    :class:`agreement.AgreementResult` (module doc). Never empty: nothing claimed gives one
    ``no-claim`` verdict (key ``"no-claim"``) whose ``where`` says why."""
    return evaluate(result)


class BoundViolation(AssertionError):
    """A run broke a proven bound (the message names the claim, the run and how to replay),
    or nothing is claimed about it and the caller did not allow that."""


def assert_bounds(result: Any, *, allow_no_claim: bool = False,
                  allow_unstressed: bool = False) -> dict[str, Verdict]:
    """``check(result)``, raising :class:`BoundViolation` (an ``AssertionError``) with a
    readable message when a claim is violated, when nothing is claimed about the run
    (``no-claim``) unless ``allow_no_claim``, or when the run's honest views never differed
    (``result.views_differed`` false: every honest node saw the same values, so the
    contraction claims held without being tested) unless ``allow_unstressed``; returns the
    verdicts otherwise."""
    verdicts = check(result)
    if not allow_unstressed and getattr(result, "views_differed", True) is False:
        raise BoundViolation(
            f"{result.protocol} run (n={result.n}, f={result.f}, engine={result.engine}, "
            f"strategy={result.strategy}, scheduler={result.scheduler}, seed={result.seed}): "
            "the honest views never differed, so its bounds were checked on nothing; run it "
            "under an adversarial schedule (scheduler='targeted', the default) or pass "
            "allow_unstressed=True"
        )
    bad = [v for v in verdicts.values()
           if v.status == VIOLATED or (v.status == NO_CLAIM and not allow_no_claim)]
    if bad:
        lines = "\n  ".join(str(v) for v in bad)
        what = "violates" if any(v.status == VIOLATED for v in bad) else \
            "has no proven claim to check (pass allow_no_claim=True to accept that)"
        raise BoundViolation(
            f"{result.protocol} run (n={result.n}, f={result.f}, d={result.d}, "
            f"rounds={result.rounds}, engine={result.engine}, strategy={result.strategy}, "
            f"scheduler={result.scheduler}, seed={result.seed}) {what}:\n  {lines}\n"
            "replay it with agreement.run(...) and these parameters; proofs in proofs/*.md"
        )
    return verdicts


__all__ = ["BoundViolation", "Verdict", "assert_bounds", "check", "constants"]
