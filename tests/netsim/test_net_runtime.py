"""The real network in one process: the sans-IO agreement protocol over loopback TCP with
mutual TLS, on asyncio and trio. Bounds as in simulation; exactly-once delivery across
dropped connections; crashed and Byzantine nodes."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

from agreement import AveragingAgreement
from netsim.messages import Send
from netsim.net.loopback import LocalCluster, run_local_cluster
from netsim.net.node import NETWORK_STRATEGIES, StrategyProtocol, make_network_strategy
from netsim.net.transport import Network, TransportSettings
from netsim.protocol import ALL, Fault, Protocol, Step

from .harness import LIMIT, check_bounds

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


def _agreement_nodes(n: int, f: int, d: int, rounds: int, seed: int,
                     strategies: dict[int, str] | None = None) -> tuple[list[Protocol],
                                                                        np.ndarray]:
    x = np.random.default_rng(seed).standard_normal((n, d))

    def factory(i: int, xi: object) -> AveragingAgreement:
        return AveragingAgreement(i, n, f, xi, protocol="trimmed-mean", rounds=rounds)

    nodes: list[Protocol] = []
    for i in range(n):
        if strategies and i in strategies:
            nodes.append(StrategyProtocol(i, n, f, strategies[i], factory, x[i], seed=seed))
        else:
            nodes.append(factory(i, x[i]))
    return nodes, x


async def test_agreement_all_honest_over_tls(tmp_path, anyio_backend):
    n, f, rounds = 4, 1, 3
    nodes, _ = _agreement_nodes(n, f, 16, rounds, seed=1)
    with anyio.fail_after(LIMIT):
        reports = await run_local_cluster(nodes, tmp_path, linger=2.0)
    assert all(p.done for p in nodes)
    check_bounds(nodes, n, f, rounds)
    for rep in reports:
        assert rep.fault_counts == {}
        assert rep.peers_done == [p for p in range(n) if p != rep.node_id]
        assert rep.transport["resent_frames"] == 0
        assert len(rep.outputs) == 1 and rep.outputs[0].rounds == rounds
    # every node sent the same traffic as its peers (a symmetric, fault-free run)
    assert len({(r.metrics.messages, r.metrics.bytes) for r in reports}) == 1


@pytest.mark.parametrize("strategy", ["equivocate", "twins", "forge", "flood", "garbage"])
async def test_byzantine_strategies_over_tls(tmp_path, anyio_backend, strategy):
    n, f, rounds = 4, 1, 3
    nodes, _ = _agreement_nodes(n, f, 8, rounds, seed=3, strategies={0: strategy})
    with anyio.fail_after(LIMIT):
        reports = await run_local_cluster(nodes, tmp_path, linger=1.0)
    honest = [p for p in nodes if isinstance(p, AveragingAgreement)]
    assert all(p.done for p in honest)
    check_bounds(honest, n, f, rounds)
    for rep in reports[1:]:
        assert all(flt.sender == 0 for flt in rep.faults), rep.faults  # only against 0
    if strategy == "garbage":
        assert any(r.fault_counts.get("malformed") for r in reports[1:])


async def test_crashed_nodes_do_not_stop_the_others(tmp_path, anyio_backend):
    """n=7, f=2: two nodes never come up (connection refused, retried with backoff)."""
    n, f, rounds = 7, 2, 2
    nodes, _ = _agreement_nodes(n, f, 8, rounds, seed=5)
    settings = TransportSettings(backoff_min=0.01, backoff_max=0.2)
    with anyio.fail_after(LIMIT):
        async with LocalCluster(n, tmp_path, settings=settings) as cluster:
            reports = await cluster.run({i: nodes[i] for i in range(2, n)}, linger=0.5)
    honest = nodes[2:]
    assert all(p.done for p in honest)  # type: ignore[attr-defined]
    check_bounds(honest, n, f, rounds)  # type: ignore[arg-type]
    for rep in reports.values():
        assert rep.transport["reconnects"] > 0  # kept dialing the crashed nodes
        assert rep.fault_counts == {}


class Numbered(Protocol):
    """Each node sends ``k`` vectors to all; ``got[p]`` lists the numbers received from p.
    Calls ``chaos()`` every ``every`` deliveries (to break connections mid-stream)."""

    def __init__(self, i: int, n: int, k: int, d: int, every: int = 0) -> None:
        self.node_id, self.n, self.f = i, n, 0
        self.k, self.d, self.every = k, d, every
        self.got: dict[int, list[int]] = {p: [] for p in range(n)}
        self.handled = 0
        self.chaos = lambda: None

    def start(self, now: float) -> Step:
        return Step([(ALL, Send((0, r, self.node_id), np.full(self.d, r + 1000.0 * self.node_id)))
                     for r in range(self.k)])

    def handle(self, sender: int, message, now: float) -> Step:  # type: ignore[override]
        _, r, origin = message.instance
        assert origin == sender and message.vector[0] == r + 1000.0 * sender
        self.got[sender].append(r)
        self.handled += 1
        if self.every and self.handled % self.every == 0:
            self.chaos()
        return Step()

    @property
    def done(self) -> bool:
        return all(len(v) >= self.k for v in self.got.values())


async def test_dropped_connections_lose_and_duplicate_nothing(tmp_path, anyio_backend):
    n, k = 3, 120
    nodes = [Numbered(i, n, k, d=512, every=17) for i in range(n)]
    settings = TransportSettings(backoff_min=0.001, backoff_max=0.02)
    drops = []
    with anyio.fail_after(LIMIT):
        async with LocalCluster(n, tmp_path, settings=settings) as cluster:
            for node, net in zip(nodes, cluster.networks, strict=True):
                node.chaos = lambda net=net: drops.append(net.drop_connections())
            reports = await cluster.run(dict(enumerate(nodes)), linger=2.0)
    for node in nodes:
        for p in range(n):
            assert node.got[p] == list(range(k)), (node.node_id, p)  # in order, exactly once
    assert sum(drops) > 0
    assert sum(r.transport["reconnects"] for r in reports.values()) > 0
    assert sum(r.transport["resent_frames"] + r.transport["duplicates_dropped"]
               for r in reports.values()) > 0
    assert all(r.fault_counts == {} for r in reports.values())


async def test_agreement_survives_connection_drops(tmp_path, anyio_backend):
    n, f, rounds = 4, 1, 3
    nodes, _ = _agreement_nodes(n, f, 8, rounds, seed=7, strategies={3: "equivocate"})
    settings = TransportSettings(backoff_min=0.001, backoff_max=0.02)
    with anyio.fail_after(LIMIT):
        async with LocalCluster(n, tmp_path, settings=settings) as cluster:
            async def chaos() -> None:
                for _ in range(10):
                    await anyio.sleep(0.01)
                    cluster.networks[0].drop_connections()
                    cluster.networks[2].drop_connections()

            async with anyio.create_task_group() as tg:
                tg.start_soon(chaos)
                await cluster.run(dict(enumerate(nodes)), linger=1.0)
    honest = nodes[:3]
    assert all(p.done for p in honest)
    check_bounds(honest, n, f, rounds)  # type: ignore[arg-type]


async def test_plaintext_mode_is_explicit_and_loopback_only(anyio_backend):
    n, f, rounds = 4, 1, 2
    nodes, _ = _agreement_nodes(n, f, 8, rounds, seed=2)
    with pytest.raises(ValueError, match="keys_dir"):
        LocalCluster(n)  # no TLS material and no explicit plaintext: refused
    with anyio.fail_after(LIMIT):
        reports = await run_local_cluster(nodes, plaintext=True, linger=1.0)
    check_bounds(nodes, n, f, rounds)  # type: ignore[arg-type]
    assert all(r.fault_counts == {} for r in reports)
    with pytest.raises(ValueError, match="TLS needs"):
        Network(0, 4, tls=(None, None), fingerprints={})  # type: ignore[arg-type]


def test_network_strategies_refuse_omniscient_ones():
    assert "equivocate" in NETWORK_STRATEGIES
    with pytest.raises(ValueError, match="omniscient"):
        make_network_strategy("split")
    with pytest.raises(ValueError, match="supported: "):
        make_network_strategy("omniscient")
    f = Fault(0, "x")
    assert f.sender == 0


class Raising(Numbered):
    """A buggy protocol: its ``handle`` raises on the first message from node ``bad_from``."""

    def __init__(self, i: int, n: int, bad_from: int) -> None:
        super().__init__(i, n, k=3, d=2)
        self.session = 7
        self.bad_from = bad_from

    def handle(self, sender: int, message, now: float) -> Step:  # type: ignore[override]
        if sender == self.bad_from:
            raise ZeroDivisionError("a bug in handle")
        return super().handle(sender, message, now)


async def test_a_protocol_exception_is_logged_and_stops_the_node_with_a_clear_error(
        tmp_path, anyio_backend, caplog):
    """The runtime never dies silently: the exception is logged with the node, the session
    and the message (type, instance, sender), and ``run`` raises ``ProtocolError`` with that
    information (the protocol's exception as its cause), within the time limit."""
    from netsim.net.runtime import ProtocolError, Runtime

    n = 3
    caplog.set_level("ERROR", logger="netsim.net.runtime")
    bad = Raising(0, n, bad_from=2)
    with anyio.fail_after(LIMIT):
        async with LocalCluster(n, tmp_path) as cluster:
            others = [Numbered(i, n, k=3, d=2) for i in (1, 2)]

            async def peer(p: Numbered) -> None:
                await Runtime(p, cluster.networks[p.node_id]).run(linger=0.5, timeout=LIMIT)

            errors: list[BaseException] = []
            try:  # the peers run beside it in the test's own task group
                async with anyio.create_task_group() as tg:
                    for p in others:
                        tg.start_soon(peer, p)
                    try:
                        await Runtime(bad, cluster.networks[0]).run(linger=0.5)
                    finally:
                        tg.cancel_scope.cancel()
            except* ProtocolError as group:
                errors.extend(group.exceptions)
    assert len(errors) == 1, errors  # Runtime.run itself raised a ProtocolError
    err = errors[0]
    assert isinstance(err, ProtocolError)
    assert (err.node_id, err.session, err.sender) == (0, 7, 2)
    assert err.message.startswith("send (0, ") and err.message.endswith(", 2)")
    assert isinstance(err.__cause__, ZeroDivisionError)
    assert "node 0, session 7" in str(err) and "from node 2" in str(err)
    assert "ZeroDivisionError(a bug in handle)" in str(err)
    logged = [r for r in caplog.records if r.name == "netsim.net.runtime"]
    assert len(logged) == 1 and logged[0].levelname == "ERROR"
    assert "node 0, session 7" in logged[0].getMessage() and logged[0].exc_info is not None


async def test_a_protocol_exception_in_start_is_a_protocol_error(tmp_path, anyio_backend):
    from netsim.net.runtime import ProtocolError, Runtime

    class BadStart(Numbered):
        def start(self, now: float) -> Step:
            raise RuntimeError("no start")

    with anyio.fail_after(LIMIT):
        async with LocalCluster(2, tmp_path, f=0) as cluster:
            with pytest.raises(ProtocolError, match="handling start") as exc:
                await Runtime(BadStart(0, 2, k=1, d=1), cluster.networks[0]).run(linger=0.1)
    assert exc.value.sender is None and exc.value.session is None


async def test_a_float64_value_in_a_float32_session_is_a_fault_over_tls(tmp_path, anyio_backend):
    """The reported failure end to end: node 3 runs ``mean`` honestly but with a float64 input
    of 1e100 in a float32 session. Before, the value entered the honest float32 views, the
    mean overflowed to inf and the next broadcast raised out of ``handle()``, which ended the
    honest nodes' runtimes. Now it is an ``invalid-value`` fault and they decide."""
    n, f, rounds, d = 4, 1, 2, 3
    x = np.random.default_rng(4).standard_normal((n, d)).astype(np.float32)
    nodes: list[Protocol] = [AveragingAgreement(i, n, f, x[i], protocol="mean", rounds=rounds)
                             for i in range(n - 1)]
    nodes.append(AveragingAgreement(n - 1, n, f, np.full(d, 1e100), protocol="mean",
                                    rounds=rounds))
    from netsim.net.runtime import Runtime

    reports: list = [None] * (n - 1)
    with anyio.fail_after(LIMIT):
        async with LocalCluster(n, tmp_path) as cluster, anyio.create_task_group() as outer:
            # node 3 refuses the float32 values (not its session's dtype): it never decides,
            # so it runs beside the honest nodes until they are done
            outer.start_soon(Runtime(nodes[-1], cluster.networks[-1]).run)

            async def one(i: int) -> None:
                reports[i] = await Runtime(nodes[i], cluster.networks[i]).run(linger=0.5)

            async with anyio.create_task_group() as tg:
                for i in range(n - 1):
                    tg.start_soon(one, i)
            outer.cancel_scope.cancel()
    assert not nodes[-1].done
    for p, rep in zip(nodes[:-1], reports, strict=True):
        assert p.done and p.decision.dtype == np.float32  # type: ignore[attr-defined]
        y = p.decision  # type: ignore[attr-defined]
        assert np.all(x[:-1].min(0) <= y) and np.all(y <= x[:-1].max(0))
        assert rep.fault_counts.get("invalid-value", 0) >= 1
        assert all(flt.sender == n - 1 for flt in rep.faults)
        assert any("dtype float64" in flt.detail for flt in rep.faults)
