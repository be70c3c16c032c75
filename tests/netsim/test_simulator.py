"""The deterministic simulator, with Bracha reliable broadcast as the protocol under test."""

from __future__ import annotations

import io
import json
from collections import Counter

import numpy as np
import pytest

from broadcast.bracha import Delivered, ReliableBroadcast
from netsim.codec import DIGEST_MESSAGE_SIZE, VECTOR_OVERHEAD, wire_size
from netsim.messages import Echo, Send, Value
from netsim.protocol import ALL, EMPTY, Protocol, Step
from netsim.sim.adversary import Strategy
from netsim.sim.schedulers import Fifo, Starve, UniformDelay
from netsim.sim.simulator import SimResult, SimulationError, Simulator, simulate

VEC = np.array([1.5, -0.0, 3e-39, 1e38, -7.25], dtype=np.float32)  # incl. a subnormal


def rb(n: int, f: int, origin: int, **kw):
    return lambda i, x: ReliableBroadcast(i, n, f, value=x, expect=((0, 0, origin),), **kw)


def make(n: int, f: int, origin: int = 0, vec: np.ndarray = VEC, **kw) -> Simulator:
    return Simulator(n, f, rb(n, f, origin), {origin: vec}, **kw)


def trace_of(sim_kw: dict, run_kw: dict | None = None) -> tuple[SimResult, str]:
    buf = io.StringIO()
    res = make(**sim_kw, trace=buf).run(**(run_kw or {}))
    return res, buf.getvalue()


def delivered_bytes(res: SimResult) -> dict[int, list[bytes]]:
    return {i: [d.vector.tobytes() for d in res.outputs[i]] for i in res.honest}


def nonzero(d: dict) -> dict:
    return {k: v for k, v in d.items() if v}


def assert_all_deliver(res: SimResult, origin: int, vec: np.ndarray) -> None:
    for i in res.honest:
        assert len(res.outputs[i]) == 1, (i, res.outputs[i])
        d = res.outputs[i][0]
        assert isinstance(d, Delivered)
        assert d.instance == (0, 0, origin)
        assert d.vector.dtype == vec.dtype
        assert d.vector.tobytes() == vec.tobytes()
        assert res.done[i]


@pytest.mark.parametrize(("n", "f"), [(1, 0), (2, 0), (4, 1), (7, 2), (10, 3)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_honest_run_quiesces_and_everyone_delivers_the_exact_vector(n, f, seed) -> None:
    origin = seed % n
    res = make(n, f, origin, seed=seed).run()
    assert res.quiescent and res.healed is False
    assert res.honest == tuple(range(n)) and res.byzantine_ids == ()
    assert res.seed == seed and (res.n, res.f) == (n, f)
    assert_all_deliver(res, origin, VEC)
    assert res.faults == []
    for i in res.honest:
        assert len(res.output_times[i]) == 1
        assert (res.output_times[i][0] > 0 or n == 1) and res.output_times[i][0] <= res.time


@pytest.mark.parametrize("n", [1, 2, 4, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_metrics_count_wire_messages_exactly(n, dtype) -> None:
    f = (n - 1) // 3
    origin = n - 1
    vec = np.arange(6, dtype=dtype)
    buf = io.StringIO()
    res = make(n, f, origin, vec, scheduler=Fifo(), trace=buf).run()
    assert_all_deliver(res, origin, vec)
    m = res.metrics
    expected = {"value": n - 1, "echo": n * (n - 1), "ready": n * (n - 1)}
    assert nonzero(m.messages_by_kind) == nonzero(expected)
    vsize = VECTOR_OVERHEAD + vec.nbytes
    assert vsize == wire_size(Value((0, 0, origin), vec))
    exp_bytes = {"value": (n - 1) * vsize, "echo": n * (n - 1) * DIGEST_MESSAGE_SIZE,
                 "ready": n * (n - 1) * DIGEST_MESSAGE_SIZE}
    assert nonzero(m.bytes_by_kind) == nonzero(exp_bytes)
    assert m.messages == sum(expected.values())
    assert m.bytes == sum(exp_bytes.values())
    by_node = {i: 2 * (n - 1) + (n - 1 if i == origin else 0) for i in range(n)}
    assert nonzero(m.messages_by_node) == nonzero(by_node)
    assert sum(m.bytes_by_node.values()) == m.bytes
    assert m.faults_by_kind == {}
    # the trace has every delivery, the local ones too; the wire ones add up to the metrics
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    wire = [x for x in lines if x["src"] != x["dst"]]
    assert len(wire) == m.messages and sum(x["size"] for x in wire) == m.bytes
    assert len(lines) - len(wire) == 2 * n + 1  # self: echo, ready each, the origin's value
    assert res.events == len(lines)
    as_dict = m.as_dict()
    assert as_dict["messages"] == m.messages and list(as_dict["messages_by_kind"]) == sorted(
        as_dict["messages_by_kind"]
    )


@pytest.mark.parametrize("seed", range(6))
def test_metrics_under_random_delays(seed) -> None:
    """With reordering a node may see 2f+1 READYs before the VALUE and FETCH it: every
    FETCH between honest nodes is answered by exactly one REPLY."""
    n, f = 7, 2
    res = make(n, f, 3, seed=seed).run()
    assert_all_deliver(res, 3, VEC)
    k = res.metrics.messages_by_kind
    assert (k["value"], k["echo"], k["ready"]) == (n - 1, n * (n - 1), n * (n - 1))
    assert k.get("fetch", 0) == k.get("reply", 0)
    assert set(k) <= {"value", "echo", "ready", "fetch", "reply"}
    assert res.faults == []


@pytest.mark.parametrize("seed", [0, 5, 11])
@pytest.mark.parametrize("strategy", [None, "garbage", "equivocate"])
def test_codec_on_and_off_agree(seed, strategy) -> None:
    from netsim.sim.adversary import make_strategy

    n, f = 7, 2
    results = {}
    for codec in (True, False):
        kw = dict(n=n, f=f, origin=0, seed=seed, codec=codec)
        if strategy is not None:
            kw |= dict(byzantine_ids=(0, 4), strategy=make_strategy(strategy))
        results[codec] = trace_of(kw)
    (on, t_on), (off, t_off) = results[True], results[False]
    assert t_on == t_off and t_on
    assert delivered_bytes(on) == delivered_bytes(off)
    assert on.metrics.as_dict() == off.metrics.as_dict()
    assert on.faults == off.faults
    assert (on.events, on.time, on.quiescent) == (off.events, off.time, off.quiescent)
    if strategy == "garbage":  # raw bytes are decoded in both modes
        assert off.metrics.faults_by_kind["malformed"] > 0


def test_codec_off_passes_vectors_by_reference_codec_on_copies() -> None:
    n, f = 4, 1
    vec = np.arange(8.0)
    for codec in (True, False):
        res = make(n, f, 0, vec, codec=codec, seed=3).run()
        assert_all_deliver(res, 0, vec)
        for i in range(1, n):
            shared = np.shares_memory(res.outputs[i][0].vector, vec)
            assert shared == (not codec), (codec, i)


def test_until_stops_early_and_resuming_gives_the_uninterrupted_run() -> None:
    n, f, seed = 7, 2, 4
    full, full_trace = trace_of(dict(n=n, f=f, origin=2, seed=seed))

    buf = io.StringIO()
    sim = make(n, f, 2, seed=seed, trace=buf)
    res = sim.run(until=lambda s: any(s.outputs.values()))
    assert not res.quiescent
    assert sum(len(v) for v in res.outputs.values()) == 1  # stopped right at the first one
    first = res.events
    assert 0 < first < full.events
    res2 = sim.run()
    assert res2.quiescent and res2.events == full.events
    assert buf.getvalue() == full_trace
    assert delivered_bytes(res2) == delivered_bytes(full)
    assert res2.metrics.as_dict() == full.metrics.as_dict()


def test_max_time_stops_early_and_loses_nothing() -> None:
    n, f = 4, 1
    full, full_trace = trace_of(dict(n=n, f=f, scheduler=Fifo()))
    buf = io.StringIO()
    sim = make(n, f, scheduler=Fifo(), trace=buf)
    res = sim.run(max_time=1.5)
    assert not res.quiescent
    assert res.time <= 1.5
    assert all(json.loads(x)["t"] <= 1.5 for x in buf.getvalue().splitlines())
    assert all(v == [] for v in res.outputs.values())  # READYs arrive at t = 3
    assert all(t > 1.5 for t, *_ in sim.context.in_flight())
    res2 = sim.run()
    assert res2.quiescent
    assert buf.getvalue() == full_trace
    assert_all_deliver(res2, 0, VEC)
    assert res2.output_times == full.output_times


def test_max_events_raises_with_the_seed() -> None:
    n, f, seed = 4, 1, 987_654_321
    events = make(n, f, seed=seed).run().events
    assert make(n, f, seed=seed, max_events=events).run().quiescent  # exactly enough
    with pytest.raises(SimulationError, match=f"seed={seed}"):
        make(n, f, seed=seed, max_events=events - 1).run()


class _Impersonator(Strategy):
    name = "impersonator"

    def __init__(self, when: str, as_node: int) -> None:
        self.when, self.as_node = when, as_node

    def start(self, now):
        if self.when == "start":
            return [(self.as_node, ALL, Value((0, 0, self.as_node), np.zeros(5, np.float32)))]
        return []

    def receive(self, byz, sender, message, now):
        if self.when == "receive":
            return [(self.as_node, 0, Echo((0, 0, 0), bytes(32)))]
        return []


@pytest.mark.parametrize("when", ["start", "receive"])
def test_a_strategy_cannot_send_as_an_honest_node(when) -> None:
    sim = make(4, 1, byzantine_ids=(3,), strategy=_Impersonator(when, as_node=1))
    with pytest.raises(SimulationError, match="honest node 1"):
        sim.run()


def test_a_strategy_can_send_as_its_byzantine_node() -> None:
    res = make(4, 1, byzantine_ids=(3,), strategy=_Impersonator("receive", as_node=3)).run()
    assert res.quiescent
    assert_all_deliver(res, 0, VEC)
    assert {flt.sender for _, flt in res.faults} == {3}


@pytest.mark.parametrize(
    ("n", "f", "byz"),
    [
        (4, 1, (1, 2)),  # more than f
        (4, 0, (0,)),
        (4, 1, (4,)),  # out of range
        (4, 1, (-1,)),
        (4, 4, ()),  # f >= n
        (4, 5, ()),
        (4, -1, ()),
        (0, 0, ()),
    ],
)
def test_invalid_constructor_arguments(n, f, byz) -> None:
    with pytest.raises(ValueError):
        Simulator(n, f, lambda i, x: None, {}, byzantine_ids=byz)  # type: ignore[arg-type]


def test_byzantine_ids_are_deduplicated_and_sorted() -> None:
    sim = make(7, 2, byzantine_ids=[5, 1, 5])
    assert sim.byzantine_ids == (1, 5)
    assert sim.honest == (0, 2, 3, 4, 6)
    assert set(sim.nodes) == set(sim.honest)


def test_starve_safety_run_then_liveness() -> None:
    n, f = 4, 1
    buf = io.StringIO()
    sim = make(n, f, scheduler=Starve(), trace=buf, seed=8)
    res = sim.run(heal=False)
    victim = 3
    assert res.outputs[victim] == []
    assert not res.done[victim] and not res.healed and not res.quiescent
    assert_all_deliver_except(res, victim)
    assert not any(json.loads(x)["dst"] == victim and json.loads(x)["src"] != victim
                   for x in buf.getvalue().splitlines())
    held = [x for x in sim.context.in_flight() if x[0] == float("inf")]
    assert held and all(dst == victim for _, _, dst, _ in held)
    # the liveness run: healing releases everything and the victim delivers too
    res2 = sim.run()
    assert res2.healed and res2.quiescent
    assert_all_deliver(res2, 0, VEC)
    # a safety run followed by a liveness run is the same run as one healed run
    one, one_trace = trace_of(dict(n=n, f=f, scheduler=Starve(), seed=8))
    assert buf.getvalue() == one_trace
    assert one.healed and one.output_times == res2.output_times


def assert_all_deliver_except(res: SimResult, victim: int) -> None:
    for i in res.honest:
        if i != victim:
            assert [d.vector.tobytes() for d in res.outputs[i]] == [VEC.tobytes()]


def test_trace_to_a_file_survives_a_resumed_run(tmp_path) -> None:
    path = tmp_path / "trace.jsonl"
    sim = make(4, 1, scheduler=Starve(), trace=path, seed=2)
    sim.run(heal=False)
    sim.run()
    _, expected = trace_of(dict(n=4, f=1, scheduler=Starve(), seed=2))
    assert path.read_text(encoding="utf-8") == expected


def test_simulate_helper_matches_simulator() -> None:
    res = simulate(4, 1, rb(4, 1, 0), {0: VEC}, seed=6, heal=True)
    res2 = make(4, 1, seed=6).run()
    assert delivered_bytes(res) == delivered_bytes(res2)
    assert res.metrics.as_dict() == res2.metrics.as_dict()


# -- the protocol interface as the simulator drives it ------------------------------------


class _BadTarget(Protocol):
    def __init__(self, i: int, n: int) -> None:
        self.node_id, self.n, self.f = i, n, 0

    def start(self, now):
        return Step([(self.n, Send((0, 0, self.node_id), np.zeros(1)))])

    def handle(self, sender, message, now):
        return EMPTY


def test_sending_to_an_invalid_target_is_an_error() -> None:
    with pytest.raises(SimulationError, match="invalid target"):
        Simulator(2, 0, lambda i, x: _BadTarget(i, 2)).run()


class _Echoer(Protocol):
    """Sends one SEND to all; outputs (sender, value) for every message it receives."""

    def __init__(self, i: int, n: int) -> None:
        self.node_id, self.n, self.f = i, n, 0

    def start(self, now):
        return Step([(ALL, Send((0, 0, self.node_id), np.full(2, float(self.node_id))))])

    def handle(self, sender, message, now):
        return Step(outputs=[(sender, float(message.vector[0]), now)])


def test_self_messages_are_local_immediate_and_not_counted() -> None:
    n = 5
    res = Simulator(n, 0, lambda i, x: _Echoer(i, n), scheduler=UniformDelay(1.0, 2.0)).run()
    for i in range(n):
        got = sorted(res.outputs[i])
        assert [s for s, _, _ in got] == list(range(n))
        assert all(v == float(s) for s, v, _ in got)
        own = [t for s, _, t in got if s == i]
        assert own == [0.0]  # delivered locally at once, not after a scheduled delay
        assert all(1.0 <= t <= 2.0 for s, _, t in got if s != i)
    assert res.metrics.messages == n * (n - 1)
    assert Counter(res.metrics.messages_by_node) == Counter({i: n - 1 for i in range(n)})
