"""The blocking driver: one process (or thread) takes part in successive sans-IO protocol
instances, one per session, over a blocking :class:`Network` (no event loop in the caller).

This is how a torch training loop (:class:`learning.CollaborativeSGD`) runs agreement: the
caller blocks in :meth:`SessionNode.run` until its protocol is ``done``. It is generic over
the protocol: ``run(factory, session)`` builds the instance with ``factory()``
(:class:`learning.AgreementNode` passes one that builds ``agreement.AveragingAgreement``);
netsim knows nothing of what the messages mean.

The network is an interface (:class:`Network`: ``node_id``, ``n``, ``send(target, body)``,
``recv(timeout) -> (sender, body) | None``). Two implementations:

- :class:`InProcessNetwork`: n endpoints in one process connected by queues (nodes run as
  threads), for experiments and tests;
- :class:`TransportNetwork`: netsim's real network (:class:`netsim.net.transport.Network`:
  reliable authenticated channels, mutual TLS over TCP, one node per process), whose anyio
  event loop runs in a background thread of the process (a blocking portal).
  ``TransportNetwork.from_config("cluster.toml", node_id)`` uses a cluster configuration
  (:mod:`netsim.net.cluster`); ``TransportNetwork.from_torchrun(workdir)`` finds the peers
  through torchrun's store (:mod:`netsim.net.rendezvous`).

Steps are applied by the one dispatcher (:class:`netsim.dispatch.Dispatcher`): every message
is encoded once with the one codec, sent to each addressed peer, and this node's own copy is
handled locally, never on the wire. Bytes the codec rejects are faults against their
sender, never exceptions. Bounded memory against hostile peers: messages for sessions more
than ``window`` ahead of this node, or older than its ``window`` most recent sessions, are
dropped with a fault (``stale-session``); at most ``64·n²`` messages are buffered per future
session (then ``flood``); the fault log (:class:`netsim.dispatch.FaultLog`) keeps the first
1000 faults and counts all of them by kind.

A protocol that raises (a bug: hostile input is a fault) never dies silently: the exception
is logged (logger :attr:`SessionNode.logger`) with the node, the session and the message
(type, instance, sender), and :meth:`SessionNode.run` / :meth:`~SessionNode.serve` raise
:class:`netsim.net.runtime.ProtocolError`; the node is then stopped for good.

**Liveness.** A node that has waited ``report_after`` seconds for a session logs (warning)
what it is waiting for, again every ``report_after`` seconds, and the ``TimeoutError`` says
the same: the round it is in and, per peer, the last round it heard of in this session
(:meth:`SessionNode.waiting_for`), e.g. ``session 12 round 3 of 4: waiting for nodes 2, 5
(nothing in this session from 5); heard round 3 from 0, 1, 4, 6``. A witness gather needs
values from ``n - f`` nodes only, so up to f silent peers never stall an honest node.

**Finishing.** :meth:`SessionNode.finish` is the driver's linger (as
:mod:`netsim.net.node`'s for the CLI node): after its last session a node announces that it
is done (a network may implement the optional ``announce_done()`` / ``peers_done()`` /
``flushed()``: :class:`TransportNetwork` with the transport's DONE frame,
:class:`InProcessNetwork` in its hub) and keeps serving until every peer announced it too
and this node's last messages were acknowledged, or ``linger`` seconds passed; then
:meth:`SessionNode.close` shuts the network down (its optional ``close()``).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import typing
from collections.abc import Callable, Iterable
from typing import Any

from ..codec import DecodeError, decode
from ..dispatch import Dispatcher, FaultLog, KeepsFaults, Wire
from ..messages import Message
from ..protocol import Fault, Protocol, Step
from .runtime import ProtocolError, describe_message

logger = logging.getLogger(__name__)


class Network(typing.Protocol):
    """What a node needs from a transport (authenticated point-to-point channels).

    Optional, for :meth:`SessionNode.finish` (module doc, "Finishing"):
    ``announce_done()``, ``peers_done() -> set[int]``, ``flushed() -> bool`` and
    ``close()``; a network without them is served for the whole linger."""

    node_id: int
    n: int

    def send(self, target: int, body: bytes) -> None:
        """Send an encoded message to node ``target`` (never this node)."""

    def recv(self, timeout: float | None) -> tuple[int, bytes] | None:
        """The next ``(authenticated sender, body)``, or None after ``timeout`` seconds."""


class _Endpoint:
    def __init__(self, hub: InProcessNetwork, node_id: int) -> None:
        self.hub, self.node_id, self.n = hub, node_id, hub.n

    def send(self, target: int, body: bytes) -> None:
        if not 0 <= target < self.n or target == self.node_id:
            raise ValueError(f"bad target {target} for node {self.node_id}")
        self.hub.queues[target].put((self.node_id, bytes(body)))
        with self.hub.lock:
            self.hub.messages += 1
            self.hub.bytes += len(body)

    def recv(self, timeout: float | None) -> tuple[int, bytes] | None:
        try:
            return self.hub.queues[self.node_id].get(timeout=timeout)
        except queue.Empty:
            return None

    def announce_done(self) -> None:
        """Tell every peer that this node has finished (recorded in the hub, for good: a
        hub serves one run; build a new :class:`InProcessNetwork` for the next)."""
        with self.hub.lock:
            self.hub.done.add(self.node_id)

    def peers_done(self) -> set[int]:
        """The peers that announced they have finished."""
        with self.hub.lock:
            return self.hub.done - {self.node_id}

    def flushed(self) -> bool:
        """Always true: a queue delivers at once."""
        return True


class InProcessNetwork:
    """``n`` endpoints in one process, connected by thread-safe queues (FIFO per receiver;
    senders are authenticated by construction). Counts messages and bytes.

    Pass ``net.endpoint(i)`` (not the hub itself) as node ``i``'s network."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        self.queues: list[queue.Queue[tuple[int, bytes]]] = [queue.Queue() for _ in range(n)]
        self.lock = threading.Lock()
        self.messages = 0
        self.bytes = 0
        self.done: set[int] = set()  # the endpoints that announced they have finished

    def endpoint(self, i: int) -> _Endpoint:
        if not 0 <= i < self.n:
            raise ValueError(f"node id {i} out of range({self.n})")
        return _Endpoint(self, i)


class TransportNetwork:
    """:class:`Network` over netsim's real network (:class:`netsim.net.transport.Network`).

    The transport's event loop (uvloop's when installed) runs in a background thread (an
    anyio blocking portal);
    ``send`` queues a body on the peer's reliable channel (never blocks; a peer cut off by
    the transport, e.g. for stalling, is a fault the transport records), ``recv`` takes the
    next delivered body. Delivered bodies wait in a queue of at most ``max_pending``
    messages; when it is full, the delivering channel waits (backpressure on that peer
    only), so memory stays bounded whatever the peers send.
    """

    def __init__(self, node_id: int, n: int, *, tls: Any, fingerprints: dict[int, str] | None,
                 host: str = "127.0.0.1", port: int = 0, settings: Any = None,
                 max_pending: int = 100_000) -> None:
        from anyio.from_thread import start_blocking_portal

        from .runtime import event_loop
        from .transport import Network as _Net

        self.node_id, self.n = node_id, n
        self._q: queue.Queue[tuple[int, bytes]] = queue.Queue(maxsize=max_pending)
        self._cm = start_blocking_portal(*event_loop("asyncio"))  # uvloop when installed
        self._portal = self._cm.__enter__()
        try:
            self.transport = self._portal.call(
                lambda: _Net(node_id, n, tls=tls, fingerprints=fingerprints, settings=settings))
            self.port: int = self._portal.call(self.transport.listen, host, port)
        except BaseException:
            self._cm.__exit__(None, None, None)
            raise
        self._future: Any = None
        self._done_seq: dict[int, int] | None = None
        self._closed = False
        # sends are batched: queued here by the caller's thread, handed to the event loop
        # in one callback per batch (flush), never one blocking thread hop per message
        self._loop: Any = self._portal.call(asyncio.get_running_loop)
        self._out: list[tuple[int, bytes]] = []
        self._out_lock = threading.Lock()
        self._flush_pending = False  # a _send_queued callback is scheduled, not yet run

    @classmethod
    def from_config(cls, config: Any, node_id: int, *, settings: Any = None,
                    bind_host: str | None = None) -> TransportNetwork:
        """Node ``node_id`` of a cluster configuration (a :class:`netsim.net.cluster.
        ClusterConfig` or the path of its ``cluster.toml``), listening and dialling."""
        from .cluster import load_config

        cfg = load_config(config) if isinstance(config, str | bytes) or hasattr(
            config, "__fspath__") else config
        entry = cfg.node(node_id)
        net = cls(node_id, cfg.n, tls=cfg.ssl_contexts(node_id),
                  fingerprints=cfg.fingerprints, host=bind_host or entry.host,
                  port=entry.port, settings=settings)
        net.start({e.id: (e.host, e.port) for e in cfg.nodes if e.id != node_id})
        return net

    @classmethod
    def from_torchrun(cls, workdir: Any, *, f: int | None = None, settings: Any = None,
                      **rendezvous: Any) -> tuple[TransportNetwork, Any]:
        """This process's node under ``torchrun``: peers found through torchrun's TCPStore
        (:func:`netsim.net.rendezvous.torchrun_cluster`: a *trusted* bootstrap that exchanges
        addresses and certificate fingerprints; ``workdir`` receives this node's key and the
        cluster config). Returns ``(network, config)``; the node id is ``RANK``."""
        from .rendezvous import torchrun_cluster

        cfg, rank = torchrun_cluster(workdir, f=f, **rendezvous)
        return cls.from_config(cfg, rank, settings=settings), cfg

    def start(self, addresses: dict[int, tuple[str, int]]) -> None:
        """Set the peers' addresses and start serving and dialling."""
        self.transport.addresses = dict(addresses)
        q = self._q

        async def deliver(sender: int, body: bytes) -> None:
            # no copy: the transport hands a body (bytes, or a read-only memoryview of the
            # frame's own buffer) that stays valid; decode reads it in place
            try:
                q.put_nowait((sender, body))
                return
            except queue.Full:
                pass
            import anyio

            while True:
                await anyio.sleep(0.005)
                try:
                    q.put_nowait((sender, body))
                    return
                except queue.Full:
                    pass

        self._future = self._portal.start_task_soon(self.transport.run, deliver)

    def send(self, target: int, body: bytes) -> None:
        """Queue ``body`` for node ``target``: it goes to the transport, in order, at the next
        :meth:`flush` (which :meth:`recv`, :meth:`announce_done` and :meth:`close` call
        first, and :meth:`send` after :data:`FLUSH_EVERY` queued sends)."""
        if not 0 <= target < self.n or target == self.node_id:
            raise ValueError(f"bad target {target} for node {self.node_id}")
        with self._out_lock:
            self._out.append((target, body if type(body) is bytes else bytes(body)))
            full = len(self._out) >= FLUSH_EVERY
        if full:
            self.flush()

    def flush(self) -> None:
        """Hand every queued send to the transport's event loop in one callback (it does
        not wait for the loop: the transport's ``send`` never blocks; a cut-off peer is a
        fault the transport records). While a callback is scheduled and not yet run, later
        sends join it: one wake-up of the loop for them all, in order."""
        with self._out_lock:
            if not self._out or self._flush_pending:
                return
            self._flush_pending = True
        self._loop.call_soon_threadsafe(self._send_queued)

    def _send_queued(self) -> None:
        with self._out_lock:  # in the event loop's thread
            items, self._out = self._out, []
            self._flush_pending = False
        send = self.transport.send
        for target, body in items:
            send(target, body)

    def recv(self, timeout: float | None) -> tuple[int, bytes] | None:
        """The next delivered message, or None after ``timeout``; queued sends are flushed
        first (the messages of the step this node just took, in one batch). If the
        transport's event loop task ended with an exception, that is logged and raised as
        ``RuntimeError`` (instead of waiting, silently, for messages that can no longer
        come)."""
        self.flush()
        try:
            return self._q.get_nowait()
        except queue.Empty:
            pass
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            self._check_transport()
            left = None if end is None else end - time.monotonic()
            try:
                return self._q.get(timeout=0.1 if left is None else max(0.0, min(left, 0.1)))
            except queue.Empty:
                if left is not None and left <= 0.1:
                    self._check_transport()
                    return None

    def _check_transport(self) -> None:
        fut = self._future
        if fut is None or not fut.done() or fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            logger.error("node %d: the transport stopped: %r", self.node_id, exc,
                         exc_info=(type(exc), exc, exc.__traceback__))
            raise RuntimeError(f"node {self.node_id}: the transport stopped "
                               f"({type(exc).__name__}: {exc})") from exc

    @property
    def faults(self) -> list[Fault]:
        """The transport's recorded faults (stalled or cut-off peers, bad frames, ...)."""
        return list(self.transport.faults)

    def announce_done(self) -> None:
        """Send the transport's DONE to every peer (after all data sent so far, in order)."""
        tr = self.transport
        self.flush()  # the DONE after every message sent so far

        def announce() -> None:
            tr.announce_done()
            self._done_seq = {p: ob.next_seq for p, ob in tr.outboxes.items()}

        self._portal.call(announce)

    def peers_done(self) -> set[int]:
        """The peers whose DONE arrived."""
        return set(self._portal.call(lambda: set(self.transport.peer_done)))

    def flushed(self) -> bool:
        """Every live peer acknowledged all data up to this node's DONE (false before
        :meth:`announce_done`); a peer the transport cut off counts as flushed."""
        done_seq = self._done_seq
        if done_seq is None:
            return False

        def check() -> bool:
            obs = self.transport.outboxes
            return all(obs[p].cut is not None or obs[p].acked >= k for p, k in done_seq.items())

        return bool(self._portal.call(check))

    def close(self) -> None:
        """Stop the transport and its event-loop thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        if self._future is not None:
            self._future.cancel()
        self._cm.__exit__(None, None, None)


FLUSH_EVERY = 64
"""Queued sends after which :meth:`TransportNetwork.send` flushes without waiting for
:meth:`~TransportNetwork.recv` (a bound on the batch, and on the delay of its first send)."""

DEFAULT_LINGER = 30.0
"""Seconds :meth:`SessionNode.finish` serves at most after the last session (as
:data:`netsim.net.node.DEFAULT_LINGER` for the CLI node)."""


def _ids(ids: Iterable[int]) -> str:
    return ", ".join(str(i) for i in sorted(ids))


class SessionNode(KeepsFaults):
    """Runs successive protocol instances (one per session) at one node over a blocking
    :class:`Network`, keeping its ``window`` most recent sessions alive to serve slower peers
    (see the module docstring for the bounds, the errors, liveness and finishing).

    ``timeout``: seconds :meth:`run` waits for a message before ``TimeoutError``.
    ``report_after``: seconds in one session after which (and then every as many seconds)
    :meth:`run` logs a warning saying what it waits for (:meth:`waiting_for`).
    """

    logger: logging.Logger = logger
    """Where a protocol's exception is logged (a subclass may name its own)."""

    def __init__(self, network: Network, *, timeout: float = 120.0, window: int = 8,
                 max_fault_log: int = 1000, report_after: float = 5.0) -> None:
        if not all(hasattr(network, a) for a in ("node_id", "n", "send", "recv")):
            hint = (": pass net.endpoint(i), node i's endpoint of the in-process network"
                    if hasattr(network, "endpoint") else "")
            raise TypeError("the network must be one node's Network (node_id, n, send, recv), "
                            f"got {type(network).__name__}{hint}")
        if report_after <= 0:
            raise ValueError(f"report_after must be > 0 seconds, got {report_after}")
        self.net = network
        self.node_id, self.n = network.node_id, network.n
        self.timeout = timeout
        self.window = window
        self.report_after = report_after
        self.sessions: dict[int, Protocol] = {}
        self.pending: dict[int, list[tuple[int, Message]]] = {}
        self.heard: dict[int, dict[int, int]] = {}
        """Per live session: each peer heard from, and the highest round of its messages."""
        self.fault_log = FaultLog(max_fault_log)
        self.max_fault_log = max_fault_log
        self.t0 = time.monotonic()
        self.error: ProtocolError | None = None
        self.closed = False
        self._finished: bool | None = None
        self._sink: list[Message | bytes] = []
        self._dispatcher = Dispatcher(self.node_id, self.n, send=self._send,
                                      local=self._keep_local, faults=self.fault_log)

    def _fault(self, flt: Fault) -> None:
        self.fault_log.record(self.node_id, flt)

    def _now(self) -> float:
        return time.monotonic() - self.t0

    def _send(self, src: int, dst: int, wire: Wire) -> None:
        self.net.send(dst, wire.payload)

    def _keep_local(self, node: int, wire: Wire) -> None:
        self._sink.append(wire.local)

    def _handle(self, proto: Protocol, sender: int | None, msg: Message | None,
                session: int) -> None:
        """``proto.handle(sender, msg)`` (``proto.start`` when ``msg`` is None) and its step
        applied; an exception is logged and raised as :class:`ProtocolError`."""
        try:
            if msg is None:
                step = proto.start(self._now())
            else:
                step = proto.handle(sender, msg, self._now())  # type: ignore[arg-type]
        except Exception as exc:
            err = ProtocolError(self.node_id, session, sender,
                                "start" if msg is None else describe_message(msg), exc)
            self.logger.error("%s", err, exc_info=(type(exc), exc, exc.__traceback__))
            self.error = err
            raise err from exc
        self._apply(step, session)

    def _apply(self, step: Step, session: int) -> None:
        """Dispatch ``step``, then handle this node's messages to itself (depth first)."""
        local: list[Message | bytes] = []
        self._sink = local
        self._dispatcher.apply(step)
        proto = self.sessions.get(session)
        for msg in local:  # to itself: delivered locally, never on the wire
            if proto is not None:
                if isinstance(msg, bytes):
                    self._route(self.node_id, msg, session)
                else:
                    self._handle(proto, self.node_id, msg, session)

    def _note(self, sender: int, session: int, inst: Any) -> None:
        """Record that ``sender`` spoke in ``session`` (for :meth:`waiting_for`)."""
        if sender == self.node_id:
            return
        rnd = inst[1] if isinstance(inst, tuple) and len(inst) > 1 else 0
        seen = self.heard.setdefault(session, {})
        seen[sender] = max(seen.get(sender, -1), rnd if isinstance(rnd, int) else 0)

    def _route(self, sender: int, body: bytes, current: int) -> None:
        try:
            msg = decode(body, max_origins=self.n)
        except DecodeError as exc:
            self._fault(Fault(sender, "malformed", exc.reason))
            return
        inst = getattr(msg, "instance", None)
        session = inst[0] if isinstance(inst, tuple) else getattr(msg, "session", None)
        if not isinstance(session, int):
            self._fault(Fault(sender, "no-session", describe_message(msg)))
            return
        proto = self.sessions.get(session)
        if proto is not None:
            self._note(sender, session, inst)
            self._handle(proto, sender, msg, session)
        elif current < session <= current + self.window:
            buf = self.pending.setdefault(session, [])
            if len(buf) < 64 * self.n * self.n:
                self._note(sender, session, inst)
                buf.append((sender, msg))
            else:
                self._fault(Fault(sender, "flood", f"session {session}"))
        else:
            self._fault(Fault(sender, "stale-session", f"session {session}"))

    def waiting_for(self, session: int) -> str:
        """What this node waits for in ``session``: its round (the protocol's public
        ``round`` / ``rounds``, where it has them), the peers it has no message of that
        round from, those it heard nothing from in the session, and those it heard from."""
        proto = self.sessions.get(session)
        r = getattr(proto, "round", None)
        r = r if isinstance(r, int) else None
        total = getattr(proto, "rounds", None)
        where = f"session {session}"
        if r is not None:
            where += f" round {r}" + (f" of {total}" if isinstance(total, int) else "")
        heard = self.heard.get(session, {})
        peers = [i for i in range(self.n) if i != self.node_id]
        behind = [p for p in peers if heard.get(p, -1) < (0 if r is None else r)]
        silent = [p for p in peers if p not in heard]
        what = "messages" if r is None else f"round-{r} messages"
        text = (f"{where}: waiting for {what} from nodes {_ids(behind)}" if behind else
                f"{where}: heard from every peer, waiting for the protocol to complete")
        if silent:
            text += f" (nothing at all in this session from {_ids(silent)})"
        ahead = [p for p in peers if p not in behind]
        if ahead and behind:
            text += f"; heard {'this session' if r is None else f'round {r}'} from {_ids(ahead)}"
        return text

    def run(self, factory: Callable[[], Protocol], session: int, *,
            until: Callable[[], bool] | None = None) -> Protocol:
        """Build ``factory()`` (node :attr:`node_id` of :attr:`n`) as ``session``, start it,
        hand it the messages buffered for it, and block until it is ``done`` (and
        ``until()`` is true, when given: e.g. a Byzantine process, done at once, keeping
        pace with its peers); return it. ``TimeoutError`` after ``timeout`` seconds without
        a message, saying what it waited for (:meth:`waiting_for`); a warning every
        ``report_after`` seconds in the session; :class:`ProtocolError` if the protocol
        raised, now or in an earlier call; ``RuntimeError`` after :meth:`close`."""
        if self.error is not None:
            raise self.error
        if self.closed:
            raise RuntimeError(f"node {self.node_id}: closed, no more sessions")
        proto = factory()
        if proto.node_id != self.node_id or proto.n != self.n:
            raise ValueError(f"the factory built node {proto.node_id} of {proto.n}, the "
                             f"network is node {self.node_id} of {self.n}")
        self.sessions[session] = proto
        for old in [s for s in self.sessions if s <= session - self.window]:
            del self.sessions[old]
        for old in [s for s in self.heard if not session - self.window < s
                    <= session + self.window]:
            del self.heard[old]
        self._handle(proto, None, None, session)
        for sender, msg in self.pending.pop(session, []):
            self._handle(proto, sender, msg, session)
        self._wait(proto, session, until)
        return proto

    def _wait(self, proto: Protocol, session: int, until: Callable[[], bool] | None) -> None:
        """Route messages until ``proto`` is done (and ``until()``); see :meth:`run`."""
        start = last = time.monotonic()
        report = start + self.report_after
        while not (proto.done and (until is None or until())):
            got = self.net.recv(max(0.0, min(last + self.timeout, report) - time.monotonic()))
            now = time.monotonic()
            if got is not None:
                last = now
                self._route(got[0], got[1], session)
            elif now >= last + self.timeout:
                raise TimeoutError(
                    f"node {self.node_id}: no message for {self.timeout} s in "
                    f"{self.waiting_for(session)}; are n-f nodes running?")
            if now >= report:
                self.logger.warning("node %d: %.1f s in %s", self.node_id, now - start,
                                    self.waiting_for(session))
                report = now + self.report_after

    def serve(self, seconds: float) -> None:
        """Keep answering peers (echoes, readies, fetch replies) for ``seconds``: call it
        after the last session so that slower nodes can finish (:class:`ProtocolError` as in
        :meth:`run`). :meth:`finish` stops as soon as no peer needs this node any more."""
        if self.error is not None:
            raise self.error
        if self.closed:
            raise RuntimeError(f"node {self.node_id}: closed, nothing to serve")
        end = time.monotonic() + seconds
        current = max(self.sessions, default=0)
        while (left := end - time.monotonic()) > 0:
            got = self.net.recv(min(left, 0.05))
            if got is not None:
                self._route(got[0], got[1], current)

    def _peers_finished(self) -> bool:
        peers_done = getattr(self.net, "peers_done", None)
        if peers_done is None:
            return False
        flushed = getattr(self.net, "flushed", None)
        return (set(range(self.n)) - {self.node_id} <= set(peers_done())
                and (flushed is None or bool(flushed())))

    def finish(self, linger: float = DEFAULT_LINGER) -> bool:
        """The linger after the last session (module doc, "Finishing"): announce that this
        node is done (``network.announce_done()``, where the network has it) and serve
        peers until every peer announced it too and this node's messages were acknowledged
        (``peers_done()``, ``flushed()``), or ``linger`` seconds passed. Returns whether
        every peer finished; a network without ``announce_done`` is served ``linger``
        seconds. :class:`ProtocolError` as in :meth:`run`."""
        if self.error is not None:
            raise self.error
        if self.closed:
            raise RuntimeError(f"node {self.node_id}: closed, nothing to finish")
        announce = getattr(self.net, "announce_done", None)
        if announce is not None:
            announce()
        end = time.monotonic() + linger
        current = max(self.sessions, default=0)
        while not self._peers_finished() and (left := end - time.monotonic()) > 0:
            got = self.net.recv(min(left, 0.05))
            if got is not None:
                self._route(got[0], got[1], current)
        return self._peers_finished()

    def close(self, linger: float = DEFAULT_LINGER) -> bool:
        """:meth:`finish` (``linger`` > 0 and no protocol error), then shut the network down
        (its ``close()``, where it has one: :meth:`TransportNetwork.close`). Idempotent:
        a second call returns the first one's result. Later :meth:`run` calls raise."""
        if self.closed:
            return bool(self._finished)
        try:
            self._finished = (self.finish(linger) if linger > 0 and self.error is None
                              else False)
        finally:
            self.closed = True
            closer = getattr(self.net, "close", None)
            if closer is not None:
                closer()
        return self._finished


__all__ = ["DEFAULT_LINGER", "InProcessNetwork", "Network", "SessionNode", "TransportNetwork"]
