"""One seed drives everything: the same seed and parameters give a byte-identical trace, in
this process and in fresh processes with different hash seeds."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from broadcast.bracha import ReliableBroadcast
from netsim.messages import KIND_NAMES
from netsim.sim.adversary import STRATEGIES, make_strategy
from netsim.sim.schedulers import SCHEDULERS, make_scheduler
from netsim.sim.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]
# (strategy, scheduler, origin); nodes 0..f-1 are Byzantine, so origin 0 is one of them
CASES = [("equivocate", "random", 0), ("garbage", "random", 6), ("twins", "heavy-tail", 0)]


def trace(strategy: str, scheduler: str, origin: int, seed: int, n: int = 7) -> str:
    """The JSON-lines trace of one reliable broadcast from ``origin``."""
    f = (n - 1) // 3
    buf = io.StringIO()
    vec = np.linspace(-2.0, 3.0, 16, dtype=np.float32)
    sim = Simulator(
        n, f,
        lambda i, x: ReliableBroadcast(i, n, f, value=x, expect=((0, 0, origin),)),
        {origin: vec},
        byzantine_ids=tuple(range(f)),
        strategy=make_strategy(strategy),
        scheduler=make_scheduler(scheduler),
        seed=seed,
        trace=buf,
    )
    res = sim.run()
    assert res.quiescent
    return buf.getvalue()


def digest_all(seed: int) -> dict[str, str]:
    """A hash of the trace of every strategy under every scheduler, Byzantine and honest
    origin (n = 4)."""
    return {
        f"{s}/{c}/{o}": hashlib.sha256(trace(s, c, o, seed, n=4).encode()).hexdigest()
        for s in sorted(STRATEGIES)
        for c in sorted(SCHEDULERS)
        for o in (0, 3)
    }


_CHILD = """
import json, sys
from tests.netsim.test_determinism import CASES, digest_all, trace
seed = int(sys.argv[1])
json.dump({"traces": [trace(s, c, o, seed) for s, c, o in CASES], "all": digest_all(seed)},
          sys.stdout)
"""


def run_child(hashseed: str, seed: int) -> dict:
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(seed)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize(("strategy", "scheduler", "origin"), CASES)
def test_same_seed_same_trace_in_process(strategy, scheduler, origin) -> None:
    a = trace(strategy, scheduler, origin, 2024)
    random.seed(99)  # perturb every global random source between the runs
    np.random.seed(99)
    _ = {object(): i for i in range(100)}
    b = trace(strategy, scheduler, origin, 2024)
    assert a == b and a.count("\n") > 50


def test_same_seed_same_trace_in_fresh_processes_with_different_hash_seeds() -> None:
    seed = 77
    here = {"traces": [trace(s, c, o, seed) for s, c, o in CASES], "all": digest_all(seed)}
    a = run_child("0", seed)
    b = run_child("12345", seed)
    assert a["traces"] == here["traces"]
    assert b["traces"] == here["traces"]
    assert a["all"] == b["all"] == here["all"]
    assert len(here["all"]) == 2 * len(STRATEGIES) * len(SCHEDULERS)


@pytest.mark.parametrize(("strategy", "scheduler", "origin"), CASES)
def test_different_seeds_different_traces(strategy, scheduler, origin) -> None:
    traces = [trace(strategy, scheduler, origin, seed) for seed in range(5)]
    assert len(set(traces)) == len(traces)


@pytest.mark.parametrize(("strategy", "scheduler", "origin"), [*CASES, ("honest", "fifo", 0)])
def test_trace_lines_are_valid_json_records(strategy, scheduler, origin) -> None:
    text = trace(strategy, scheduler, origin, 5)
    assert text.endswith("\n")
    names = set(KIND_NAMES.values()) | {"raw"}
    last_t = 0.0
    for line in text.splitlines():
        rec = json.loads(line)
        assert list(rec) == ["t", "src", "dst", "kind", "instance", "size"]
        assert isinstance(rec["t"], float) and rec["t"] >= last_t  # deliveries in time order
        last_t = rec["t"]
        assert all(type(rec[k]) is int and 0 <= rec[k] < 7 for k in ("src", "dst"))
        assert rec["kind"] in names
        inst = rec["instance"]
        assert inst is None or (len(inst) == 3 and all(type(x) is int for x in inst))
        assert inst is not None or rec["kind"] == "raw"
        assert type(rec["size"]) is int and rec["size"] >= 0
        assert json.dumps(rec, separators=(",", ":")) == line  # compact, canonical


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_many_seeds_reproduce_in_fresh_processes(seed) -> None:
    here = digest_all(seed)
    assert run_child(str(seed), seed)["all"] == here
