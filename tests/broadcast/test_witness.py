"""The witness gather (docs/theory.md §4): by hand, then the simulator grid, then several rounds.

Grid: every seed of ``range(DEFAULT_SEEDS)`` for each (n, f) of ``PAIRS``, every node an
origin with its own distinct vector; the seed cycles through (scheduler, strategy, "all f
ids Byzantine" or fewer). Replay one case with
``python -m tests.broadcast._harness witness N F SEED``.

Note: a view need not contain every honest origin (the adversary may delay one honest node
for as long as it likes), so no test asserts that.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from broadcast import View, WitnessGather
from netsim.messages import Echo, Ready, Report, Value, digest, vectors_equal
from netsim.protocol import ALL, Protocol, Step
from netsim.sim.adversary import make_strategy
from netsim.sim.schedulers import make_scheduler

from ._harness import (
    DEFAULT_SEEDS,
    EXPECTED_FAULTS,
    PAIR_IDS,
    PAIRS,
    SCHEDULER_NAMES,
    STRATEGY_NAMES,
    assert_grid,
    assert_slow_grid,
    cached_checks,
    check_views,
    fault_kinds,
    make_case,
    missing_fault,
    simulate,
)


def vec(i: int, d: int = 3) -> np.ndarray:
    return np.arange(d, dtype=np.float64) + 10.0 * i


def deliver(wg: WitnessGather, origin: int, x: np.ndarray, rnd: int = 0) -> Step:
    """Make ``wg`` RB-deliver ``x`` for ``(0, rnd, origin)``: the VALUE, then 2f+1 READYs."""
    inst = (0, rnd, origin)
    out = Step()
    out.extend(wg.handle(origin, Value(inst, x), 0.0))
    for s in range(2 * wg.f + 1):
        out.extend(wg.handle(s, Ready(inst, digest(x)), 0.0))
    return out


def views(step: Step) -> list[View]:
    return [v for v in step.outputs if isinstance(v, View)]


def reports(step: Step) -> list[tuple[int, Report]]:
    return [(t, m) for t, m in step.messages if isinstance(m, Report)]


# -- by hand -------------------------------------------------------------------------------
def test_start_gathers_round_zero():
    wg = WitnessGather(2, 4, 1, value=vec(2), dim=3)
    step = wg.start(0.0)
    assert step.messages == [(ALL, Value((0, 0, 2), vec(2)))]
    assert not wg.done


def test_report_when_n_minus_f_values_then_view_with_n_minus_f_witnesses():
    n, f = 4, 1
    wg = WitnessGather(0, n, f, dim=3)
    assert not reports(deliver(wg, 0, vec(0))) and not reports(deliver(wg, 1, vec(1)))
    step = deliver(wg, 2, vec(2))
    assert reports(step) == [(ALL, Report(0, 0, (0, 1, 2)))]  # |V| reached n-f = 3
    assert not views(step)
    # reports: from 0 (itself) and 2 contained in V; 1's names 3, not yet delivered
    assert not views(wg.handle(0, Report(0, 0, (0, 1, 2)), 0.0))
    assert not views(wg.handle(1, Report(0, 0, (0, 1, 3)), 0.0))
    assert not views(wg.handle(2, Report(0, 0, (0, 1, 2)), 0.0))
    step = wg.handle(3, Report(0, 0, (0, 1, 2)), 0.0)  # the third witness: n-f = 3
    (view,) = views(step)
    assert view.round == 0 and view.origins == (0, 1, 2) and view.witnesses == (0, 2, 3)
    assert all(vectors_equal(view.values[i], vec(i)) for i in range(3))
    assert view.matrix().shape == (3, 3) and vectors_equal(view.matrix()[1], vec(1))
    assert wg.done
    # a later delivery neither re-reports nor outputs again, and the view is a snapshot
    step = deliver(wg, 3, vec(3))
    assert not reports(step) and not views(step)
    assert view.origins == (0, 1, 2)


def test_reports_become_witnesses_when_their_values_arrive():
    n, f = 4, 1
    wg = WitnessGather(1, n, f, dim=3)
    for k in (0, 2, 3):
        assert not wg.handle(k, Report(0, 0, (0, 2, 3)), 0.0)
    deliver(wg, 0, vec(0))
    deliver(wg, 2, vec(2))
    step = deliver(wg, 3, vec(3))  # V = {0, 2, 3}: all three reports are witnesses now
    (view,) = views(step)
    assert view.origins == (0, 2, 3) and view.witnesses == (0, 2, 3)
    assert reports(step) == [(ALL, Report(0, 0, (0, 2, 3)))]


@pytest.mark.parametrize(
    ("report", "kind"),
    [
        (Report(0, 0, (0, 1)), "bad-report"),  # n-f = 3 origins needed
        (Report(0, 0, (0, 1, 2, 3)), "bad-report"),
        (Report(0, 0, (0, 1, 4)), "bad-report"),  # origin >= n
        (Report(1, 0, (0, 1, 2)), "wrong-session"),
        (Report(0, 3, (0, 1, 2)), "future-round"),  # window 2: rounds 0..2
        (Report(0, 2**32 - 1, (0, 1, 2)), "future-round"),
    ],
)
def test_bad_reports_are_faults_without_state(report, kind):
    wg = WitnessGather(0, 4, 1, dim=3)
    step = wg.handle(2, report, 0.0)
    assert fault_kinds(step) == [(2, kind)]
    assert wg.state == {}


def test_duplicate_and_conflicting_reports():
    wg = WitnessGather(0, 4, 1, dim=3)
    assert not wg.handle(2, Report(0, 0, (0, 1, 2)), 0.0).faults
    assert fault_kinds(wg.handle(2, Report(0, 0, (0, 1, 2)), 0.0)) == [(2, "duplicate")]
    assert fault_kinds(wg.handle(2, Report(0, 0, (0, 1, 3)), 0.0)) == [(2, "conflicting-report")]
    assert wg.state[0].reports == {2: frozenset({0, 1, 2})}


def test_window_of_future_rounds():
    """Reports and RB messages for rounds up to current + window are accepted (and kept);
    beyond it they are ``future-round`` faults that create no state."""
    wg = WitnessGather(0, 4, 1, dim=3, window=2)
    assert wg.max_round == 2
    assert not wg.handle(1, Report(0, 2, (0, 1, 2)), 0.0).faults
    assert not wg.handle(1, Echo((0, 2, 1), digest(vec(1))), 0.0).faults
    assert fault_kinds(wg.handle(1, Report(0, 3, (0, 1, 2)), 0.0)) == [(1, "future-round")]
    assert fault_kinds(wg.handle(1, Echo((0, 3, 1), digest(vec(1))), 0.0)) == [
        (1, "future-round")]
    assert 3 not in wg.state and (0, 3, 1) not in wg.rb.instances
    wg.gather(0, vec(0))
    assert wg.max_round == 2
    step = wg.gather(1, vec(0) + 1)
    assert step.messages == [(ALL, Value((0, 1, 0), vec(0) + 1))]
    assert wg.max_round == 3 and wg.current == 1
    assert not wg.handle(1, Report(0, 3, (0, 1, 2)), 0.0).faults
    assert fault_kinds(wg.handle(1, Report(0, 4, (0, 1, 2)), 0.0)) == [(1, "future-round")]
    assert fault_kinds(wg.handle(2, Ready((0, 4, 2), digest(vec(2))), 0.0)) == [
        (2, "future-round")]
    assert sorted(wg.state) == [2, 3]


def test_rounds_by_hand():
    """Three rounds at node 0 of n=4, f=1, each view from its own round's values only."""
    n, f = 4, 1
    wg = WitnessGather(0, n, f, dim=3, rounds=3)
    for r in range(3):
        wg.gather(r, vec(0) + r)
        for o in range(n - 1):
            deliver(wg, o, vec(o) + r, rnd=r)
        out = Step()
        for k in range(n - 1):
            out.extend(wg.handle(k, Report(0, r, (0, 1, 2)), 0.0))
        (view,) = views(out)
        assert view.round == r and view.origins == (0, 1, 2)
        assert all(vectors_equal(view.values[o], vec(o) + r) for o in range(3))
        assert wg.done == (r == 2)
    # a late delivery of an old round's value changes nothing
    assert not views(deliver(wg, 3, vec(3), rnd=0))


def test_invalid_value_is_not_in_any_view():
    wg = WitnessGather(0, 4, 1, dim=3)
    step = wg.handle(1, Value((0, 0, 1), np.array([1.0, np.nan, 0.0])), 0.0)
    assert fault_kinds(step) == [(1, "invalid-value")]
    step = wg.handle(2, Value((0, 0, 2), np.zeros(4)), 0.0)  # wrong dimension
    assert fault_kinds(step) == [(2, "invalid-value")]


# -- the simulator grid --------------------------------------------------------------------
@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_view_size(n, f):
    """n-f <= |V| <= n, made final by at least n-f witnesses."""
    assert_grid("witness", "size", n, f)


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_views_overlap_in_n_minus_f(n, f):
    """|V_i ∩ V_j| >= n-f (as sets of origins) for every pair of honest nodes."""
    assert_grid("witness", "overlap", n, f)


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_shared_origins_have_bitwise_equal_vectors(n, f):
    assert_grid("witness", "agreement", n, f)


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_view_values_are_what_origins_broadcast(n, f):
    """An honest origin's entry is bitwise its vector; a Byzantine one's is a value its cores
    held."""
    assert_grid("witness", "validity", n, f)


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_one_view_per_round(n, f):
    assert_grid("witness", "integrity", n, f)


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_liveness_after_healing(n, f):
    """Every honest node outputs its view and is ``done``; the run quiesces."""
    assert_grid("witness", "liveness", n, f)


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_no_fault_against_honest_nodes(n, f):
    assert_grid("witness", "faults", n, f)


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_grid_coverage_and_adversary_activity(n, f):
    seen = set()
    problems = []
    for s in range(DEFAULT_SEEDS):
        case, _, stats = cached_checks("witness", n, f, s)
        seen.add((case.scheduler, case.strategy, case.flag))
        assert len(case.byzantine_ids) == f if case.flag else len(case.byzantine_ids) < f
        want = {**EXPECTED_FAULTS, "twins": "equivocation"}.get(case.strategy)
        problems += missing_fault(case, stats, want if case.byzantine_ids else None)
    assert len(seen) == len(SCHEDULER_NAMES) * len(STRATEGY_NAMES) * 2
    assert not problems, "\n".join(problems[:5])


@pytest.mark.slow
@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_witness_grid_slow(n, f):
    assert_slow_grid("witness", n, f)


# -- several rounds in the simulator -------------------------------------------------------
class Rounds(Protocol):
    """Drives ``WitnessGather.gather(r, x + r)`` for r = 0 .. rounds-1: round r+1 starts when
    the view of round r is out (or a later one: views of different rounds may come out of
    order at a slow node)."""

    def __init__(self, node_id: int, n: int, f: int, x: np.ndarray, rounds: int = 3,
                 window: int = 2) -> None:
        self.node_id, self.n, self.f = node_id, n, f
        self.wg = WitnessGather(node_id, n, f, dim=x.shape[0], window=window, rounds=rounds)
        self.x, self.rounds = x, rounds
        self.started: set[int] = set()

    def _begin(self, r: int) -> Step:
        self.started.add(r)
        return self.wg.gather(r, self.x + r)

    def start(self, now: float) -> Step:
        return self._begin(0)

    def handle(self, sender, message, now) -> Step:
        step = self.wg.handle(sender, message, now)
        if not step.outputs:
            return step
        out = Step(list(step.messages), list(step.outputs), list(step.faults))
        for view in step.outputs:
            nxt = view.round + 1
            if nxt < self.rounds and nxt not in self.started:
                out.extend(self._begin(nxt))
        return out

    @property
    def done(self) -> bool:
        return all(r in self.wg.views for r in range(self.rounds))


def run_rounds(case, rounds=3, window=2, strategy=None, scheduler=None):
    n, f = case.n, case.f
    sim, inputs, strategy = simulate(case, lambda i, x: Rounds(i, n, f, x, rounds, window),
                                     strategy=strategy, scheduler=scheduler)
    res = sim.run()
    checks = check_views(case, res, inputs, strategy, rounds=rounds,
                         value_of=lambda i, r: inputs[i] + r)
    return res, checks


def rounds_replay(case) -> str:
    return (f"python -c \"from tests.broadcast.test_witness import *; "
            f"print(run_rounds(make_case('witness', {case.n}, {case.f}, {case.seed}))[1])\"")


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_three_rounds(n, f):
    """gather(r) for r = 0, 1, 2 under every (scheduler, strategy): each round's views have
    the witness properties and hold that round's values; messages for rounds within the
    window are accepted (no fault against an honest node, even a starved one), and the flood
    strategy's far-future copies are refused as ``future-round`` faults."""
    failures = []
    for seed in range(len(SCHEDULER_NAMES) * len(STRATEGY_NAMES) * 2):
        case = make_case("witness", n, f, seed)
        res, checks = run_rounds(case)
        bad = [f"{p}: {v}" for p, vs in checks.items() for v in vs[:2]]
        if case.strategy == "flood" and case.byzantine_ids and not any(
            flt.kind == "future-round" for _, flt in res.faults
        ):
            bad.append("flood: no future-round fault")
        if bad:
            failures.append(f"{case.describe()}\n  3 rounds, replay: {rounds_replay(case)}"
                            + "\n  " + "\n  ".join(bad[:4]))
    assert not failures, f"{len(failures)} failing runs:\n" + "\n".join(failures[:5])


def test_lagging_node_beyond_the_window():
    """Regression: n=4, f=1, node 3 Byzantine but honest-behaving, node 2 starved until the
    others are done: nodes 0, 1, 3 run 4 rounds (0..3) without it. When node 2 finally hears
    them it is at round 0 with window 2; it must still accept their round-3 messages (every
    round of the session is accepted, whatever the window) and complete every round."""
    n, f = 4, 1
    case = make_case("witness", n, f, 0)
    case = dataclasses.replace(case, byzantine_ids=(3,))
    res, _ = run_rounds(case, rounds=4, strategy=make_strategy("honest"),
                        scheduler=make_scheduler("starve"))
    assert not res.faults_against(res.honest)
    assert all(res.done.values())
