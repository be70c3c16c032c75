"""Schedulers: when messages are delivered (they delay, hold and release; never drop)."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pytest

from broadcast.bracha import ReliableBroadcast
from netsim.messages import Send
from netsim.protocol import ALL, EMPTY, Protocol, Step
from netsim.sim.schedulers import (
    SCHEDULERS,
    Fifo,
    HeavyTail,
    Partition,
    Reorder,
    Scheduler,
    Starve,
    TargetedViews,
    UniformDelay,
    make_scheduler,
    split_sides,
)
from netsim.sim.simulator import SimResult, SimulationError, Simulator

VEC = np.linspace(-1.0, 1.0, 9)


def rb_sim(n: int, f: int, scheduler: Scheduler, origin: int = 0, seed: int = 0,
           **kw) -> tuple[Simulator, io.StringIO]:
    buf = io.StringIO()
    sim = Simulator(
        n, f,
        lambda i, x: ReliableBroadcast(i, n, f, value=x, expect=((0, 0, origin),)),
        {origin: VEC}, scheduler=scheduler, seed=seed, trace=buf, **kw,
    )
    return sim, buf


def lines(buf: io.StringIO) -> list[dict]:
    return [json.loads(x) for x in buf.getvalue().splitlines()]


def assert_all_deliver(res: SimResult) -> None:
    for i in res.honest:
        assert [d.vector.tobytes() for d in res.outputs[i]] == [VEC.tobytes()]


class Chatter(Protocol):
    """Numbers its messages per destination (the round field) and records, per sender, the
    numbers it receives; answers each message with more messages, up to a budget."""

    def __init__(self, i: int, n: int, budget: int = 30) -> None:
        self.node_id, self.n, self.f = i, n, 0
        self.next = [0] * n
        self.got: dict[int, list[int]] = {j: [] for j in range(n)}
        self.budget = budget

    def _to(self, dst: int) -> tuple[int, Send]:
        seq = self.next[dst]
        self.next[dst] += 1
        return dst, Send((0, seq, self.node_id), np.array([float(seq)]))

    def start(self, now):
        return Step([self._to(d) for _ in range(3) for d in range(self.n) if d != self.node_id])

    def handle(self, sender, message, now):
        assert message.instance[2] == sender and message.vector[0] == message.instance[1]
        self.got[sender].append(message.instance[1])
        if self.budget <= 0:
            return EMPTY
        self.budget -= 1
        dsts = {sender, (sender + 1) % self.n, (self.node_id + 2) % self.n} - {self.node_id}
        return Step([self._to(d) for d in sorted(dsts)])


def chatter_run(scheduler: Scheduler, n: int = 5, seed: int = 0) -> Simulator:
    sim = Simulator(n, 0, lambda i, x: Chatter(i, n), scheduler=scheduler, seed=seed)
    res = sim.run()
    assert res.quiescent
    return sim


def per_channel_in_order(sim: Simulator) -> bool:
    ok = True
    for dst, node in sim.nodes.items():
        for src, seqs in node.got.items():
            # nothing lost, nothing duplicated
            assert sorted(seqs) == list(range(sim.nodes[src].next[dst]))
            ok &= seqs == sorted(seqs)
    return ok


def test_fifo_preserves_per_channel_send_order() -> None:
    sim = chatter_run(Fifo())
    assert per_channel_in_order(sim)
    assert sim.metrics.messages > 200


def test_random_delays_do_reorder_channels() -> None:
    """The check above has teeth: independent random delays break per-channel order."""
    assert not per_channel_in_order(chatter_run(UniformDelay(), seed=1))


def test_fifo_every_message_takes_one_time_unit() -> None:
    sim, buf = rb_sim(4, 1, Fifo())
    res = sim.run()
    assert_all_deliver(res)
    recs = lines(buf)
    assert all(r["t"] == int(r["t"]) for r in recs)
    kinds_at = {(r["kind"], r["t"]) for r in recs if r["src"] != r["dst"]}
    # the origin echoes its own VALUE at once (locally), so its ECHO arrives with it
    assert kinds_at == {("value", 1.0), ("echo", 1.0), ("echo", 2.0), ("ready", 3.0)}
    wire_echo_at_1 = {r["src"] for r in recs if (r["kind"], r["t"]) == ("echo", 1.0)
                      and r["src"] != r["dst"]}
    assert wire_echo_at_1 == {0}
    assert all(t == [3.0] for t in res.output_times.values())


@pytest.mark.parametrize("seed", range(4))
def test_partition_holds_cross_group_messages_until_heal(seed) -> None:
    n, f, heal_at = 7, 2, 5.0
    groups = [{0, 1, 2, 3, 4}, {5, 6}]
    sim, buf = rb_sim(n, f, Partition(groups, heal_at=heal_at), seed=seed)
    res = sim.run()
    assert res.quiescent and res.healed
    assert_all_deliver(res)
    side = {i: g for g, members in enumerate(groups) for i in members}
    recs = lines(buf)
    cross = [r for r in recs if side[r["src"]] != side[r["dst"]]]
    assert cross, "the protocol does send across the cut"
    assert all(r["t"] >= heal_at for r in cross)
    assert any(r["t"] < heal_at for r in recs if side[r["src"]] == side[r["dst"]])
    # the big side (n - f nodes) finishes on its own; the small side only after the heal
    for i in groups[0]:
        assert res.output_times[i][0] < heal_at
    for i in groups[1]:
        assert res.output_times[i][0] >= heal_at


def test_partition_default_groups_and_byzantine_reach_both_sides() -> None:
    n, f = 7, 2
    sched = Partition(heal_at=8.0)
    from netsim.sim.adversary import Honest

    sim, buf = rb_sim(n, f, sched, origin=6, byzantine_ids=(6,), strategy=Honest(), seed=3)
    assert sched.groups == [frozenset({0, 1, 2}), frozenset({3, 4, 5})]
    res = sim.run()
    assert_all_deliver(res)
    recs = lines(buf)
    side = {0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 1}
    early = [r for r in recs if r["t"] < 8.0 and r["src"] != r["dst"]]
    assert all(r["src"] == 6 or r["dst"] == 6 or side[r["src"]] == side[r["dst"]]
               for r in early)
    assert {r["dst"] for r in early if r["src"] == 6} == set(range(6))  # both sides


def test_partition_without_heal_time_is_a_safety_run() -> None:
    n, f = 6, 1
    sim, buf = rb_sim(n, f, Partition(heal_at=None))
    res = sim.run(heal=False)
    assert not res.healed and not res.quiescent
    assert all(out == [] for out in res.outputs.values())  # no side has a quorum
    assert lines(buf) and all((r["src"] < 3) == (r["dst"] < 3) for r in lines(buf))
    assert_all_deliver(sim.run())


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("victim", [None, 0, 2])
def test_starve_delivers_nothing_to_the_victim_before_the_others_deliver(seed, victim):
    n, f = 4, 1
    sim, buf = rb_sim(n, f, Starve(victim), origin=1, seed=seed)
    res = sim.run()
    v = 3 if victim is None else victim
    assert res.healed and res.quiescent
    assert_all_deliver(res)
    last_other = max(res.output_times[i][0] for i in res.honest if i != v)
    to_victim = [r["t"] for r in lines(buf) if r["dst"] == v and r["src"] != v]
    assert to_victim and min(to_victim) >= last_other
    assert res.output_times[v][0] >= last_other


def test_starve_victim_must_be_honest() -> None:
    with pytest.raises(ValueError, match="not an honest node"):
        rb_sim(4, 1, Starve(3), byzantine_ids=(3,))


def _trace(scheduler_factory, seed: int) -> str:
    sim, buf = rb_sim(7, 2, scheduler_factory(), origin=4, seed=seed)
    assert_all_deliver(sim.run())
    return buf.getvalue()


@pytest.mark.parametrize(
    "factory", [UniformDelay, HeavyTail, lambda: UniformDelay(0.5, 4.0), lambda: HeavyTail(2.0, 1)]
)
def test_random_schedulers_draw_only_from_the_simulator_rng(factory) -> None:
    random.seed(1)
    np.random.seed(1)
    a = _trace(factory, 42)
    random.seed(2)  # global random sources are not consulted
    np.random.seed(2)
    state, np_state = random.getstate(), np.random.get_state()[1].copy()
    b = _trace(factory, 42)
    assert a == b
    assert random.getstate() == state  # ... nor advanced
    assert (np.random.get_state()[1] == np_state).all()
    assert _trace(factory, 43) != a


@pytest.mark.parametrize("cls", [UniformDelay, HeavyTail])
def test_delays_are_a_function_of_the_rng_alone(cls) -> None:
    s1, s2 = cls(), cls()
    r1, r2 = random.Random(5), random.Random(5)
    d1 = [s1.delay(0, 1, None, 0.0, r1) for _ in range(200)]
    d2 = [s2.delay(3, 2, None, 7.0, r2) for _ in range(200)]
    assert d1 == d2
    assert all(d >= 0 for d in d1)


def test_delay_ranges_and_parameter_checks() -> None:
    rng = random.Random(0)
    u = UniformDelay(2.0, 3.0)
    assert all(2.0 <= u.delay(0, 1, None, 0.0, rng) <= 3.0 for _ in range(500))
    h = HeavyTail(alpha=1.5, scale=0.25)
    ds = [h.delay(0, 1, None, 0.0, rng) for _ in range(2000)]
    assert min(ds) >= 0.25 and max(ds) > 2.5  # Pareto: bounded below, a long tail
    for bad in [(-1.0, 1.0), (2.0, 1.0)]:
        with pytest.raises(ValueError):
            UniformDelay(*bad)
    for bad in [(0.0, 1.0), (1.0, 0.0), (-1.0, 1.0)]:
        with pytest.raises(ValueError):
            HeavyTail(*bad)


class Hello(Protocol):
    """Sends one message to all at start and records who it hears from, in order."""

    def __init__(self, i: int, n: int) -> None:
        self.node_id, self.n, self.f = i, n, 0
        self.order: list[int] = []

    def start(self, now):
        return Step([(ALL, Send((0, 0, self.node_id), np.zeros(1)))])

    def handle(self, sender, message, now):
        self.order.append(sender)
        return EMPTY


def hello_run(scheduler: Scheduler, n: int = 6, seed: int = 0) -> Simulator:
    sim = Simulator(n, 0, lambda i, x: Hello(i, n), scheduler=scheduler, seed=seed)
    assert sim.run().quiescent
    return sim


def test_reorder_obeys_the_priority_function() -> None:
    n = 6
    calls = []

    def high_ids_first(src, dst, message, now, rng):
        calls.append((src, dst, type(message)))
        return float(n - src)

    sim = hello_run(Reorder(high_ids_first), n)
    for i, node in sim.nodes.items():
        assert node.order == [i, *sorted(set(range(n)) - {i}, reverse=True)]
    assert sorted(calls) == sorted((s, d, Send) for s in range(n) for d in range(n) if s != d)
    # and the opposite order with the opposite priorities
    sim = hello_run(Reorder(lambda src, dst, m, now, rng: 1.0 + src), n)
    for i, node in sim.nodes.items():
        assert node.order == [i, *sorted(set(range(n)) - {i})]


def test_reorder_none_holds_until_quiescence() -> None:
    n = 5
    sim = hello_run(Reorder(lambda src, dst, m, now, rng: None if src == 0 else 1.0), n)
    for i, node in sim.nodes.items():
        if i != 0:
            assert node.order[-1] == 0 and sorted(node.order) == list(range(n))
    assert sim.scheduler.healed


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_an_invalid_delay_is_an_error(bad) -> None:
    with pytest.raises(SimulationError, match="invalid delay"):
        hello_run(Reorder(lambda *a: bad))


def test_make_scheduler_by_name() -> None:
    expected = {"fifo": Fifo, "random": UniformDelay, "heavy-tail": HeavyTail,
                "partition": Partition, "starve": Starve, "targeted": TargetedViews}
    assert set(SCHEDULERS) == set(expected)
    for name, cls in expected.items():
        s = make_scheduler(name)
        assert type(s) is cls and s.name == name and s.describe() == name
        assert not s.healed
    u = make_scheduler("random", low=1.0, high=2.0)
    assert (u.low, u.high) == (1.0, 2.0)
    assert make_scheduler("partition", heal_at=3.0).heal_at == 3.0


def test_make_scheduler_unknown_name_lists_the_names() -> None:
    with pytest.raises(ValueError) as exc:
        make_scheduler("chaos")
    msg = str(exc.value)
    assert "chaos" in msg
    for name in SCHEDULERS:
        assert name in msg


def test_targeted_is_registered_and_targets_agreement_views() -> None:
    """``make_scheduler("targeted")`` in the simulator, on the agreement protocol: the honest
    views of a round differ (the scheduler read the omniscient context), and the run ends."""
    from agreement import AveragingAgreement
    from agreement.adversary import TargetedViews as Reexported
    from agreement.adversary import ValueAttack

    assert Reexported is TargetedViews
    n, f, rounds = 7, 2, 3
    x = np.random.default_rng(3).standard_normal((n, 4))
    sched = make_scheduler("targeted")
    sim = Simulator(
        n, f, lambda i, xi: AveragingAgreement(i, n, f, xi, rounds=rounds), dict(enumerate(x)),
        byzantine_ids=[0, 1], strategy=ValueAttack("split"), scheduler=sched, seed=4,
    )
    res = sim.run()
    assert sched.targeting and all(res.done.values())
    for r in range(rounds):
        origins = {frozenset(sim.nodes[i].views[r].origins) for i in sim.honest}
        assert len(origins) > 1, f"round {r}: every honest view was the same"


def test_targeted_degrades_to_random_delays_for_other_protocols() -> None:
    """On a protocol without per-round vectors (one reliable broadcast) ``targeted`` is the
    ``random`` scheduler, draw for draw: the same trace; unbound, it is a uniform delay."""
    runs = []
    for sched in (make_scheduler("targeted"), make_scheduler("random")):
        sim, buf = rb_sim(7, 2, sched, seed=9)
        res = sim.run()
        assert all(res.done.values())
        runs.append(buf.getvalue())
    assert runs[0] == runs[1] and runs[0]
    t = TargetedViews()
    assert not t.targeting
    d = t.delay(0, 1, Send((0, 0, 0), VEC), 0.0, random.Random(1))
    assert 0 <= d <= 1


def test_split_sides_halves_along_the_widest_pair() -> None:
    pts = np.array([[0.0, 0.0], [10.0, 0.0], [1.0, 5.0], [9.0, -5.0], [5.0, 0.1]])
    side, u = split_sides(pts)
    assert np.isclose(np.linalg.norm(u), 1.0)
    assert side.sum() == 3  # ceil(5/2) upper
    proj = pts @ u
    assert proj[side == 0].max() <= proj[side == 1].min()
    side1, u1 = split_sides(pts[:1])
    assert side1.tolist() == [0] and not u1.any()
