"""One node process of the real network, honest or Byzantine.

:func:`run_node` binds the node's address from a :class:`~netsim.net.cluster.ClusterConfig`,
builds its :class:`~netsim.net.transport.Network` (mutual TLS unless the configuration is the
explicit plaintext one) and drives a protocol with the :class:`~netsim.net.runtime.Runtime`.

Byzantine nodes over a real network: :class:`StrategyProtocol` runs one of the simulator's
strategies (:mod:`netsim.sim.adversary`) for a single Byzantine id as a sans-IO protocol. Over a
network the adversary is *not* omniscient: a Byzantine process sees only what it receives,
so :class:`LocalAdversaryContext` exposes no honest state and no in-flight messages.
Strategies that only use their own cores, inputs and random source work unchanged
(:data:`NETWORK_STRATEGIES`); those that read honest state (the value attacks of
``agreement.adversary``, which compute each round's vector from the honest vectors) are
refused with an error naming the ones supported.

**Lingering.** A node that has decided keeps serving: slower honest nodes may still need
its echoes, readies and fetch replies (with ``n - f`` nodes finished, a node that is behind
may have no other source of ``n - f`` echoes). It stops as soon as it has evidence that no
one needs it any more, namely every peer announced its decision (the transport's DONE, sent
once a protocol is done; a decided node needs nothing more from anyone) and acknowledged
this node's own DONE, or when :data:`DEFAULT_LINGER` seconds (``linger``) have passed since
its decision, whichever is first (:meth:`netsim.net.runtime.Runtime.finished`). Which peers
are honest is unknown to it, so a peer that never says DONE (crashed, or Byzantine) costs
the whole linger; and a node started, or running, more than ``linger`` seconds behind the
others may find nobody left to serve it. Byzantine processes (:class:`StrategyProtocol`)
are done at once, so they announce DONE at their start and never hold anyone up.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import numpy as np

from ..adversary import AdversaryContext
from ..messages import Message
from ..protocol import Protocol, Step
from ..sim.adversary import STRATEGIES, Strategy, make_strategy
from .cluster import ClusterConfig
from .runtime import NodeReport, Runtime
from .transport import Network, TransportSettings

NETWORK_STRATEGIES: tuple[str, ...] = (
    "bad-reply", "crash", "equivocate", "flood", "forge", "garbage", "honest", "replay",
    "selective", "silent", "twins",
)
"""Strategies of :mod:`netsim.sim.adversary` that need no omniscience and so run over a real
network, one Byzantine process each."""

assert set(NETWORK_STRATEGIES) <= set(STRATEGIES)

DEFAULT_LINGER = 30.0
"""Seconds a node that decided keeps serving peers that have not (module doc): the default
of :func:`run_node`, ``python -m agreement node --linger`` and ``python -m agreement launch``."""


def _unwrap(group: BaseExceptionGroup) -> BaseException:
    """The one exception inside nested task-group exception groups (a timeout, an OSError
    of the listener, a protocol error), so callers see ``TimeoutError`` and not an
    ``ExceptionGroup``; the group itself when it holds several."""
    leaves: list[BaseException] = []

    def walk(g: BaseExceptionGroup) -> None:
        for e in g.exceptions:
            if isinstance(e, BaseExceptionGroup):
                walk(e)
            else:
                leaves.append(e)

    walk(group)
    return leaves[0] if len(leaves) == 1 else group


class LocalAdversaryContext(AdversaryContext):
    """What a single Byzantine process knows: ``n``, ``f``, its own id and input, its own
    seeded random source and the protocol factory (for honest-looking cores). No honest
    state: ``honest`` is empty, and :meth:`in_flight`, :meth:`honest_values` and
    :meth:`views` raise ``NotImplementedError``."""

    def __init__(self, node_id: int, n: int, f: int, factory: Callable[[int, Any], Protocol],
                 own_input: Any, seed: int) -> None:
        self.n, self.f = n, f
        self.byzantine_ids = (node_id,)
        self.honest_ids = tuple(i for i in range(n) if i != node_id)
        self.honest = MappingProxyType({})
        self.rng = random.Random(f"jungle-byzantine:{seed}:{node_id}")
        self.factory = factory
        self.inputs = MappingProxyType({node_id: own_input})
        self._now = 0.0

    @property
    def now(self) -> float:
        return self._now

    def in_flight(self) -> list[tuple[float, int, int, Message | bytes]]:
        raise NotImplementedError(
            "a Byzantine process on a real network cannot see in-flight messages"
        )

    def honest_values(self, round: int) -> np.ndarray | None:
        raise NotImplementedError(
            "a Byzantine process on a real network cannot see the honest nodes' values "
            "(an omniscient strategy runs in the simulator only)"
        )

    def views(self, round: int) -> dict[int, Any] | None:
        raise NotImplementedError(
            "a Byzantine process on a real network cannot see the honest nodes' views "
            "(an omniscient strategy runs in the simulator only)"
        )


class StrategyProtocol(Protocol):
    """A simulator :class:`~netsim.sim.adversary.Strategy` as the protocol of one Byzantine node.

    ``done`` is always true: a Byzantine node has nothing to decide (its honest-looking
    cores may never finish, e.g. an equivocating core that talks to half of the nodes). Its
    runtime serves until every peer said it is done, or until its linger ends.
    """

    def __init__(self, node_id: int, n: int, f: int, strategy: Strategy | str,
                 factory: Callable[[int, Any], Protocol], own_input: Any = None,
                 seed: int = 0) -> None:
        if isinstance(strategy, str):
            strategy = make_network_strategy(strategy)
        self.node_id, self.n, self.f = node_id, n, f
        self.strategy = strategy
        self.ctx = LocalAdversaryContext(node_id, n, f, factory, own_input, seed)
        strategy.setup(self.ctx)

    def _step(self, emissions: list[tuple[int, int, Message | bytes]]) -> Step:
        msgs = []
        for src, target, msg in emissions:
            if src != self.node_id:
                raise RuntimeError(f"strategy on node {self.node_id} tried to send as {src}")
            msgs.append((target, msg))
        return Step(msgs)  # type: ignore[arg-type]

    def start(self, now: float) -> Step:
        self.ctx._now = now
        return self._step(self.strategy.start(now))

    def handle(self, sender: int, message: Message, now: float) -> Step:
        self.ctx._now = now
        return self._step(self.strategy.receive(self.node_id, sender, message, now))

    @property
    def done(self) -> bool:
        return True


def make_network_strategy(name: str, **params: Any) -> Strategy:
    """A strategy that can run over a real network; ``ValueError`` naming those that can for
    any other name (e.g. the omniscient value attacks)."""
    if name not in NETWORK_STRATEGIES:
        raise ValueError(
            f"Byzantine strategy {name!r} cannot run over a real network (it needs the "
            "simulator's omniscient adversary, or is unknown); supported: "
            f"{', '.join(NETWORK_STRATEGIES)}"
        )
    return make_strategy(name, **params)


async def run_node(
    config: ClusterConfig,
    node_id: int,
    protocol: Protocol,
    *,
    settings: TransportSettings | None = None,
    linger: float = DEFAULT_LINGER,
    timeout: float | None = None,
    bind_host: str | None = None,
    on_decided: Callable[[Runtime], None] | None = None,
    stop_on_signals: bool = False,
) -> NodeReport:
    """Run ``protocol`` as node ``node_id`` of ``config`` until it is finished (see
    :meth:`netsim.net.runtime.Runtime.run`). ``on_decided(runtime)`` is called as soon as the
    protocol is done (e.g. to write the output before lingering). With
    ``stop_on_signals``, SIGTERM or SIGINT ends the run early and still returns the report.
    After deciding it serves the peers for up to ``linger`` seconds (module doc, "Lingering").
    ``timeout`` raises ``TimeoutError``; a failure inside the node's tasks (e.g. an
    ``OSError`` of its listener) is raised as itself, not as an exception group."""
    entry = config.node(node_id)
    net = Network(
        node_id, config.n,
        {e.id: (e.host, e.port) for e in config.nodes if e.id != node_id},
        tls=config.ssl_contexts(node_id), fingerprints=config.fingerprints,
        settings=settings,
    )
    await net.listen(bind_host or entry.host, entry.port)
    rt = Runtime(protocol, net)
    try:
        return await _drive(rt, linger, timeout, on_decided, stop_on_signals)
    except BaseExceptionGroup as group:
        raise _unwrap(group) from None


async def _drive(rt: Runtime, linger: float, timeout: float | None,
                 on_decided: Callable[[Runtime], None] | None,
                 stop_on_signals: bool) -> NodeReport:
    import anyio

    if on_decided is None and not stop_on_signals:
        return await rt.run(linger=linger, timeout=timeout)

    async def watch() -> None:
        await rt.decided.wait()
        if on_decided is not None:
            on_decided(rt)

    async def signals() -> None:
        import signal

        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
            async for _ in received:
                rt.stop()
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        if stop_on_signals:
            tg.start_soon(signals)
        report = await rt.run(linger=linger, timeout=timeout)
        tg.cancel_scope.cancel()
    return report
