"""The async runtime: drives one sans-IO :class:`~netsim.protocol.Protocol` over a
:class:`~netsim.net.transport.Network`, on anyio (so under asyncio or trio).

What it does, exactly as the simulator does for one node (docs/architecture.md, "The core idea"):

- ``protocol.start(now)`` once, then ``protocol.handle(sender, message, now)`` for every
  message, where ``now = anyio.current_time() - t0`` (time is passed in; the protocol never
  reads a clock);
- each step's messages are encoded once with the one codec (:func:`netsim.codec.encode`) and
  queued on every addressed peer's channel; a message to :data:`~netsim.protocol.ALL`
  includes this node and that copy is delivered locally, never on the wire (raw ``bytes``,
  which only a Byzantine strategy emits, are sent as they are and decoded like any frame);
- a received body that the codec rejects is a :class:`~netsim.protocol.Fault`
  (``malformed``, with the codec's reason) against its authenticated sender, never an
  exception; the protocol's own faults are recorded the same way;
- for protocols with an integer ``round`` attribute (the agreement protocols), the time at
  which each round was completed is kept in ``round_times`` (``round_times[r]``: round
  ``r`` done);
- outputs are collected in order with their times; :attr:`decided` is set when the
  protocol is ``done``, and then a DONE is sent to every peer;
- a protocol that raises (a bug: hostile input is a fault, never an exception) never dies
  silently: the exception is logged (logger ``netsim.net.runtime``) with the node, the session
  and the message that triggered it (type, instance, sender), the node stops handling
  messages, and :meth:`Runtime.run` raises :class:`ProtocolError` carrying that information
  (its ``__cause__`` is the protocol's exception), neither a hang nor a bare traceback from
  inside the transport's tasks;
- :meth:`run` returns once the protocol is done, every peer said it is done (a peer that
  decided needs nothing more from anyone) and acknowledged this node's own DONE (so that it
  can stop too), or ``linger`` seconds after the decision: a node keeps serving slower
  peers, which may still need its echoes and fetch replies, until they all decided or for
  that long (a peer that never says DONE, crashed or Byzantine, costs the full linger).

Steps are applied by the one dispatcher (:class:`netsim.dispatch.Dispatcher`), as in the
simulator; faults go to a :class:`~netsim.dispatch.FaultLog` (the first ``max_fault_log`` kept,
every one counted). Metrics count like the simulator's (:class:`netsim.dispatch.Metrics`): one
message of ``len(body)`` bytes per addressed peer; the transport's own counters
(:class:`~netsim.net.transport.TransportStats`) add envelopes, acknowledgements and resends.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..codec import DecodeError, decode
from ..dispatch import Dispatcher, FaultLog, KeepsFaults, Metrics, Wire
from ..messages import Message
from ..protocol import EMPTY, Fault, Protocol, Step
from .transport import Network

logger = logging.getLogger(__name__)


BACKENDS: tuple[str, ...] = ("asyncio", "asyncio-stdlib", "trio")
"""The event loops a node runs on (``--backend``): ``asyncio`` with uvloop's loop when the
``uvloop`` package is installed (the ``fast`` extra; its transports and TLS are compiled)
and asyncio's own loop otherwise; ``asyncio-stdlib``: asyncio's own loop always; ``trio``."""


def uvloop_installed() -> bool:
    """Whether the ``uvloop`` package can be imported (without importing it)."""
    return importlib.util.find_spec("uvloop") is not None


def event_loop(backend: str) -> tuple[str, dict[str, Any]]:
    """``(backend, backend_options)`` for :func:`anyio.run` of a node's ``--backend``
    (:data:`BACKENDS`); ``ValueError`` naming the choices for another name."""
    if backend == "asyncio":
        return "asyncio", {"use_uvloop": uvloop_installed()}
    if backend == "asyncio-stdlib":
        return "asyncio", {"use_uvloop": False}
    if backend == "trio":
        return "trio", {}
    raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def run_event_loop(main: Callable[[], Awaitable[Any]], backend: str = "asyncio") -> Any:
    """``anyio.run(main)`` on the event loop that ``backend`` names (:func:`event_loop`)."""
    name, options = event_loop(backend)
    return anyio.run(main, backend=name, backend_options=options)


def describe_message(message: object) -> str:
    """``value (session, round, origin)``-style one-line description of a wire message."""
    if isinstance(message, Message):
        inst = getattr(message, "instance", None)
        return f"{message.NAME} {inst}" if inst is not None else message.NAME
    if isinstance(message, bytes | bytearray):
        return f"raw bytes ({len(message)})"
    return type(message).__name__


class ProtocolError(RuntimeError):
    """A protocol raised instead of returning a step (hostile input must be a Fault, so this
    is a bug of the protocol, reported with what triggered it).

    ``node_id``, ``session`` (the protocol's ``session`` attribute, else the message's, else
    ``None``), ``sender`` (``None`` for ``start``), ``message`` (its description: type and
    instance, or ``"start"``); ``__cause__`` is the protocol's exception.
    """

    def __init__(self, node_id: int, session: int | None, sender: int | None,
                 message: str, cause: BaseException) -> None:
        self.node_id, self.session, self.sender, self.message = node_id, session, sender, message
        src = "" if sender is None else f" from node {sender}"
        super().__init__(
            f"node {node_id}, session {session}: the protocol raised "
            f"{type(cause).__name__}({cause}) handling {message}{src}; the node stopped")

    @classmethod
    def of(cls, protocol: object, node_id: int, sender: int | None, message: object,
           cause: BaseException) -> ProtocolError:
        """Build the error for ``protocol`` at ``node_id`` and log it (with the traceback)."""
        session = getattr(protocol, "session", None)
        if session is None:
            inst = getattr(message, "instance", None)
            session = inst[0] if isinstance(inst, tuple) else getattr(message, "session", None)
        what = "start" if message is None else describe_message(message)
        err = cls(node_id, session, sender, what, cause)
        err.__cause__ = cause
        logger.error("%s", err, exc_info=(type(cause), cause, cause.__traceback__))
        return err


@dataclass
class NodeReport:
    """What one node's run produced (JSON-able through :meth:`as_dict`)."""

    node_id: int
    outputs: list[Any]
    output_times: list[float]
    faults: list[Fault]
    fault_counts: dict[str, int]
    metrics: Metrics
    transport: dict[str, Any]
    decided_at: float | None
    wall_time: float
    cpu_time: float
    peers_done: list[int] = field(default_factory=list)
    round_times: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "decided_at": self.decided_at,
            "wall_time": self.wall_time,
            "cpu_time": self.cpu_time,
            "metrics": self.metrics.as_dict(),
            "transport": self.transport,
            "fault_counts": dict(sorted(self.fault_counts.items())),
            "faults": [[f.sender, f.kind, f.detail] for f in self.faults[:100]],
            "peers_done": self.peers_done,
            "round_times": self.round_times,
        }


class Runtime(KeepsFaults):
    """Run ``protocol`` (node ``network.node_id`` of ``network.n``) over ``network``.

    ``max_fault_log`` bounds the faults kept (counts by kind are always complete).
    """

    def __init__(self, protocol: Protocol, network: Network, *,
                 max_fault_log: int = 1000) -> None:
        if protocol.node_id != network.node_id or protocol.n != network.n:
            raise ValueError(
                f"protocol is node {protocol.node_id} of {protocol.n}, network is node "
                f"{network.node_id} of {network.n}"
            )
        self.protocol = protocol
        self.network = network
        self.node_id = network.node_id
        self.n = network.n
        self.max_frame = network.settings.max_message
        self.outputs: list[Any] = []
        self.output_times: list[float] = []
        self.fault_log = FaultLog(max_fault_log)
        self.metrics = Metrics()
        self.max_fault_log = max_fault_log
        self.decided = anyio.Event()
        self.decided_at: float | None = None
        self._local: deque[Message | bytes] = deque()
        self._t0 = 0.0
        self._done_announced = False
        self._done_seq: dict[int, int] = {}  # per peer: one past the number of our DONE
        self._progress = anyio.Event()
        self.round_times: list[float] = []
        self.stopped = False
        self.error: ProtocolError | None = None
        self._dispatcher = Dispatcher(self.node_id, self.n, send=self._send, local=self._queue,
                                      metrics=self.metrics, faults=self.fault_log,
                                      outputs=self._output)


    # -- time and bookkeeping -------------------------------------------------------------
    def now(self) -> float:
        return anyio.current_time() - self._t0

    def _fault(self, flt: Fault) -> None:
        self.fault_log.record(self.node_id, flt)

    def _notify(self) -> None:
        self._progress.set()
        self._progress = anyio.Event()

    # -- applying steps -------------------------------------------------------------------
    def _send(self, src: int, dst: int, wire: Wire) -> None:
        self.network.send(dst, wire.payload)

    def _queue(self, node: int, wire: Wire) -> None:
        self._local.append(wire.local)

    def _output(self, node: int, outputs: Any) -> None:
        t = self.now()
        self.outputs.extend(outputs)
        self.output_times.extend([t] * len(outputs))

    def _apply(self, step: Step) -> None:
        self._dispatcher.apply(step)

    def _fail(self, sender: int | None, message: object, exc: Exception) -> None:
        """The protocol raised: log it, stop the node, and make :meth:`run` raise."""
        self.error = ProtocolError.of(self.protocol, self.node_id, sender, message, exc)
        self._local.clear()
        self.stop()

    def _call(self, sender: int, message: Message) -> None:
        """``protocol.handle`` and its step applied; an exception (from the protocol, or a
        step it returned that cannot be applied, e.g. an invalid target) becomes
        :attr:`error` and stops the node."""
        if self.error is not None:
            return
        try:
            step = self.protocol.handle(sender, message, self.now())
            if step is not EMPTY:
                self._apply(step)
        except Exception as exc:
            self._fail(sender, message, exc)

    def _handle(self, sender: int, message: Message) -> None:
        self._call(sender, message)
        self._drain_local()

    def _drain_local(self) -> None:
        while self._local:
            msg = self._local.popleft()
            if isinstance(msg, bytes | bytearray):
                try:
                    msg = decode(bytes(msg), self.max_frame, self.n)
                except DecodeError as exc:
                    self._fault(Fault(self.node_id, "malformed", exc.reason))
                    continue
            self._call(self.node_id, msg)
        if self.error is None:
            self._check_done()

    def _check_done(self) -> None:
        r = getattr(self.protocol, "round", None)
        if isinstance(r, int) and r > len(self.round_times):
            t = self.now()
            self.round_times.extend([t] * (r - len(self.round_times)))
        if not self._done_announced and self.protocol.done:
            self._done_announced = True
            self.decided_at = self.now()
            self.network.announce_done()
            self._done_seq = {p: ob.next_seq for p, ob in self.network.outboxes.items()}
            self.decided.set()
        self._notify()

    async def _deliver(self, sender: int, body: bytes) -> None:
        # the only checkpoint is before the protocol handles the message (see transport)
        await self.network.backpressure()
        if self.error is not None:
            return
        try:
            msg = decode(body, self.max_frame, self.n)
        except DecodeError as exc:
            self._fault(Fault(sender, "malformed", exc.reason))
            return
        self._handle(sender, msg)

    def _peer_done(self, peer: int) -> None:
        self._notify()

    def stop(self) -> None:
        """Make :meth:`run` return its report now (e.g. on SIGTERM), decided or not."""
        self.stopped = True
        self._notify()

    # -- the run --------------------------------------------------------------------------
    def finished(self, linger: float) -> bool:
        """Done, and (all peers done and our DONE acknowledged by all, or ``linger``
        elapsed). Data sent after our DONE need not be acknowledged: every peer decided."""
        if self.decided_at is None:
            return False
        if len(self.network.peer_done) == len(self.network.peers):
            obs = self.network.outboxes
            if all(obs[p].cut is not None or obs[p].acked >= k
                   for p, k in self._done_seq.items()):
                return True
        return self.now() - self.decided_at >= linger

    async def run(self, *, linger: float = 5.0, timeout: float | None = None) -> NodeReport:
        """Run until :meth:`finished` (see the module docstring); ``timeout`` (seconds) bounds
        the whole run with ``TimeoutError``. Raises :class:`ProtocolError` (logged) if the
        protocol raised."""
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        self._t0 = anyio.current_time()
        self.network.on_peer_done = self._peer_done
        with anyio.fail_after(timeout):
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.network.run, self._deliver)
                try:
                    self._apply(self.protocol.start(self.now()))
                except Exception as exc:
                    self._fail(None, None, exc)
                self._drain_local()
                while self.decided_at is None and not self.stopped:
                    await self._progress.wait()
                # acknowledgements do not call back: poll the flush while lingering
                while not self.finished(linger) and not self.stopped:
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
        if self.error is not None:
            raise self.error
        return self.report(time.perf_counter() - t_wall, time.process_time() - t_cpu)

    def report(self, wall: float = 0.0, cpu: float = 0.0) -> NodeReport:
        log = self.fault_log.merged(self.network.fault_log)
        self.metrics.faults_by_kind = dict(log.counts)
        return NodeReport(
            node_id=self.node_id, outputs=self.outputs, output_times=self.output_times,
            faults=log.faults, fault_counts=log.counts, metrics=self.metrics,
            transport=self.network.stats.as_dict(), decided_at=self.decided_at,
            wall_time=wall, cpu_time=cpu, peers_done=sorted(self.network.peer_done),
            round_times=list(self.round_times),
        )
