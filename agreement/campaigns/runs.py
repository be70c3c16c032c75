"""One campaign run as a record, its replay, and the reduction of a failure to a smaller run.

:func:`run_task` builds the inputs exactly as ``python -m agreement simulate`` does
(``make_inputs(inputs, n, d, seed)``, the run's ``seed`` the same) and calls
:func:`agreement.run` with the same arguments, so the record's replay command reproduces its
diameters and averaging ratio bit for bit. What a record measures, per run:

- ``diameters``: the honest ℓ2 diameter ``Δ2(x^r)`` after every round (index 0: the inputs);
- ``averaging_ratio``: ``||x̄^T - x̄^0|| / Δ2(x^0)`` (bounded by C_TM or C_MDA, docs/theory.md
  §5.1, §5.3);
- ``verdicts``: every claim of the claims table (:func:`agreement.claims.evaluate`: the
  per-round contraction, error, bias and averaging bounds of proofs/*.md) with ``ratio =
  measured / bound`` (at most 1 when the claim holds, up to the tolerance of
  :func:`agreement.claims.within`); ``no-claim`` verdicts (a baseline, a run below the
  resilience) are kept and are not violations;
- ``checks.agreement`` (when the spec asks): ``Δ2(x^T) / Δ2(x^0) <= bound``.

Status ``violation`` iff a verdict is ``violated`` (with ``checks.claims``) or a requested
check fails; ``error`` when the run raised (the record holds the exception). ``wall_time`` is
the only field that differs between two runs of the same task. Non-finite numbers are
written as in ``simulate --json``: NaN as null, ±inf as the strings "inf" and "-inf".
"""

from __future__ import annotations

import math
import shlex
import time
import traceback
from typing import Any

from ..claims import VIOLATED, evaluate
from ..inputs import make_inputs
from ..run import AgreementResult, run
from .spec import Task

SEED_TRIES = 32
""":func:`reduce_failure` tries at most this many earlier seeds (0, 1, ...)."""
CLI_PARAMS = ("rule_params", "attack_params")
"""Parameters that ``python -m agreement simulate`` has no flag for: a run that sets them is
replayed by its Python call only (``replay.command`` is null, ``replay.note`` says why)."""


def num(x: Any) -> float | str | None:
    """A number as plain JSON: NaN as None, ±inf as "inf"/"-inf" (``simulate --json``'s rule)."""
    x = float(x)
    if math.isnan(x):
        return None
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def as_float(x: Any) -> float:
    """The inverse of :func:`num` (None is NaN)."""
    if x is None:
        return math.nan
    return float(x)


def run_kwargs(params: dict[str, Any], seed: int) -> dict[str, Any]:
    """The keywords of :func:`agreement.run` for one run, as ``simulate`` passes them."""
    p = params
    return dict(f=p["f"], protocol=p["protocol"], rounds=p["rounds"], strategy=p["strategy"],
                scheduler=p["scheduler"], seed=seed, engine=p["engine"], views=p["views"],
                gather=p["gather"], codec=p["codec"], unsafe=p["unsafe"],
                rule_params=p["rule_params"] or None, attack_params=p["attack_params"] or None)


def replay(params: dict[str, Any], seed: int) -> dict[str, Any]:
    """The command line and the Python call that rerun this run exactly. ``python`` is a
    statement for :func:`exec` that leaves the :class:`agreement.AgreementResult` in
    ``result``; ``command`` prints ``simulate``'s JSON (None when a parameter of
    :data:`CLI_PARAMS` is set: ``note`` says so)."""
    p = params
    kw = ", ".join(f"{k}={v!r}" for k, v in run_kwargs(p, seed).items())
    py = ("from agreement import run; from agreement.inputs import make_inputs; "
          f"result = run(make_inputs({p['inputs']!r}, {p['n']}, {p['d']}, {seed}), {kw})")
    out: dict[str, Any] = {"command": None, "python": py}
    missing = [k for k in CLI_PARAMS if p[k]]
    if missing:
        out["note"] = (f"python -m agreement simulate has no flag for {', '.join(missing)}: "
                       "replay with the Python call")
        return out
    args = ["python", "-m", "agreement", "simulate", "--protocol", p["protocol"],
            "--n", str(p["n"]), "--f", str(p["f"]), "--dim", str(p["d"]),
            "--rounds", str(p["rounds"]), "--strategy", p["strategy"],
            "--scheduler", p["scheduler"], "--inputs", p["inputs"], "--engine", p["engine"]]
    if p["views"] is not None:
        args += ["--views", p["views"]]
    if p["gather"] is not None:
        args += ["--gather", p["gather"]]
    if not p["codec"]:
        args.append("--no-codec")
    if p["unsafe"]:
        args.append("--unsafe")
    out["command"] = shlex.join([*args, "--seed", str(seed), "--json"])
    return out


class _Judged:
    """What :func:`agreement.claims.evaluate` reads of a run, with the rule parameters
    (:class:`AgreementResult` does not carry them; the claims depend on them)."""

    def __init__(self, res: AgreementResult, rule_params: dict[str, Any]) -> None:
        self.protocol, self.n, self.f, self.d = res.protocol, res.n, res.f, res.d
        self.history, self.diameters = res.history, res.diameters
        self.averaging_error, self.gather = res.averaging_error, res.gather
        self.rule_params = rule_params


def _verdicts(res: AgreementResult, rule_params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, v in evaluate(_Judged(res, rule_params)).items():
        if math.isnan(v.bound):
            r = math.nan
        elif v.bound > 0:
            r = v.measured / v.bound
        else:  # a bound of 0 (validity): 0 when it holds, infinite otherwise
            r = 0.0 if v.status != VIOLATED else math.inf
        out[name] = {"status": v.status, "measured": num(v.measured), "bound": num(v.bound),
                     "ratio": num(r), "where": v.where}
    return out


def _judge(rec: dict[str, Any], checks: dict[str, Any]) -> None:
    """Fill ``checks``, ``violated`` and ``status`` of a finished run's record."""
    violated = []
    if checks.get("claims", True):
        violated = [k for k, v in rec["verdicts"].items() if v["status"] == VIOLATED]
    rec["claims_checked"] = bool(checks.get("claims", True))
    rec["checks"] = {}
    if checks.get("agreement") is not None:
        bound = float(checks["agreement"])
        diam = [as_float(v) for v in rec["diameters"]]
        measured = diam[-1] / diam[0] if diam[0] > 0 else 0.0
        ok = measured <= bound
        rec["checks"]["agreement"] = {"status": "holds" if ok else VIOLATED,
                                      "measured": num(measured), "bound": bound}
        if not ok:
            violated.append("check:agreement")
    rec["violated"] = violated
    rec["status"] = "violation" if violated else "ok"


def _base(task: Task) -> dict[str, Any]:
    return {"key": task.key, "cell_id": task.cell_id, "params": dict(task.params),
            "seed": task.seed, "status": "error", "diameters": [], "input_diameter": None,
            "final_diameter_ratio": None, "averaging_error": None, "averaging_ratio": None,
            "verdicts": {}, "checks": {}, "violated": [],
            "claims_checked": bool(task.checks.get("claims", True)),
            "views_differed": None, "messages": None, "bytes": None, "faults": {},
            "complete": False, "wall_time": 0.0, "error": None,
            "replay": _safe_replay(task), "reduced": None}


def _safe_replay(task: Task) -> dict[str, Any] | None:
    try:
        return replay(task.params, task.seed)
    except Exception:  # malformed params: the run's own error says what is wrong
        return None


def run_task(task: Task) -> dict[str, Any]:
    """Run one task and return its record (module doc); never raises: an exception becomes a
    record with status ``error`` and the exception's type, message and traceback tail."""
    t0 = time.perf_counter()
    rec = _base(task)
    try:
        p = task.params
        x = make_inputs(p["inputs"], p["n"], p["d"], task.seed)
        res = run(x, **run_kwargs(p, task.seed))
        diam = [float(v) for v in res.diameters]
        rec.update(
            diameters=[num(v) for v in diam], input_diameter=num(diam[0]),
            final_diameter_ratio=num(diam[-1] / diam[0]) if diam[0] > 0 else 0.0,
            averaging_error=num(res.averaging_error), averaging_ratio=num(res.averaging_ratio),
            verdicts=_verdicts(res, p["rule_params"]), views_differed=bool(res.views_differed),
            messages=int(res.messages), bytes=int(res.bytes),
            faults={str(k): int(v) for k, v in res.faults.items()},
            complete=bool(res.complete))
        _judge(rec, task.checks)
    except Exception as exc:  # the contract: a failing run is a record, not an exception
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        rec.update(status="error", error={"type": type(exc).__name__, "message": str(exc),
                                          "traceback": "".join(tb[-4:])[-2000:]})
    rec["wall_time"] = time.perf_counter() - t0
    return rec


def _target(record: dict[str, Any]) -> tuple[str, str]:
    """What a smaller run must reproduce: the error's type, or the first violated claim."""
    if record["status"] == "error":
        return "error", (record.get("error") or {}).get("type", "")
    return "violation", record["violated"][0]


def _same(rec: dict[str, Any], target: tuple[str, str]) -> bool:
    if rec["status"] != target[0]:
        return False
    if target[0] == "error":
        return (rec.get("error") or {}).get("type", "") == target[1]
    return target[1] in rec["violated"]


def _checks_of(record: dict[str, Any]) -> dict[str, Any]:
    """The checks a record was judged with (its ``claims_checked`` and ``checks`` bounds)."""
    out: dict[str, Any] = {"claims": bool(record.get("claims_checked", True))}
    for k, v in (record.get("checks") or {}).items():
        out[k] = v["bound"]
    return out


def _candidates(record: dict[str, Any]) -> list[tuple[str, Any]]:
    """The smaller runs to try, in order: fewer rounds (1, 2, ...), smaller d (1, 2, 4, ...),
    then earlier seeds (0, 1, ..., at most :data:`SEED_TRIES`)."""
    p, seed = record["params"], record["seed"]
    rounds, d = p.get("rounds"), p.get("d")
    if not (isinstance(rounds, int) and isinstance(d, int) and isinstance(seed, int)):
        return []  # malformed parameters: nothing smaller to try
    out: list[tuple[str, Any]] = [("rounds", r) for r in range(1, rounds)]
    dims, k = [], 1
    while k < d:
        dims.append(k)
        k *= 2
    out += [("d", v) for v in dims]
    out += [("seed", s) for s in range(min(seed, SEED_TRIES))]
    return out


def reduce_failure(record: dict[str, Any]) -> dict[str, Any] | None:
    """For a violation or an error, the smallest run of the same cell that fails the same way
    (the same error type, or the same first violated claim or check): fewest rounds first,
    then smallest d, then the earliest seed, each step keeping what the previous found
    (deterministic: runs are functions of their parameters and seed). Returns ``{"params",
    "seed", "what" (e.g. "rounds 5 -> 1, d 3 -> 1"), "status", "violated", "error",
    "diameters", "averaging_ratio", "replay"}``, or None when no smaller run fails so (or the
    record did not fail)."""
    if record.get("status") not in ("violation", "error"):
        return None
    target, checks = _target(record), _checks_of(record)
    params, seed = dict(record["params"]), record["seed"]
    best, what = None, []
    stage_done: set[str] = set()
    for name, value in _candidates(record):
        if name in stage_done:
            continue
        trial_params = dict(params) if name == "seed" else {**params, name: value}
        trial_seed = value if name == "seed" else seed
        rec = run_task(Task(record["cell_id"], trial_params, trial_seed, checks))
        if _same(rec, target):
            old = seed if name == "seed" else params[name]
            what.append(f"{name} {old} -> {value}")
            params, seed, best = trial_params, trial_seed, rec
            stage_done.add(name)
    if best is None:
        return None
    return {"params": params, "seed": seed, "what": ", ".join(what), "status": best["status"],
            "violated": best["violated"], "error": best["error"],
            "diameters": best["diameters"], "averaging_ratio": best["averaging_ratio"],
            "replay": best["replay"]}


__all__ = ["CLI_PARAMS", "SEED_TRIES", "as_float", "num", "reduce_failure", "replay",
           "run_kwargs", "run_task"]
