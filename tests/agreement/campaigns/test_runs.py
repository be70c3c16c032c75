"""run_task: records (plain JSON, deterministic but for wall_time), never an exception; the
replay command (``python -m agreement simulate ... --json`` in a subprocess) and the Python
call reproduce a record exactly; an unsafe cell (n = 3f) is a violation whose replay and
reduced replay reproduce it; resilient cells hold with their claims evaluated."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from agreement.campaigns.runs import reduce_failure, run_task
from agreement.campaigns.spec import Task, load_spec
from agreement.claims import claims_for

ROOT = Path(__file__).resolve().parents[3]


def task(checks: dict[str, Any] | None = None, seed: int = 0, **fixed: Any) -> Task:
    """The one task of a one-cell spec with these fixed parameters."""
    raw = {"name": "t", "seeds": {"start": seed, "count": 1}, "axes": {},
           "fixed": {"n": 4, "f": 1, "d": 3, "rounds": 3, **fixed},
           "checks": checks or {}}
    [t] = load_spec(raw).tasks()
    return t


def run_quiet(t: Task) -> dict[str, Any]:
    with warnings.catch_warnings():  # unsafe runs warn, by design
        warnings.simplefilter("ignore", RuntimeWarning)
        return run_task(t)


def reduce_quiet(rec: dict[str, Any]) -> dict[str, Any] | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return reduce_failure(rec)


def plain(x: Any) -> bool:
    """Only JSON's own types, all the way down."""
    if isinstance(x, dict):
        return all(isinstance(k, str) and plain(v) for k, v in x.items())
    if isinstance(x, list):
        return all(plain(v) for v in x)
    return x is None or type(x) in (str, int, float, bool)


def without_time(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k != "wall_time"}


def replay_cli(rec: dict[str, Any]) -> dict[str, Any]:
    """Run the record's replay command in a subprocess and parse its JSON."""
    cmd = shlex.split(rec["replay"]["command"])
    assert cmd[:3] == ["python", "-m", "agreement"]
    out = subprocess.run([sys.executable, *cmd[1:]], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout)


def replay_python(rec: dict[str, Any]) -> Any:
    env: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        exec(rec["replay"]["python"], env)
    return env["result"]


def violates_agreement(diameters: list[float], bound: float) -> bool:
    return diameters[-1] > bound * diameters[0]


REPLAYED = [
    dict(protocol="trimmed-mean", n=4, f=1, strategy="split", scheduler="targeted"),
    dict(protocol="mda", n=5, f=1, strategy="equivocate", scheduler="random", d=2),
    dict(protocol="trimmed-mean", n=7, f=2, strategy="alie", engine="round", views="random"),
    dict(protocol="trimmed-mean", n=6, f=2, strategy="split", unsafe=True),
]


@pytest.mark.parametrize("fixed", REPLAYED, ids=lambda p: f"{p['protocol']}-{p['strategy']}")
def test_the_replay_command_and_the_python_call_reproduce_the_record(fixed: dict) -> None:
    rec = run_quiet(task(seed=3, **fixed))
    assert rec["status"] == "ok", rec["error"]
    rep = replay_cli(rec)
    assert rep["diameters"] == rec["diameters"]
    assert rep["averaging_ratio"] == rec["averaging_ratio"]
    assert rep["averaging_error"] == rec["averaging_error"]
    assert {k: v["status"] for k, v in rep["verdicts"].items()} == \
        {k: v["status"] for k, v in rec["verdicts"].items()}
    assert rep["messages"] == rec["messages"] and rep["bytes"] == rec["bytes"]
    res = replay_python(rec)
    assert [float(x) for x in res.diameters] == rec["diameters"]
    assert res.averaging_ratio == rec["averaging_ratio"]


def test_records_are_plain_json_and_deterministic_but_for_wall_time() -> None:
    t = task(protocol="trimmed-mean", n=7, f=2, strategy="equivocate", scheduler="random",
             checks={"agreement": 0.5})
    a, b = run_task(t), run_task(t)
    assert plain(a) and json.loads(json.dumps(a, allow_nan=False)) == a
    assert without_time(a) == without_time(b)
    assert a["key"] == f"{t.cell_id}/0" and a["params"] == t.params and a["seed"] == 0
    for field in ("diameters", "input_diameter", "averaging_error", "averaging_ratio",
                  "verdicts", "checks", "views_differed", "messages", "bytes", "faults",
                  "complete", "wall_time", "error", "replay", "reduced"):
        assert field in a
    assert a["checks"]["agreement"]["bound"] == 0.5
    assert a["input_diameter"] == a["diameters"][0] and len(a["diameters"]) == 4


def test_run_task_never_raises() -> None:
    good = task()
    for params in ({**good.params, "inputs": "nope"}, {**good.params, "engine": "round",
                                                        "strategy": "equivocate"},
                   {"n": 4}):
        rec = run_task(Task("bad", params, 0))
        assert rec["status"] == "error" and rec["key"] == "bad/0"
        assert set(rec["error"]) == {"type", "message", "traceback"}
        assert plain(rec) and json.dumps(rec, allow_nan=False)
    rec = run_task(Task("bad", {"n": 4}, 0))
    assert rec["error"]["type"] == "KeyError" and rec["replay"] is None
    assert reduce_failure(rec) is None  # nothing smaller to try, and no exception


@pytest.mark.parametrize("protocol, n, f", [("trimmed-mean", 4, 1), ("trimmed-mean", 7, 2),
                                            ("mda", 5, 1)])
@pytest.mark.parametrize("strategy, scheduler", [("split", "targeted"),
                                                 ("equivocate", "random")])
def test_resilient_cells_hold_with_their_claims_evaluated(protocol: str, n: int, f: int,
                                                          strategy: str,
                                                          scheduler: str) -> None:
    for seed in (0, 1):
        rec = run_task(task(protocol=protocol, n=n, f=f, strategy=strategy,
                            scheduler=scheduler, seed=seed))
        assert rec["status"] == "ok", rec
        assert set(rec["verdicts"]) == {c.name for c in claims_for(protocol)}
        for v in rec["verdicts"].values():
            assert v["status"] == "holds" and v["ratio"] <= 1 + 1e-9
    if strategy == "split":  # the default adversary makes honest views differ
        assert rec["views_differed"]


UNSAFE = dict(protocol="trimmed-mean", n=6, f=2, d=3, rounds=5, strategy="split",
              scheduler="targeted", unsafe=True)


def test_an_unsafe_cell_is_a_violation_that_its_replays_and_reduction_reproduce() -> None:
    rec = run_quiet(task(seed=1, checks={"agreement": 0.01}, **UNSAFE))
    assert rec["status"] == "violation" and rec["violated"] == ["check:agreement"]
    assert list(rec["verdicts"]) == ["no-claim"]  # below the resilience nothing is claimed
    d = rec["diameters"]
    assert d[1] < d[0] and d[1:] == [d[1]] * 5  # n = 3f: the diameter stops shrinking
    assert rec["checks"]["agreement"]["status"] == "violated"
    rep = replay_cli(rec)
    assert rep["diameters"] == d and violates_agreement(rep["diameters"], 0.01)
    assert [float(x) for x in replay_python(rec).diameters] == d

    red = reduce_quiet(rec)
    assert red is not None and red == reduce_quiet(rec)  # deterministic
    assert red["status"] == "violation" and "check:agreement" in red["violated"]
    p = red["params"]
    assert p["rounds"] == 1 and p["d"] == 1 and red["seed"] == 0
    assert red["what"] == "rounds 5 -> 1, d 3 -> 1, seed 1 -> 0"
    rep = replay_cli(red)
    assert rep["diameters"] == red["diameters"] and violates_agreement(rep["diameters"], 0.01)
    assert rep["n"] == 6 and rep["f"] == 2 and rep["rounds"] == 1 and rep["d"] == 1


def test_reduce_failure_of_an_error_and_of_a_success() -> None:
    assert reduce_failure(run_task(task())) is None
    bad = Task("bad", {**task(d=4).params, "engine": "round", "strategy": "equivocate"}, 2)
    rec = run_task(bad)
    red = reduce_failure(rec)
    assert red is not None and red["status"] == "error"
    assert red["error"]["type"] == rec["error"]["type"] == "ValueError"
    assert (red["params"]["rounds"], red["params"]["d"], red["seed"]) == (1, 1, 0)


def test_rule_params_replay_through_the_python_call_and_are_judged_with_them() -> None:
    rec = run_task(task(protocol="mve", n=7, f=1, d=1, rule_params={"center": "mean"}))
    assert rec["status"] == "ok"
    assert set(rec["verdicts"]) == {"mve-mean-contraction", "mve-mean-bias",
                                    "mve-mean-averaging"}
    assert rec["replay"]["command"] is None and "rule_params" in rec["replay"]["note"]
    assert [float(x) for x in replay_python(rec).diameters] == rec["diameters"]
