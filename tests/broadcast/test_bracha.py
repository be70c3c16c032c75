"""Bracha reliable broadcast (docs/theory.md §3): the state machine by hand, then the simulator
grid.

The grid runs every seed of ``range(DEFAULT_SEEDS)`` for each (n, f) of ``PAIRS`` (n = 3f+1);
each seed is one run whose scheduler, Byzantine strategy and "is the origin Byzantine" cycle
with the seed (see ``_harness``). A failure names the seeds, their parameters and the command
that replays one of them: ``python -m tests.broadcast._harness rb N F SEED``.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broadcast import Delivered, ReliableBroadcast, echo_threshold
from netsim.messages import (
    Echo,
    Fetch,
    Ready,
    Reply,
    Report,
    Send,
    Value,
    digest,
    valid_vector,
    vectors_equal,
)
from netsim.protocol import ALL, EMPTY
from netsim.sim.adversary import STRATEGIES, BadReply, Mixed, Strategy
from netsim.sim.schedulers import SCHEDULERS, Reorder, make_scheduler
from netsim.sim.simulator import Simulator

from ._harness import (
    COMBOS,
    DEFAULT_SEEDS,
    EXPECTED_FAULTS,
    PAIR_IDS,
    PAIRS,
    FixedEquivocate,
    FixedSelective,
    assert_grid,
    assert_slow_grid,
    cached_checks,
    fault_kinds,
    kinds,
    make_case,
    missing_fault,
    rb_factory,
    run_case,
)
from ._harness import main as harness_main

X = np.array([1.5, -2.0, 0.0, 3.25])
INST = (0, 0, 1)  # origin 1
H = digest(X)
THRESHOLD_PAIRS = [(4, 1), (5, 1), (6, 1), (7, 1), (7, 2), (8, 2), (10, 3), (13, 4), (16, 5)]


def rb(n: int = 4, f: int = 1, node: int = 0, **kw) -> ReliableBroadcast:
    return ReliableBroadcast(node, n, f, **kw)


def outputs(step) -> list[Delivered]:
    return [d for d in step.outputs if isinstance(d, Delivered)]


# -- the state machine by hand -------------------------------------------------------------
def test_start_broadcasts_value_to_all():
    node = rb(node=2, value=X)
    step = node.start(0.0)
    assert kinds(step) == [(ALL, "value")]
    assert step.messages[0][1] == Value((0, 0, 2), X)
    assert rb().start(0.0) is EMPTY  # no value, nothing to send


def test_value_from_origin_is_echoed_once():
    node = rb()
    step = node.handle(1, Value(INST, X), 0.0)
    assert step.messages == [(ALL, Echo(INST, H))]
    assert not step.faults and not step.outputs


@pytest.mark.parametrize(("n", "f"), THRESHOLD_PAIRS)
def test_echo_threshold_is_ceil_n_plus_f_plus_1_over_2(n, f):
    assert echo_threshold(n, f) == math.ceil((n + f + 1) / 2)


@pytest.mark.parametrize(("n", "f"), THRESHOLD_PAIRS)
def test_ready_after_exactly_echo_threshold_echoes(n, f):
    q = math.ceil((n + f + 1) / 2)
    node = rb(n, f)
    for k, sender in enumerate(range(n), start=1):
        step = node.handle(sender, Echo(INST, H), 0.0)
        assert not step.faults
        if k < q:
            assert not step.messages, f"READY after only {k} < {q} echoes"
        elif k == q:
            assert step.messages == [(ALL, Ready(INST, H))], f"no READY after {q} echoes"
        else:
            assert not step.messages, "a second READY"


@pytest.mark.parametrize(("n", "f"), THRESHOLD_PAIRS)
def test_echoes_for_different_digests_do_not_add_up(n, f):
    q = math.ceil((n + f + 1) / 2)
    other = digest(X + 1)
    node = rb(n, f)
    senders = list(range(n))
    msgs = [Echo(INST, H)] * (q - 1) + [Echo(INST, other)] * (n - q + 1)
    for s, m in zip(senders, msgs, strict=True):
        step = node.handle(s, m, 0.0)
        assert not step.messages and not step.faults


@pytest.mark.parametrize(("n", "f"), THRESHOLD_PAIRS)
def test_ready_amplification_after_f_plus_1_readies(n, f):
    node = rb(n, f)
    for k, sender in enumerate(range(1, f + 2), start=1):
        step = node.handle(sender, Ready(INST, H), 0.0)
        if k <= f:
            assert not step.messages, f"READY amplified after only {k} <= f readies"
        else:
            assert step.messages == [(ALL, Ready(INST, H))]
    # no value held: readies alone never deliver without it (it will FETCH instead)
    assert not node.deliveries


@pytest.mark.parametrize(("n", "f"), THRESHOLD_PAIRS)
def test_delivery_after_exactly_2f_plus_1_readies(n, f):
    node = rb(n, f, expect=(INST,))
    node.handle(1, Value(INST, X), 0.0)
    assert not node.done
    for k, sender in enumerate(range(n), start=1):
        step = node.handle(sender, Ready(INST, H), 0.0)
        assert not step.faults
        if k < 2 * f + 1:
            assert not step.outputs, f"delivered after only {k} readies"
        elif k == 2 * f + 1:
            (d,) = outputs(step)
            assert d.instance == INST and d.digest == H and vectors_equal(d.vector, X)
            assert not any(isinstance(m, Fetch) for _, m in step.messages)
        else:
            assert not step.outputs, "delivered twice"
    assert node.done and node.deliveries[INST].digest == H


def test_duplicate_and_conflicting_echo_and_ready_are_faults():
    node = rb()
    node.handle(2, Echo(INST, H), 0.0)
    assert fault_kinds(node.handle(2, Echo(INST, H), 0.0)) == [(2, "duplicate")]
    assert fault_kinds(node.handle(2, Echo(INST, digest(X + 1)), 0.0)) == [
        (2, "conflicting-echo")]
    node.handle(3, Ready(INST, H), 0.0)
    assert fault_kinds(node.handle(3, Ready(INST, H), 0.0)) == [(3, "duplicate")]
    assert fault_kinds(node.handle(3, Ready(INST, digest(X + 1)), 0.0)) == [
        (3, "conflicting-ready")]
    # none of them counted twice: one echo and one ready per peer
    inst = node.instances[INST]
    assert inst.echo_count == {H: 1} and inst.ready_count == {H: 1}


def test_second_value_from_origin():
    node = rb()
    node.handle(1, Value(INST, X), 0.0)
    step = node.handle(1, Value(INST, X + 1), 0.0)
    assert fault_kinds(step) == [(1, "equivocation")] and not step.messages
    step = node.handle(1, Value(INST, X), 0.0)
    assert fault_kinds(step) == [(1, "duplicate")] and not step.messages
    assert list(node.instances[INST].store) == [H]


def test_value_from_non_origin_is_a_fault_and_not_echoed():
    node = rb()
    step = node.handle(2, Value(INST, X), 0.0)
    assert fault_kinds(step) == [(2, "value-not-from-origin")] and not step.messages
    # the origin's own VALUE is still accepted afterwards
    assert kinds(node.handle(1, Value(INST, X), 0.0)) == [(ALL, "echo")]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_non_finite_value_is_invalid_and_not_echoed(bad, dtype):
    node = rb()
    v = X.astype(dtype).copy()
    v[2] = bad
    step = node.handle(1, Value(INST, v), 0.0)
    assert fault_kinds(step) == [(1, "invalid-value")] and not step.messages
    # and it is never delivered, even with a full READY quorum for its digest
    for s in range(4):
        step = node.handle(s, Ready(INST, digest(v)), 0.0)
        assert not step.outputs


def test_wrong_dimension_value_is_invalid():
    node = rb(dim=3)
    step = node.handle(1, Value(INST, X), 0.0)  # X has 4 coordinates
    assert fault_kinds(step) == [(1, "invalid-value")] and not step.messages
    ok = rb(dim=4)
    assert kinds(ok.handle(1, Value(INST, X), 0.0)) == [(ALL, "echo")]


def test_broadcast_refuses_invalid_vectors():
    with pytest.raises(ValueError):
        rb().broadcast(0, np.array([1.0, np.nan]))
    with pytest.raises(ValueError):
        rb(dim=3).broadcast(0, X)
    with pytest.raises(ValueError):
        ReliableBroadcast(4, 4, 1)  # node id out of range


@pytest.mark.parametrize(
    "message",
    [Value, Echo, Ready, Fetch],
    ids=lambda m: m.NAME,
)
@pytest.mark.parametrize(
    ("instance", "kind"),
    [((1, 0, 1), "wrong-session"), ((0, 1, 1), "future-round"), ((0, 0, 4), "bad-origin"),
     ((0, 0, 2**16 - 1), "bad-origin")],
)
def test_bad_instances_are_faults_without_state(message, instance, kind):
    node = rb()
    sender = instance[2] if message is Value and instance[2] < 4 else 2
    payload = X if message is Value else H
    step = node.handle(sender, message(instance, payload), 0.0)
    assert fault_kinds(step) == [(sender, kind)]
    assert not step.messages and not step.outputs
    assert node.instances == {}, "a refused instance created state"


def test_unsolicited_reply_creates_no_state():
    node = rb()
    step = node.handle(2, Reply(INST, X), 0.0)
    assert fault_kinds(step) == [(2, "unsolicited-reply")]
    assert node.instances == {}


def test_max_round_window_moves_forward_only():
    node = rb(max_round=0)
    assert fault_kinds(node.handle(2, Echo((0, 2, 1), H), 0.0)) == [(2, "future-round")]
    node.set_max_round(2)
    assert not node.handle(2, Echo((0, 2, 1), H), 0.0).faults
    node.set_max_round(1)
    assert node.max_round == 2
    assert fault_kinds(node.handle(2, Echo((0, 3, 1), H), 0.0)) == [(2, "future-round")]
    # broadcasting a later round opens it
    step = node.broadcast(5, X)
    assert node.max_round == 5 and step.messages == [(ALL, Value((0, 5, 0), X))]


@pytest.mark.parametrize("message", [Report(0, 0, (0, 1, 2)), Send((0, 0, 1), X)],
                         ids=["report", "send"])
def test_unexpected_message_kinds_are_faults(message):
    step = rb().handle(2, message, 0.0)
    assert fault_kinds(step) == [(2, "unexpected-message")]


def _fetch_targets(step) -> list[int]:
    return sorted(t for t, m in step.messages if isinstance(m, Fetch))


@pytest.mark.parametrize(("n", "f"), [(4, 1), (7, 2), (10, 3), (13, 4)])
def test_fetch_goes_to_at_most_f_plus_1_echoers(n, f):
    origin = n - 1
    inst = (0, 0, origin)
    node = rb(n, f)
    echoers = list(range(1, n))  # every node but this one (node 0) echoes H
    for s in echoers:
        node.handle(s, Echo(inst, H), 0.0)
    sent = []
    for s in range(1, 2 * f + 2):
        step = node.handle(s, Ready(inst, H), 0.0)
        sent += _fetch_targets(step)
        assert all(m == Fetch(inst, H) for _, m in step.messages if isinstance(m, Fetch))
    assert sent == echoers[: f + 1], "FETCH must go to the first f+1 echoers, no more"


def test_fetch_path_by_hand():
    """n=7, f=2 at node 0, origin 6: the READY quorum comes before the VALUE."""
    n, f, origin = 7, 2, 6
    inst = (0, 0, origin)
    node = rb(n, f, expect=(inst,))
    for s in (1, 2):  # only two echoers known so far (< f+1)
        node.handle(s, Echo(inst, H), 0.0)
    fetched = []
    for s in (1, 2, 3, 4, 5):
        step = node.handle(s, Ready(inst, H), 0.0)
        assert not step.outputs
        fetched += _fetch_targets(step)
    assert fetched == [1, 2]
    assert _fetch_targets(node.handle(3, Echo(inst, H), 0.0)) == [3]  # the (f+1)-th echoer
    assert _fetch_targets(node.handle(4, Echo(inst, H), 0.0)) == []  # no more than f+1
    # a wrong reply is a fault and delivers nothing
    step = node.handle(1, Reply(inst, X + 1), 0.0)
    assert fault_kinds(step) == [(1, "bad-reply")] and not step.outputs
    # a reply from a node that was not asked
    assert fault_kinds(node.handle(4, Reply(inst, X), 0.0)) == [(4, "unsolicited-reply")]
    # the right one delivers, bitwise
    step = node.handle(2, Reply(inst, X), 0.0)
    (d,) = outputs(step)
    assert d.digest == H and vectors_equal(d.vector, X) and node.done
    # late replies: an honest late one is silently dropped, a second one is a duplicate
    late = node.handle(3, Reply(inst, X), 0.0)
    assert not late.faults and not late.outputs
    assert fault_kinds(node.handle(2, Reply(inst, X), 0.0)) == [(2, "duplicate")]
    # the origin's VALUE arriving now is echoed but not delivered again
    step = node.handle(origin, Value(inst, X), 0.0)
    assert kinds(step) == [(ALL, "echo")] and not step.outputs
    # and this node now serves the value it holds
    assert node.handle(5, Fetch(inst, H), 0.0).messages == [(5, Reply(inst, X))]


def test_value_arriving_after_ready_quorum_delivers_without_reply():
    n, f, origin = 4, 1, 3
    inst = (0, 0, origin)
    node = rb(n, f)
    node.handle(1, Echo(inst, H), 0.0)
    for s in (1, 2, 3):
        node.handle(s, Ready(inst, H), 0.0)
    step = node.handle(origin, Value(inst, X), 0.0)
    (d,) = outputs(step)
    assert vectors_equal(d.vector, X)
    assert (ALL, Echo(inst, H)) in step.messages
    assert not node.handle(1, Reply(inst, X), 0.0)  # the asked echoer's late reply: ignored


def test_fetch_is_answered_also_after_delivery():
    node = rb(expect=(INST,))
    node.handle(1, Value(INST, X), 0.0)
    assert node.handle(2, Fetch(INST, H), 0.0).messages == [(2, Reply(INST, X))]
    for s in (0, 2, 3):
        node.handle(s, Ready(INST, H), 0.0)
    assert node.done
    step = node.handle(3, Fetch(INST, H), 0.0)
    assert step.messages == [(3, Reply(INST, X))] and not step.faults
    # one answer per peer and instance; unknown digests are faults
    assert fault_kinds(node.handle(3, Fetch(INST, H), 0.0)) == [(3, "duplicate")]
    assert fault_kinds(node.handle(1, Fetch(INST, digest(X + 1)), 0.0)) == [(1, "unknown-fetch")]


def test_reply_with_right_digest_before_want_is_unsolicited():
    node = rb()
    node.handle(1, Echo(INST, H), 0.0)
    assert fault_kinds(node.handle(1, Reply(INST, X), 0.0)) == [(1, "unsolicited-reply")]


# -- the simulator grid --------------------------------------------------------------------
@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_grid_covers_every_combination(n, f):
    seen = set()
    for s in range(DEFAULT_SEEDS):
        c = make_case("rb", n, f, s)
        assert len(c.byzantine_ids) == f
        seen.add((c.scheduler, c.strategy, c.byzantine_origin))
    assert seen == set(COMBOS)
    assert {name for name, _, _ in COMBOS} >= set(SCHEDULERS)
    assert {name for _, name, _ in COMBOS} >= set(STRATEGIES)
    assert DEFAULT_SEEDS >= 200


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_validity(n, f):
    """Honest origin: every honest node delivers exactly its vector, bitwise; a Byzantine
    origin's delivered value is one its cores held."""
    assert_grid("rb", "validity", n, f)


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_agreement(n, f):
    assert_grid("rb", "agreement", n, f)


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_integrity(n, f):
    assert_grid("rb", "integrity", n, f)


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_totality(n, f):
    assert_grid("rb", "totality", n, f)


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_liveness_after_healing(n, f):
    assert_grid("rb", "liveness", n, f)


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_no_fault_against_honest_nodes(n, f):
    assert_grid("rb", "faults", n, f)


@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_the_adversary_was_active(n, f):
    """The grid tests something: each hostile strategy leaves its trace, and the FETCH path
    (also with wrong replies from bad-reply nodes) is exercised."""
    fetch_runs = bad_reply_runs = 0
    problems = []
    for s in range(DEFAULT_SEEDS):
        case, _, stats = cached_checks("rb", n, f, s)
        want = EXPECTED_FAULTS.get(case.strategy)
        if case.strategy == "twins" and case.byzantine_origin:
            want = "equivocation"
        if case.strategy == "garbage" and not case.byzantine_origin:
            want = "malformed"
        problems += missing_fault(case, stats, want)
        fetch_runs += stats.get("msg:fetch", 0) > 0
        bad_reply_runs += stats.get("bad-reply", 0) > 0
    assert not problems, "\n".join(problems[:5])
    assert fetch_runs >= 10, f"the FETCH path ran in only {fetch_runs} runs"
    if f >= 2:  # a bad-reply node beside a selective/equivocating origin needs f >= 2
        assert bad_reply_runs >= 1, "no wrong FETCH reply was ever received"


@pytest.mark.slow
@pytest.mark.parametrize(("n", "f"), PAIRS, ids=PAIR_IDS)
def test_rb_grid_slow(n, f):
    assert_slow_grid("rb", n, f)


# -- constructed cases ---------------------------------------------------------------------
def _trace_fetchers(trace: str) -> set[int]:
    return {rec["src"] for rec in map(json.loads, trace.splitlines()) if rec["kind"] == "fetch"}


@pytest.mark.parametrize(("n", "f"), [(7, 2), (10, 3), (13, 4)])
def test_bad_reply_before_right_reply_is_a_fault_and_fetchers_deliver(n, f):
    """Byzantine origin 1 sends its VALUE (and everything else) only to node 0 and to the
    first q-2 honest nodes; node 0 answers FETCH with wrong vectors, and its traffic is
    delivered at once while everything else takes 0.5 to 1. The other honest nodes get the
    READY quorum without the VALUE, FETCH from the first f+1 echoers (node 0 among them),
    receive the wrong reply first, record "bad-reply", and still deliver the origin's value.
    """
    q = math.ceil((n + f + 1) / 2)
    bad, origin = 0, 1
    byz = list(range(f))  # 0: bad-reply, 1: selective origin, the rest silent
    honest = list(range(f, n))
    reached = honest[: q - 2]
    unreached = honest[q - 2:]
    assert unreached, "the construction needs honest nodes the origin skips"
    x = np.linspace(-1.0, 1.0, 5)

    def priority(src, dst, msg, now, rng):
        return 0.0 if bad in (src, dst) else 0.5 + 0.5 * rng.random()

    buf = io.StringIO()
    strategy = Mixed({bad: BadReply(), origin: FixedSelective({bad, *reached})})
    res = Simulator(n, f, rb_factory(n, f, origin), {origin: x}, byzantine_ids=byz,
                    strategy=strategy, scheduler=Reorder(priority), seed=7, trace=buf).run()
    replay = f"(n={n}, f={f}, seed=7, constructed case; rerun this test)"
    assert res.metrics.messages_by_kind.get("fetch", 0) > 0, replay
    assert _trace_fetchers(buf.getvalue()) == set(unreached), replay
    for i in honest:
        (d,) = res.outputs[i]
        assert vectors_equal(d.vector, x), f"node {i} delivered a wrong vector {replay}"
    observers = {o for o, flt in res.faults if flt.kind == "bad-reply"}
    assert observers == set(unreached), f"bad-reply faults seen by {observers} {replay}"
    assert all(flt.sender == bad for _, flt in res.faults if flt.kind == "bad-reply")
    assert not res.faults_against(honest), replay
    assert all(res.done.values())


@pytest.mark.parametrize("seed", range(40))
def test_equivocating_origin_forces_fetch(seed):
    """n=4, f=1: origin 3 sends value A to nodes 0, 1 and value B to node 2. Only A can gather
    an ECHO quorum (0, 1 and the origin); node 2 must FETCH A and delivers it."""
    n, f, origin = 4, 1, 3
    x = np.array([0.25, -7.0, 1e-30], dtype=np.float32)
    buf = io.StringIO()
    sched = make_scheduler(sorted(SCHEDULERS)[seed % len(SCHEDULERS)])
    res = Simulator(n, f, rb_factory(n, f, origin), {origin: x}, byzantine_ids=[origin],
                    strategy=FixedEquivocate({0, 1}), scheduler=sched, seed=seed,
                    trace=buf).run()
    msg = f"seed={seed} n=4 f=1 scheduler={sched.name} strategy=FixedEquivocate({{0, 1}})"
    for i in (0, 1, 2):
        (d,) = res.outputs[i]
        assert vectors_equal(d.vector, x), msg
    assert _trace_fetchers(buf.getvalue()) == {2}, msg
    assert not res.faults_against([0, 1, 2]), msg


class _NonFiniteOrigin(Strategy):
    """The Byzantine origin sends a VALUE with a NaN (or of the wrong length) to everyone."""

    name = "non-finite"

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = vector

    def start(self, now):
        (b,) = self.ctx.byzantine_ids
        return [(b, ALL, Value((0, 0, b), self.vector))]


@pytest.mark.parametrize("vector", [np.array([1.0, np.nan, 2.0]), np.array([1.0, 2.0]),
                                    np.array([np.inf, 0.0, 0.0], dtype=np.float32)],
                         ids=["nan", "wrong-dim", "inf"])
def test_invalid_values_are_never_echoed_nor_delivered(vector):
    n, f, origin = 4, 1, 0

    def factory(i, x):
        return ReliableBroadcast(i, n, f, dim=3, expect=((0, 0, origin),))

    res = Simulator(n, f, factory, {}, byzantine_ids=[origin], strategy=_NonFiniteOrigin(vector),
                    seed=1).run()
    assert all(not res.outputs[i] for i in res.honest)
    assert "echo" not in res.metrics.messages_by_kind
    assert sorted(o for o, flt in res.faults if flt.kind == "invalid-value") == [1, 2, 3]
    assert res.quiescent


# -- exact values --------------------------------------------------------------------------
_specials = st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1e-310,
                             1.0, -1.0, 2.0**-1074, 3.4028234663852886e38])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.one_of(_specials, st.floats(allow_nan=False, allow_infinity=False)),
                    min_size=1, max_size=8),
    dtype=st.sampled_from(["float32", "float64"]),
    scheduler=st.sampled_from(sorted(SCHEDULERS)),
    seed=st.integers(0, 2**32 - 1),
)
def test_delivery_is_bitwise(values, dtype, scheduler, seed):
    """-0.0, subnormals and extremes survive the codec and the digest bit for bit."""
    with np.errstate(over="ignore"):
        x = np.array(values).astype(dtype)
    if not np.isfinite(x).all():  # float64 extremes overflow float32: not a valid value
        x = np.nan_to_num(x, posinf=1.0, neginf=-1.0)
    if not valid_vector(x):  # a squared norm beyond float64: invalid (test_huge_is_invalid)
        x = np.clip(x, -1e150, 1e150)
    n, f = 4, 1
    res = Simulator(n, f, rb_factory(n, f, 0), {0: x}, byzantine_ids=[3],
                    strategy=STRATEGIES["replay"](), scheduler=make_scheduler(scheduler),
                    seed=seed).run()
    for i in res.honest:
        (d,) = res.outputs[i]
        assert d.vector.dtype == x.dtype and d.vector.tobytes() == x.tobytes(), (
            f"seed={seed} scheduler={scheduler} x={x!r}")
        assert d.digest == digest(x)


def test_negative_zero_is_a_different_value():
    a, b = np.array([0.0, 1.0]), np.array([-0.0, 1.0])
    assert digest(a) != digest(b)
    assert not vectors_equal(a, b)


# -- the replay commands replay ------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rb", "witness"])
@pytest.mark.parametrize("seed", [3, 61, 150])
def test_a_seed_replays_the_same_run(kind, seed):
    """The replay command of a failure must reproduce it: same seed, same trace."""
    case = make_case(kind, 7, 2, seed)
    traces = []
    for _ in range(2):
        buf = io.StringIO()
        run_case(case, trace=buf)
        traces.append(buf.getvalue())
    assert traces[0] == traces[1] and traces[0], case.describe()


@pytest.mark.filterwarnings("ignore:.*unsafe=True:RuntimeWarning")
def test_replay_command_line(capsys):
    assert harness_main(["rb", "4", "1", "5"]) == 0
    out = capsys.readouterr().out
    assert "seed=5 n=4 f=1" in out and "all properties hold" in out
    assert harness_main(["witness", "3", "1", "5", "--unsafe"]) in (0, 1)


def test_huge_is_invalid() -> None:
    """A float64 vector whose squared norm exceeds 2^1000 (||v|| > ~3.3e150) is an invalid value,
    like NaN: Gram-based rules cannot compare it (netsim.messages.valid_vector)."""
    from broadcast import ReliableBroadcast

    rb = ReliableBroadcast(0, 4, 1, dim=2)
    assert rb.valid(np.array([1e150, -1e150])) and rb.valid(np.array([3e38], np.float32)[[0, 0]])
    assert not rb.valid(np.array([1e155, 0.0])) and not rb.valid(np.array([np.nan, 0.0]))
