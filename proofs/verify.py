"""``verify``: every searched claim of the claims table (:mod:`agreement.claims`) against the
worst case the search finds and the best known construction, the lower bound in the
simulator, and the MVE counterexamples; one row per (claim, n, f, d).

Row kinds and statuses:

- ``bound``: a claim of the table at one of its configurations, searched with a budget of
  ``budget`` evaluations (the rule on one view; :mod:`proofs.search`): deterministic for a
  seed. ``best_known`` is the best known construction (:mod:`proofs.constructions`,
  evaluated through the rule). Status (:func:`agreement.claims.judge`): ``violated`` when the
  worst found exceeds the bound (the table's tolerance), ``search-too-short`` when it is
  below 0.9 of ``best_known`` (the search did not even find what is known: its "holds"
  would say nothing), else ``holds``; ``no-claim`` where nothing is proven (MVE in d >= 2:
  the row then reports the worst found against the construction only, and is
  ``search-too-short`` as well when below 0.9 of it).
- ``lower-bound``: the two-world scenario shows an error of at least ``f/(n-f)·Δ2(x)`` in one
  world (``holds`` when it does).
- ``counterexample``: a claim of docs/theory.md refuted by an explicit construction
  (``reproduced`` when the construction still reproduces).
- ``regression``: a fixed defect's construction, now within the bound.
- ``measured``: a claim without a proven bound (:data:`agreement.claims.MEASURED_CLAIMS`:
  the pre-aggregated protocols' contraction and bias, docs/theory.md §5.5), searched like a
  ``bound`` row; its status is ``no-claim`` and ``worst`` is the worst round found (measured,
  not proven: a lower bound on the true worst case).

Violations make ``python -m proofs verify`` exit 1.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any

from agreement import claims as T
from agreement import constants as K
from agreement.claims import Claim
from agreement.protocol import CONFIGS

from . import lower_bound, mve
from .constructions import best_known
from .search import DEFAULT_EVALS, search

REL_TOL = T.REL_TOL
DEFAULT_BUDGET = DEFAULT_EVALS  # evaluations per searched row

# the searched claims: the rows of the table that have configurations (no second list)
CLAIMS: tuple[Claim, ...] = tuple(c for c in T.CLAIMS if c.configs)
# the measured rows: claims without a proven bound (agreement.claims.MEASURED_CLAIMS), searched
# after the proven ones, reported as no-claim with the worst round found
MEASURED_CLAIMS: tuple[Claim, ...] = tuple(c for c in T.MEASURED_CLAIMS if c.configs)
PROTOCOLS = tuple(dict.fromkeys(c.protocol for c in (*CLAIMS, *MEASURED_CLAIMS)))
MEASURED_SEED = 1000  # the measured rows' seed offset (see jobs)


@dataclass
class Row:
    """One line of the verify table."""

    claim: str
    protocol: str
    n: int
    f: int
    d: int
    bound: float
    worst: float
    status: str
    kind: str = "bound"
    evaluations: int = 0
    statement: str = ""
    proof: str = ""
    witness: dict[str, Any] | None = None
    rule_errors: int = 0
    first_error: dict[str, Any] | None = None
    best_known: float | None = None
    best_known_source: str = ""
    found_by: str = ""
    capped: bool = False
    seconds: float = 0.0

    @property
    def holds(self) -> bool | None:
        """``True`` (holds), ``False`` (violated), ``None`` (any other status)."""
        return {"holds": True, "violated": False}.get(self.status)

    @property
    def tightness(self) -> float | None:
        """``worst / bound`` (``None`` when the bound is 0 or infinite)."""
        if self.bound in (0, math.inf) or not math.isfinite(self.worst):
            return None
        return self.worst / self.bound

    @property
    def vs_best(self) -> float | None:
        """``worst / best_known`` (``None`` without a construction)."""
        if not self.best_known or not math.isfinite(self.worst):
            return None
        return self.worst / self.best_known

    @property
    def verdict(self) -> str:
        return "VIOLATED" if self.status == "violated" else self.status

    def as_dict(self) -> dict[str, Any]:
        def num(v: float | None) -> float | str | None:
            if v is None or math.isfinite(v):
                return v
            if math.isnan(v):
                return None
            return "inf" if v > 0 else "-inf"

        return {
            "claim": self.claim, "protocol": self.protocol, "n": self.n, "f": self.f,
            "d": self.d, "kind": self.kind, "bound": num(self.bound), "worst": num(self.worst),
            "tightness": self.tightness, "best_known": num(self.best_known),
            "best_known_source": self.best_known_source, "vs_best": self.vs_best,
            "status": self.status, "holds": self.holds, "verdict": self.verdict,
            "evaluations": self.evaluations, "found_by": self.found_by,
            "capped": self.capped, "statement": self.statement, "proof": self.proof,
            "witness": self.witness, "rule_errors": self.rule_errors,
            "first_error": self.first_error,
        }


def check_claim(claim: Claim, n: int, f: int, d: int, budget: int = DEFAULT_BUDGET,
                seed: int = 0, seconds: float | None = None) -> Row:
    """Search the worst case of one claim at ``(n, f, d)`` within ``budget`` evaluations
    (times the claim's ``search_factor``) and judge it against the bound and the best known
    construction."""
    budget *= claim.search_factor
    bound, _ = claim.bound_at(n, f, d)
    t0 = time.perf_counter()
    res = search(claim.rule, n, f, d, claim.objective, budget, seed=seed,
                 rule_params=dict(claim.rule_params), seconds=seconds)
    best, src, _ = best_known(claim, n, f, d)
    err = None
    if res.first_error is not None:
        err = {"error": res.first_error[0], **res.first_error[1].as_dict()}
    # no legal round evaluated (a tiny budget, the safety cap, or the rule raising on all):
    # nothing was searched, which is too short whatever the bound
    worst = res.worst if res.candidate is not None else math.nan
    status = T.judge(worst, bound, best) if res.candidate is not None else T.SEARCH_TOO_SHORT
    kind = "measured" if claim in T.MEASURED_CLAIMS else "bound"
    return Row(claim.name, claim.protocol, n, f, d, math.inf if bound is None else bound,
               worst, status, kind=kind, evaluations=res.evaluations,
               statement=claim.statement, proof=claim.proof,
               witness=res.candidate.as_dict() if res.candidate is not None and d <= 3 else None,
               rule_errors=res.errors, first_error=err, best_known=best,
               best_known_source=src, found_by=res.found_by, capped=res.capped,
               seconds=time.perf_counter() - t0)


def jobs(protocols: tuple[str, ...]) -> list[tuple[Claim, tuple[int, int, int], int]]:
    """The searched rows of ``protocols``: ``(claim, (n, f, d), i)``; :func:`verify` seeds
    the row with ``seed + i`` (``check_claim(c, n, f, d, seed=seed + i)`` replays it). A
    proven row's ``i`` is its position among the proven rows of ``protocols``; a measured
    row's is ``MEASURED_SEED + `` its position among all the measured rows, so that its worst
    round (recorded in :data:`agreement.claims.MEASURED`) does not move when proven rows
    are added or fewer protocols are verified."""
    todo = [(c, cfg) for c in CLAIMS if c.protocol in protocols for cfg in c.configs]
    out = [(c, cfg, i) for i, (c, cfg) in enumerate(todo)]
    measured = [(c, cfg) for c in MEASURED_CLAIMS for cfg in c.configs]
    return out + [(c, cfg, MEASURED_SEED + i) for i, (c, cfg) in enumerate(measured)
                  if c.protocol in protocols]


def lower_bound_rows(protocols: tuple[str, ...], seed: int = 0) -> list[Row]:
    """The two-world scenario against each protocol (:mod:`proofs.lower_bound`)."""
    rows = []
    for p in protocols:
        w = lower_bound.two_worlds(p, f=1, seed=seed)
        rows.append(Row("lower-bound", p, w.n, w.f, 1, w.bound, w.worst,
                        T.HOLDS if w.shown else T.VIOLATED, kind="lower-bound",
                        statement="error >= f/(n-f)·Δ2(x) in one of two indistinguishable worlds",
                        proof="lower_bound.md", witness=w.as_dict()))
    return rows


def counterexample_rows() -> list[Row]:
    """The MVE constructions of :mod:`proofs.mve` (docs/theory.md §5.2's claim refuted)."""
    rows = []
    b = mve.bias_1d(7, 1)
    rows.append(Row("mve-1d-bias-not-O(f/h)", "mve", 7, 1, 1,
                    K.lower_bound_averaging_constant(7, 1), b.ratio, "reproduced",
                    kind="counterexample",
                    statement="one round with ratio 1/2 + 2f/(n-f) - ε/2 (bound column: f/(n-f))",
                    proof="mve.md#proposition-4", witness=b.detail))
    s = mve.stall_1d(20)
    rows.append(Row("mve-1d-no-contraction", "mve", 7, 1, 1, 1.0, s.ratio, "reproduced",
                    kind="counterexample",
                    statement="Δ2 after 20 rounds / Δ2(x) = (1-ε/2)^20 (no agreement)",
                    proof="mve.md#proposition-6",
                    witness={k: v for k, v in s.detail.items() if k != "diameters"}))
    for d, dist in ((2, (100.0, 1000.0, 1250.0)), (10, (100.0, 1000.0, 1450.0))):
        o = mve.flat_subset(d, distances=dist)
        rows.append(Row("mve-flat-subset", "mve", 7, 1, d, K.lower_bound_averaging_constant(7, 1),
                        o.ratio, "reproduced", kind="counterexample",
                        statement="one round, Byzantine value in a flat: ratio >> f/(n-f)",
                        proof="mve.md#proposition-5", witness=o.detail))
    # Proposition 8's construction, kept as a bound row: a far Byzantine value used to lift
    # a view-wide noise floor and flatten every honest subset (ratio 84.5 at far = 1e10);
    # with per-subset floors (agreement/rules/subsets.py) Theorem 3's bound must hold
    for far in (1e10, 1e100):
        o = mve.floor_inflation(13, 2, far=far)
        bound = K.mve_bias(13, 2, 1)
        rows.append(Row("mve-1d-floor-inflation", "mve", 13, 2, 1, bound, o.ratio,
                        T.judge(o.ratio, bound), kind="regression",
                        statement=f"Proposition 8's view (far Byzantine value {far:g}): "
                                  "Theorem 3's 1-D bias bound holds (it failed before "
                                  "per-subset noise floors)",
                        proof="mve.md#proposition-8",
                        witness={k: v for k, v in o.detail.items() if k != "outputs"}))
    return rows


def _progress(total: int, enabled: bool) -> Any:
    """A tqdm bar over the rows, on stderr (a no-op when not ``enabled``)."""
    from tqdm import tqdm

    return tqdm(total=total, desc="verify", unit="row", disable=not enabled, leave=False,
                file=sys.stderr, dynamic_ncols=True)


def verify(budget: int = DEFAULT_BUDGET, protocols: tuple[str, ...] | None = None,
           seed: int = 0, lower: bool = True, counterexamples: bool = True,
           seconds: float | None = None, progress: bool = False) -> list[Row]:
    """All rows for ``protocols`` (default: every protocol of the table), each searched row
    with ``budget`` evaluations (seeds ``seed + i`` for the ``i``-th row): the same rows on
    every machine. ``seconds`` is a safety cap on the whole search (rows it cut short are
    marked ``capped``; they are then machine-dependent). ``progress`` shows a tqdm bar over
    the rows on stderr (``python -m proofs verify`` turns it on when stderr is a terminal and
    ``--json`` is not given); it changes no row."""
    every = protocols is None
    protocols = tuple(protocols or PROTOCOLS)
    unknown = sorted(set(protocols) - set(PROTOCOLS))
    if unknown:
        raise ValueError(f"no claims for {unknown}; known: {', '.join(PROTOCOLS)}")
    if not (isinstance(budget, int) and budget >= 1):
        raise ValueError(f"budget must be a number of evaluations >= 1, got {budget!r}")
    t0 = time.perf_counter()
    rows: list[Row] = []
    lower_protocols = (tuple(sorted(CONFIGS)) if every else protocols) if lower else ()
    todo = jobs(protocols)
    with _progress(len(lower_protocols) + len(todo), progress) as bar:
        for p in lower_protocols:
            bar.set_postfix_str(f"lower-bound {p}")
            rows += lower_bound_rows((p,), seed)
            bar.update()
        if counterexamples and "mve" in protocols:
            bar.set_postfix_str("mve counterexamples")
            found = counterexample_rows()
            bar.total += len(found)
            bar.update(len(found))
            rows += found
        for c, (n, f, d), i in todo:
            bar.set_postfix_str(f"{c.name} ({n},{f},{d})")
            left = None if seconds is None else max(seconds - (time.perf_counter() - t0), 0.0)
            rows.append(check_claim(c, n, f, d, budget, seed=seed + i, seconds=left))
            bar.update()
    return rows


def table(rows: list[Row]) -> str:
    """The rows as a text table."""
    def fmt(v: float | None) -> str:
        if v is None:
            return "-"
        if v == math.inf:
            return "inf"
        if math.isnan(v):
            return "-"
        return f"{v:.4f}" if abs(v) < 1e4 else f"{v:.3g}"

    head = f"{'claim':<24} {'protocol':<13} {'n':>3} {'f':>2} {'d':>3} {'bound':>9} " \
           f"{'worst':>9} {'tight':>7} {'best':>9} {'/best':>6}  status"
    lines = [head, "-" * len(head)]
    for r in rows:
        vb = "-" if r.vs_best is None else f"{r.vs_best:.3f}"
        lines.append(f"{r.claim:<24} {r.protocol:<13} {r.n:>3} {r.f:>2} {r.d:>3} "
                     f"{fmt(r.bound):>9} {fmt(r.worst):>9} {fmt(r.tightness):>7} "
                     f"{fmt(r.best_known):>9} {vb:>6}  {r.verdict}"
                     f"{' (capped)' if r.capped else ''}")
    for r in rows:
        if r.status == "violated" and r.witness is not None:
            w = r.witness
            lines.append(f"VIOLATED {r.claim} ({r.n},{r.f},{r.d}): honest {w.get('honest')}, "
                         f"Byzantine {w.get('byzantine')}, views {w.get('view1')} / "
                         f"{w.get('view2')}, row order {w.get('row_order')} (rows: honest "
                         f"first; replay with make_rule('{r.protocol}', {r.f}).batch)")
        if r.rule_errors:
            e = r.first_error or {}
            lines.append(f"note: {r.claim} ({r.n},{r.f},{r.d}): the rule raised on "
                         f"{r.rule_errors} legal round(s), first: {e.get('error')} on honest "
                         f"{e.get('honest')}, Byzantine {e.get('byzantine')}, view "
                         f"{e.get('view1')}")
    short = [r for r in rows if r.status == "search-too-short"]
    if short:
        lines.append(f"search-too-short: {len(short)} row(s) below 0.9 of the best known "
                     "construction; raise --budget")
    if any(r.capped for r in rows):
        lines.append("capped: the --seconds safety cap cut the search short; these rows "
                     "depend on the machine's speed")
    return "\n".join(lines)


__all__ = ["CLAIMS", "DEFAULT_BUDGET", "MEASURED_CLAIMS", "PROTOCOLS", "Claim", "Row",
           "check_claim",
           "counterexample_rows", "jobs", "lower_bound_rows", "table", "verify"]
