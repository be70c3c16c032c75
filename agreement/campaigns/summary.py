"""The summary of a campaign, per cell: runs, violations, errors, and for every claim of the
claims table (agreement/claims.py; the bounds of docs/theory.md §5 and proofs/*.md) the worst
ratio ``measured / bound`` over the seeds (at most 1 where the claim holds) with the seed
that reached it, and quantiles of that ratio, of the averaging ratio ``||x̄^T - x̄^0|| /
Δ2(x^0)`` and of the final diameter ratio ``Δ2(x^T) / Δ2(x^0)``.

Quantiles are empirical, of the inverted distribution function (each is a value of the
sample, so an infinite ratio stays infinite and nothing is interpolated); numbers follow
the records' JSON rule (NaN as null, ±inf as "inf"/"-inf": :func:`agreement.campaigns.runs.num`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .runs import as_float, num

QUANTILES = (0.05, 0.5, 0.95)
"""The quantiles of every distribution in the summary (``q05``, ``median``, ``q95``)."""


def _dist(values: list[float], seeds: list[int]) -> dict[str, Any]:
    """Quantiles, maximum and the (first) seed at the maximum of ``values`` (NaN dropped)."""
    pairs = [(v, s) for v, s in zip(values, seeds, strict=True) if not np.isnan(v)]
    if not pairs:
        return {"runs": 0, "q05": None, "median": None, "q95": None, "max": None,
                "worst_seed": None}
    a = np.array([v for v, _ in pairs])
    q = np.quantile(a, QUANTILES, method="inverted_cdf")
    i = int(np.argmax(a))
    return {"runs": len(pairs), "q05": num(q[0]), "median": num(q[1]), "q95": num(q[2]),
            "max": num(a[i]), "worst_seed": pairs[i][1]}


def _claims(recs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    names = list(dict.fromkeys(k for r in recs for k in (r.get("verdicts") or {})
                               if k != "no-claim"))
    out = {}
    for name in names:
        vals, seeds, bad = [], [], 0
        for r in recs:
            v = (r.get("verdicts") or {}).get(name)
            if v is None:
                continue
            vals.append(as_float(v.get("ratio")))
            seeds.append(r["seed"])
            bad += v.get("status") == "violated"
        d = _dist(vals, seeds)
        out[name] = {"evaluated": len(vals), "violated": bad, "worst_ratio": d.pop("max"),
                     **d}
    return out


def _cell(recs: list[dict[str, Any]]) -> dict[str, Any]:
    seeds = [r["seed"] for r in recs]
    claims = _claims(recs)
    worst = max(((as_float(c["worst_ratio"]), name, c["worst_seed"])
                 for name, c in claims.items() if c["worst_ratio"] is not None),
                default=(None, None, None), key=lambda t: t[0])
    checks: dict[str, Any] = {}
    for name in dict.fromkeys(k for r in recs for k in (r.get("checks") or {})):
        got = [(as_float(r["checks"][name]["measured"]), r["seed"], r["checks"][name]["status"])
               for r in recs if name in (r.get("checks") or {})]
        d = _dist([g[0] for g in got], [g[1] for g in got])
        checks[name] = {"violated": sum(g[2] == "violated" for g in got),
                        "bound": recs[0]["checks"][name]["bound"], **d}
    no_claim = [r for r in recs if "no-claim" in (r.get("verdicts") or {})]
    return {
        "cell_id": recs[0]["cell_id"], "params": recs[0]["params"], "runs": len(recs),
        "ok": sum(r["status"] == "ok" for r in recs),
        "violations": sum(r["status"] == "violation" for r in recs),
        "errors": sum(r["status"] == "error" for r in recs),
        "violating_seeds": [r["seed"] for r in recs if r["status"] == "violation"][:20],
        "error_seeds": [r["seed"] for r in recs if r["status"] == "error"][:20],
        "views_differed": sum(bool(r.get("views_differed")) for r in recs),
        "no_claim": len(no_claim),
        "no_claim_why": no_claim[0]["verdicts"]["no-claim"]["where"] if no_claim else None,
        "worst_ratio": None if worst[0] is None else num(worst[0]), "worst_claim": worst[1],
        "worst_seed": worst[2], "claims": claims, "checks": checks,
        "averaging_ratio": _dist([as_float(r.get("averaging_ratio")) for r in recs], seeds),
        "final_diameter_ratio": _dist([as_float(r.get("final_diameter_ratio")) for r in recs],
                                      seeds),
    }


def summarize(records: list[dict[str, Any]], order: list[str] | None = None
              ) -> list[dict[str, Any]]:
    """One summary per cell (module doc), in ``order`` (cell ids; default: the order in which
    cells first appear in ``records``, the task order of a campaign). Per cell: ``runs``,
    ``ok``, ``violations``, ``errors``, the violating and erroring seeds (the first 20),
    ``views_differed`` (runs where honest views differed: only those test a contraction),
    ``no_claim`` (runs about which nothing is claimed), ``worst_ratio`` / ``worst_claim`` /
    ``worst_seed`` over all claims, ``claims[name]`` = ``{evaluated, violated, worst_ratio,
    worst_seed, q05, median, q95, runs}``, ``checks[name]`` likewise for the spec's checks, and
    the distributions ``averaging_ratio`` and ``final_diameter_ratio`` (``{q05, median, q95,
    max, worst_seed, runs}``; error records count in ``runs`` and ``errors`` only)."""
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_cell.setdefault(r["cell_id"], []).append(r)
    ids = list(order) if order is not None else list(by_cell)
    return [_cell(sorted(by_cell[c], key=lambda r: r["seed"])) for c in ids if c in by_cell]


def _g(x: Any) -> str:
    if x is None:
        return "-"
    return x if isinstance(x, str) else f"{x:.3g}"


def _q(d: dict[str, Any]) -> str:
    if d.get("median") is None:
        return "-"
    return f"{_g(d['median'])} [{_g(d['q05'])}, {_g(d['q95'])}]"


def format_summary(summary: list[dict[str, Any]]) -> str:
    """A Markdown table of :func:`summarize`'s output, one row per cell: runs, ok, violations,
    errors, the worst ratio to a bound with its claim and seed ("no claim" where nothing is
    claimed), and the median [5%, 95%] of the averaging ratio and of the final diameter
    ratio."""
    head = ("| cell | runs | ok | violations | errors | worst ratio to bound (claim, seed) | "
            "averaging ratio median [5%, 95%] | final/input diameter median [5%, 95%] |")
    lines = [head, "|---|---:|---:|---:|---:|---|---|---|"]
    for c in summary:
        if c["worst_ratio"] is not None:
            worst = f"{_g(c['worst_ratio'])} ({c['worst_claim']}, seed {c['worst_seed']})"
        else:
            worst = "no claim"
        for name, chk in c["checks"].items():
            worst += f"; {name} {_g(chk['max'])} vs {_g(chk['bound'])} (seed {chk['worst_seed']})"
        lines.append(f"| {c['cell_id']} | {c['runs']} | {c['ok']} | {c['violations']} | "
                     f"{c['errors']} | {worst} | {_q(c['averaging_ratio'])} | "
                     f"{_q(c['final_diameter_ratio'])} |")
    return "\n".join(lines)


__all__ = ["QUANTILES", "format_summary", "summarize"]
