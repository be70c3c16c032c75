"""Below the resilience bound (n <= 3f): refused by default, runnable with ``unsafe=True``,
and then broken: these tests show concrete runs that break what n >= 3f+1 guarantees.

What breaks and what does not, with these thresholds (ECHO quorum q = ceil((n+f+1)/2), READY
amplification f+1, delivery 2f+1):

- RB *agreement* survives at any n. Two ECHO quorums, one for h and one for h' (possibly at
  different receivers), share at least 2q - n >= f+1 senders, so an honest node would have
  echoed both: impossible. Hence at most one digest ever gets an ECHO quorum, every honest
  READY is for it (the first one from the quorum, later ones from f+1 READYs, which include
  an honest one), and delivery needs 2f+1 READYs, f+1 of them honest. Nothing in this uses
  n >= 3f+1, so no schedule and no equivocation gives two honest nodes different values;
  ``test_rb_agreement_survives_below_the_bound`` checks it on the seed grid.
- RB *validity/liveness* breaks: at n = 3f there are 2f honest nodes, fewer than q = 2f+1,
  so with silent Byzantine nodes an honest origin's value is never delivered.
- RB *totality* breaks: honest READYs number 2f < 2f+1, so the Byzantine READYs decide who
  delivers; sent to one honest node only, exactly that node delivers.
- The witness *overlap* breaks: two witness sets of n-f = 2f nodes among 3f may share only
  the f Byzantine ones. The adversary lets each half of the honest nodes deliver only its
  own half's values (plus the Byzantine ones) and sends each half a matching report: views
  X ∪ B and Y ∪ B share f < n-f origins.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from broadcast import ReliableBroadcast, WitnessGather
from netsim.messages import Ready, Report, vectors_equal
from netsim.protocol import ALL
from netsim.sim.adversary import CoreStrategy, Silent
from netsim.sim.schedulers import SCHEDULERS, Reorder, make_scheduler
from netsim.sim.simulator import Simulator

from ._harness import (
    DEFAULT_SEEDS,
    FixedEquivocate,
    KindRouted,
    Outcome,
    check_rb,
    check_views,
    make_case,
    rb_factory,
    run_case,
    witness_factory,
)

BELOW = [(2, 1), (3, 1), (5, 2), (6, 2), (8, 3), (9, 3), (12, 4)]
AT_3F = [(3, 1), (6, 2), (9, 3)]
SCHEDS = sorted(SCHEDULERS)
X = np.array([3.0, -1.0, 0.5])

pytestmark = pytest.mark.filterwarnings("ignore:.*unsafe=True:RuntimeWarning")


# -- refused, or warned about --------------------------------------------------------------
@pytest.mark.parametrize("cls", [ReliableBroadcast, WitnessGather])
@pytest.mark.parametrize(("n", "f"), BELOW)
def test_below_the_bound_is_refused(cls, n, f):
    with pytest.raises(ValueError, match=r"n >= 3f\+1") as info:
        cls(0, n, f)
    assert f"n={n}" in str(info.value) and f"f={f}" in str(info.value)


@pytest.mark.parametrize("cls", [ReliableBroadcast, WitnessGather])
@pytest.mark.parametrize(("n", "f"), [(1, 0), (4, 1), (7, 2), (8, 2), (13, 4)])
def test_at_or_above_the_bound_is_silent(cls, n, f):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cls(0, n, f)


@pytest.mark.filterwarnings("default")
@pytest.mark.parametrize(("n", "f"), BELOW)
def test_unsafe_warns_and_runs(n, f):
    with pytest.warns(RuntimeWarning, match=r"n >= 3f\+1"):
        node = ReliableBroadcast(0, n, f, value=X, unsafe=True)
    assert node.start(0.0).messages[0][0] == ALL
    with pytest.warns(RuntimeWarning, match=r"n >= 3f\+1"):
        wg = WitnessGather(0, n, f, value=X, unsafe=True)
    assert wg.start(0.0).messages


# -- liveness / validity -------------------------------------------------------------------
def _silent_run(n, f, sched, seed, unsafe):
    origin = 0
    byz = list(range(n - f, n))
    kw = {"unsafe": True} if unsafe else {}
    return Simulator(n, f, rb_factory(n, f, origin, **kw), {origin: X}, byzantine_ids=byz,
                     strategy=Silent(), scheduler=make_scheduler(sched), seed=seed).run()


@pytest.mark.parametrize("sched", SCHEDS)
@pytest.mark.parametrize(("n", "f"), AT_3F)
def test_silent_byzantine_block_delivery_at_3f(n, f, sched):
    """n = 3f, f silent: 2f honest echoes < q = 2f+1, so no READY is ever sent and the honest
    origin's value is never delivered (validity and liveness broken). One node more and the
    same run delivers everywhere."""
    assert -(-(n + f + 1) // 2) > n - f
    res = _silent_run(n, f, sched, seed=n, unsafe=True)
    assert res.quiescent
    assert all(res.outputs[i] == [] for i in res.honest), f"n={n} f={f} {sched}"
    assert "ready" not in res.metrics.messages_by_kind
    assert not any(res.done.values())
    ok = _silent_run(n + 1, f, sched, seed=n, unsafe=False)
    assert all(len(ok.outputs[i]) == 1 and vectors_equal(ok.outputs[i][0].vector, X)
               for i in ok.honest)


# -- totality ------------------------------------------------------------------------------
@pytest.mark.parametrize("sched", SCHEDS)
@pytest.mark.parametrize(("n", "f"), AT_3F)
def test_byzantine_readies_to_one_node_break_totality_at_3f(n, f, sched):
    """The Byzantine nodes echo honestly but send READY only to node 1: at n = 3f node 1
    alone reaches 2f+1 READYs (2f honest + f Byzantine) and delivers; the other honest nodes
    stay at 2f forever. At n = 3f+1 the 2f+1 honest READYs suffice and everyone delivers."""
    origin, favourite = 0, 1
    for m, expect_all in ((n, False), (n + 1, True)):
        byz = list(range(m - f, m))
        res = Simulator(m, f, rb_factory(m, f, origin, unsafe=True), {origin: X},
                        byzantine_ids=byz, strategy=KindRouted({"ready": {favourite}}),
                        scheduler=make_scheduler(sched), seed=m).run()
        got = sorted(i for i in res.honest if res.outputs[i])
        assert all(vectors_equal(res.outputs[i][0].vector, X) for i in got)
        assert res.quiescent
        if expect_all:
            assert got == list(res.honest), f"n={m} f={f} {sched}: {got}"
        else:
            assert got == [favourite], f"n={m} f={f} {sched}: totality not broken: {got}"


# -- witness overlap -----------------------------------------------------------------------
class SplitViews(CoreStrategy):
    """Honest Byzantine cores, except: the READY for an honest origin's instance reaches only
    that origin's half (``side_x`` or the other honest nodes) and the Byzantine nodes, and
    each honest node gets a report naming its own half and the Byzantine nodes."""

    name = "split-views"

    def __init__(self, side_x) -> None:
        self.side_x = frozenset(side_x)

    def setup(self, ctx) -> None:
        super().setup(ctx)
        self.x = self.side_x
        self.y = frozenset(ctx.honest_ids) - self.x
        self.byz = frozenset(ctx.byzantine_ids)
        m = ctx.n - ctx.f
        self.report_to = {}
        for side, other in ((self.x, self.y), (self.y, self.x)):
            names = sorted(side | self.byz)
            names = sorted((names + sorted(other))[:m])  # pad (n = 3f+1) to n-f names
            for d in side:
                self.report_to[d] = tuple(names)

    def route(self, byz, core, target, msg):  # type: ignore[override]
        dsts = [d for d in range(self.ctx.n) if d != byz] if target == ALL else [target]
        out = []
        for d in dsts:
            if isinstance(msg, Ready) and msg.instance[2] not in self.byz:
                side = self.x if msg.instance[2] in self.x else self.y
                if d not in side and d not in self.byz:
                    continue
            if isinstance(msg, Report) and d in self.report_to:
                msg = Report(msg.session, msg.round, self.report_to[d])
            out.append((byz, d, msg))
        return out


def _split_run(n, f, sched, seed):
    byz = tuple(range(n - f, n))
    honest = [i for i in range(n) if i not in byz]
    side_x = honest[:f]
    d = 3
    inputs = {i: np.arange(d, dtype=np.float64) + 10 * i for i in range(n)}
    strategy = SplitViews(side_x)
    res = Simulator(n, f, witness_factory(n, f, d, unsafe=True), inputs, byzantine_ids=byz,
                    strategy=strategy, scheduler=make_scheduler(sched), seed=seed).run()
    case = dataclasses.replace(make_case("witness", n, f, seed), byzantine_ids=byz,
                               strategy="split-views", d=d)
    return res, check_views(case, res, inputs, strategy, rounds=1), side_x, byz


@pytest.mark.parametrize("sched", SCHEDS)
@pytest.mark.parametrize(("n", "f"), AT_3F)
def test_split_views_break_the_overlap_at_3f(n, f, sched):
    """n = 3f: honest halves X and Y (f nodes each) output views X ∪ B and Y ∪ B, sharing
    only the f Byzantine origins (< n-f = 2f). At n = 3f+1 the same adversary fails."""
    res, checks, side_x, byz = _split_run(n, f, sched, seed=n)
    where = f"n={n} f={f} scheduler={sched} seed={n}"
    assert checks["overlap"], f"overlap not broken: {where}"
    for i in res.honest:
        (view,) = res.outputs[i]
        side = set(side_x) if i in side_x else set(res.honest) - set(side_x)
        assert set(view.origins) == side | set(byz), where
    # everything else still holds: sizes, bitwise values, liveness, no blame on honest nodes
    for prop in ("size", "agreement", "validity", "integrity", "liveness", "faults"):
        assert not checks[prop], f"{prop}: {checks[prop]} {where}"
    res, checks, _, _ = _split_run(n + 1, f, sched, seed=n)
    bad = {p: v for p, v in checks.items() if v}
    assert not bad, f"n={n + 1} f={f} scheduler={sched}: {bad}"


# -- on the seed grid ----------------------------------------------------------------------
@pytest.mark.parametrize(("n", "f"), AT_3F)
def test_rb_agreement_survives_below_the_bound(n, f):
    """See the module docstring: at n = 3f no run of the grid (every scheduler, every
    strategy including equivocate, twins, targeted and forge) makes two honest nodes deliver
    different values, or one node deliver twice; validity, totality or liveness do break."""
    broken = 0
    bad = []
    for seed in range(DEFAULT_SEEDS):
        out = run_case(make_case("rb", n, f, seed), unsafe=True)
        if out.checks["agreement"] or out.checks["integrity"]:
            bad.append(f"{out.case.describe()} --unsafe\n  "
                       + "\n  ".join(out.failures("agreement", "integrity")[:3]))
        broken += bool(out.checks["validity"] or out.checks["totality"]
                       or out.checks["liveness"])
    assert not bad, "\n".join(bad[:5])
    assert broken > 0


class _LowQuorums(ReliableBroadcast):
    """A deliberately broken RB: ECHO quorum and delivery at f+1 instead of q and 2f+1."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self._echo_threshold = self.f + 1
        self._deliver_threshold = self.f + 1


def test_lower_quorums_break_agreement_and_the_checks_see_it():
    """What the quorum sizes protect, and proof that ``check_rb`` has teeth: with quorums of
    f+1, origin 3 sending A to nodes 0, 1 and B to node 2 (whose messages from 0 and 1 are
    slow) makes node 2 deliver B while 0 and 1 deliver A."""
    n, f, origin = 4, 1, 3

    def factory(i, x):
        return _LowQuorums(i, n, f, value=x, expect=((0, 0, origin),))

    def priority(src, dst, msg, now, rng):
        return 5.0 + rng.random() if dst == 2 and src in (0, 1) else rng.random()

    strategy = FixedEquivocate({0, 1})
    res = Simulator(n, f, factory, {origin: X}, byzantine_ids=[origin], strategy=strategy,
                    scheduler=Reorder(priority), seed=3).run()
    values = {i: res.outputs[i][0].vector for i in res.honest}
    assert vectors_equal(values[0], X) and vectors_equal(values[1], X)
    assert not vectors_equal(values[2], X)
    case = dataclasses.replace(make_case("rb", n, f, 3), byzantine_ids=(origin,), origin=origin,
                               strategy="equivocate", flag=True)
    checks = check_rb(Outcome(case, res, {origin: X}, strategy))
    assert checks["agreement"]
    # the real protocol, same run: node 2 fetches A
    res = Simulator(n, f, rb_factory(n, f, origin), {origin: X}, byzantine_ids=[origin],
                    strategy=FixedEquivocate({0, 1}), scheduler=Reorder(priority), seed=3).run()
    assert all(vectors_equal(res.outputs[i][0].vector, X) for i in res.honest)
