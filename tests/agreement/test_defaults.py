"""The adversarial defaults of ``agreement.run`` and ``python -m agreement simulate`` (one
definition, shared), and ``views_differed``: a run whose honest views never differed says so,
so that a test can refuse a run that stressed nothing."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from agreement.cli import add_simulate_parser
from agreement.cli import main as agreement_main
from agreement.inputs import make_inputs
from agreement.run import (
    DEFAULT_SCHEDULER,
    DEFAULT_STRATEGY,
    DEFAULT_VIEWS,
    run,
    views_differ,
)
from netsim.cli_args import ArgumentParser


def test_one_adversarial_default_for_the_api_and_the_cli():
    assert (DEFAULT_STRATEGY, DEFAULT_SCHEDULER, DEFAULT_VIEWS) == (
        "split", "targeted", "omniscient")
    sig = inspect.signature(run).parameters
    assert sig["strategy"].default == DEFAULT_STRATEGY
    assert sig["scheduler"].default == DEFAULT_SCHEDULER
    parser = ArgumentParser(prog="t")
    add_simulate_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["simulate"])
    assert (args.strategy, args.scheduler) == (DEFAULT_STRATEGY, DEFAULT_SCHEDULER)


@pytest.mark.parametrize("protocol,n,f", [
    ("trimmed-mean", 10, 3), ("trimmed-mean", 7, 2), ("mda", 13, 2),
])
@pytest.mark.parametrize("engine", ["message", "round"])
def test_the_defaults_make_honest_views_differ(protocol, n, f, engine):
    for seed in range(3):
        x = make_inputs("gaussian", n, 3, seed)
        res = run(x, f=f, protocol=protocol, rounds=3, seed=seed, engine=engine)
        assert (res.strategy, res.scheduler) == ("split", "targeted")
        assert res.views_differed, f"{protocol} ({n},{f}) seed={seed}: views never differed"
        assert res.as_dict()["views_differed"] is True
        # every round, not only one: the adversary keeps the two sides apart
        assert all(len({frozenset(o) for o in v.values()}) > 1 for v in res.views)


@pytest.mark.parametrize("engine,kw", [
    ("message", dict(scheduler="fifo", strategy="silent")),
    ("round", dict(views="random", strategy="silent")),
])
def test_a_benign_run_reports_that_its_views_never_differed(engine, kw):
    x = make_inputs("gaussian", 7, 3, 1)
    res = run(x, f=2, rounds=3, seed=1, engine=engine, **kw)
    assert res.views_differed is False and res.as_dict()["views_differed"] is False
    # with one common view per round, every honest node has the same output
    assert np.ptp(res.outputs, axis=0).max() == 0


def test_views_differ():
    assert not views_differ([])
    assert not views_differ([{1: (1, 2, 3), 2: (3, 2, 1)}])
    assert views_differ([{1: (1, 2, 3), 2: (1, 2, 3)}, {1: (1, 2), 2: (1, 3)}])


def test_cli_reports_views_differed(capsys):
    base = ["simulate", "--n", "7", "--f", "2", "--dim", "3", "--rounds", "2"]
    assert agreement_main([*base, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["views_differed"] is True and rep["scheduler"] == "targeted"
    assert agreement_main([*base, "--scheduler", "fifo", "--strategy", "silent"]) == 0
    out = capsys.readouterr().out
    assert "warning: the honest views never differed" in out
    assert agreement_main([*base, "--scheduler", "fifo", "--strategy", "silent", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["views_differed"] is False


def test_targeted_views_differ_under_the_first_quorum_gather_too():
    """Plain SENDs: Byzantine values first, each side's honest values before the other's;
    every view is n - f values with both Byzantine ones (equivocated per side)."""
    n, f = 7, 2
    x = make_inputs("gaussian", n, 3, 2)
    res = run(x, f=f, rounds=3, gather="first-quorum", seed=2)
    assert res.gather == "first-quorum" and res.as_dict()["gather"] == "first-quorum"
    assert res.views_differed
    for rnd in res.views:
        assert all(len(o) == n - f and {0, 1} <= set(o) for o in rnd.values())
