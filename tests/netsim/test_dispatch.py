"""The one Step dispatcher, fault log and metrics type (netsim.dispatch)."""

from __future__ import annotations

import numpy as np
import pytest

from netsim import (
    ALL,
    Dispatcher,
    Fault,
    FaultLog,
    InvalidTarget,
    Metrics,
    Step,
    Wire,
    destinations,
    encode,
)
from netsim.messages import Send, Value


def _vec() -> np.ndarray:
    return np.arange(3, dtype=np.float32)


def _recorder(me: int, n: int, **kw):
    sent: list[tuple[int, int, Wire]] = []
    local: list[tuple[int, Wire]] = []
    d = Dispatcher(me, n, send=lambda s, t, w: sent.append((s, t, w)),
                   local=lambda s, w: local.append((s, w)), **kw)
    return d, sent, local


def test_destinations_expand_all_in_order_and_reject_bad_targets() -> None:
    assert list(destinations(ALL, 2, 4)) == [0, 1, 2, 3]
    assert destinations(3, 2, 4) == (3,)
    assert destinations(2, 2, 4) == (2,)
    for bad in (4, -2, 100):
        with pytest.raises(InvalidTarget, match=f"node 2 sent to invalid target {bad}"):
            destinations(bad, 2, 4)


def test_a_message_to_all_is_encoded_once_sent_to_peers_and_delivered_locally() -> None:
    m = Metrics()
    d, sent, local = _recorder(1, 4, metrics=m)
    msg = Send((0, 0, 1), _vec())
    d.apply(Step([(ALL, msg)]))
    assert [(s, t) for s, t, _ in sent] == [(1, 0), (1, 2), (1, 3)]
    assert len({id(w) for _, _, w in sent} | {id(w) for _, w in local}) == 1  # one encoding
    (src, w), = local
    assert src == 1 and w.local is msg and w.payload == encode(msg) and w.kind == "send"
    size = len(encode(msg))
    assert (m.messages, m.bytes) == (3, 3 * size)  # the local copy is not traffic
    assert m.messages_by_node == {1: 3} and m.bytes_by_kind == {"send": 3 * size}


def test_self_and_point_to_point_targets() -> None:
    m = Metrics()
    d, sent, local = _recorder(0, 3, metrics=m)
    v = Value((0, 0, 0), _vec())
    d.apply(Step([(0, v), (2, v)]))
    assert [(s, t) for s, t, _ in sent] == [(0, 2)] and len(local) == 1
    assert m.messages == 1 and m.messages_by_kind == {"value": 1}  # no entry for the self copy


def test_raw_bytes_go_out_as_they_are_and_codec_off_keeps_the_object() -> None:
    d, sent, local = _recorder(0, 2)
    d.apply(Step([(ALL, b"\x00junk")]))
    assert sent[0][2].payload == b"\x00junk" and sent[0][2].kind == "raw"
    assert local[0][1].local == b"\x00junk" and local[0][1].message is None
    msg = Send((0, 0, 0), _vec())
    w = Wire.of(msg, codec=False)
    assert w.payload is msg and w.size == len(encode(msg))


def test_invalid_target_raises_before_anything_is_sent() -> None:
    m = Metrics()
    d, sent, local = _recorder(0, 3, metrics=m)
    with pytest.raises(InvalidTarget):
        d.apply(Step([(3, Send((0, 0, 0), _vec()))]))
    assert not sent and not local and m.messages == 0


def test_outputs_and_faults_of_a_step() -> None:
    outs: list[tuple[int, list]] = []
    log = FaultLog()
    d, _, _ = _recorder(2, 4, faults=log, outputs=lambda node, o: outs.append((node, list(o))))
    d.apply(Step(outputs=["x", "y"], faults=[Fault(1, "bad", "why"), Fault(3, "bad")]))
    assert outs == [(2, ["x", "y"])]
    assert log.entries == [(2, Fault(1, "bad", "why")), (2, Fault(3, "bad"))]
    assert log.counts == {"bad": 2} and log.faults == [Fault(1, "bad", "why"), Fault(3, "bad")]


def test_fault_log_keeps_the_first_limit_and_counts_every_fault() -> None:
    log = FaultLog(limit=10)
    for i in range(1500):
        log.record(0, Fault(i % 4, "malformed" if i % 3 else "flood", str(i)))
    assert len(log.entries) == 10 and [f.detail for f in log.faults] == [str(i) for i in range(10)]
    assert log.counts == {"malformed": 1000, "flood": 500} and log.total == 1500
    other = FaultLog(limit=None)
    other.record(1, Fault(0, "stalled"))
    both = log.merged(other)
    assert both.counts == {"malformed": 1000, "flood": 500, "stalled": 1}
    assert both.entries[-1] == (1, Fault(0, "stalled")) and len(both.entries) == 11
    assert log.counts == {"malformed": 1000, "flood": 500}  # merged copies, never mutates
    with pytest.raises(ValueError, match="limit"):
        FaultLog(limit=-1)


def test_the_blocking_driver_runs_any_protocol_with_the_one_dispatcher() -> None:
    """netsim's driver knows no agreement: it runs a Bracha broadcast (sessions 0 and 1,
    threads over queues) from a factory, the self copies delivered locally; garbage and a
    message for a far session are faults, not exceptions."""
    import threading

    from broadcast.bracha import ReliableBroadcast
    from netsim.net.driver import InProcessNetwork, SessionNode

    n, f = 4, 1
    net = InProcessNetwork(n)
    nodes = [SessionNode(net.endpoint(i), timeout=10.0) for i in range(n)]
    vec = _vec()
    got: dict[int, list] = {}

    def work(i: int) -> None:
        out = []
        for s in (0, 1):
            proto = nodes[i].run(lambda i=i, s=s: ReliableBroadcast(
                i, n, f, session=s, value=vec + s if i == s else None, expect=((s, 0, s),)), s)
            out.append(proto.deliveries[(s, 0, s)].vector)
        nodes[i].serve(0.3)
        got[i] = out

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(got) == list(range(n))
    for i in range(n):
        assert [np.asarray(v).tolist() for v in got[i]] == [vec.tolist(), (vec + 1).tolist()]
        assert nodes[i].fault_counts == {}
    d = nodes[0]
    d._route(1, b"junk", 1)
    d._route(1, encode(Send((50, 0, 1), vec)), 1)
    assert d.fault_counts == {"malformed": 1, "stale-session": 1}
    assert [flt.sender for flt in d.faults] == [1, 1]


def test_a_byzantine_core_sending_to_an_invalid_target_is_a_simulation_error() -> None:
    """The adversary's cores expand targets with the same destinations(): a bad one stops
    the run with SimulationError, as an honest node's does."""
    from netsim.sim.adversary import Honest
    from netsim.sim.simulator import SimulationError, Simulator

    class _Bad:
        def __init__(self, i: int) -> None:
            self.node_id, self.n, self.f, self.done = i, 4, 1, False

        def start(self, now: float) -> Step:
            return Step([(9, Send((0, 0, self.node_id), _vec()))] if self.node_id == 0 else [])

        def handle(self, sender: int, message: object, now: float) -> Step:
            return Step()

    with pytest.raises(SimulationError, match="node 0 sent to invalid target 9"):
        Simulator(4, 1, lambda i, x: _Bad(i), byzantine_ids=(0,), strategy=Honest()).run()
