"""The deterministic adversarial network simulator (docs/architecture.md).

A heap of ``(time, seq, ...)`` events in virtual time, driven by ONE ``random.Random(seed)``:
the same seed and parameters give the same run, event for event and byte for byte of the
trace, in any process (nothing iterates over an unordered container, nothing reads a clock).

Honest nodes are sans-IO :class:`~netsim.protocol.Protocol` objects made by a ``factory``;
Byzantine nodes are written by a :class:`~netsim.sim.adversary.Strategy`; a
:class:`~netsim.sim.schedulers.Scheduler` decides delivery times. By default every message goes
through the real codec (:mod:`netsim.codec`): honest messages are encoded once per send and
decoded at each receiver, exactly as on a network; ``codec=False`` passes message objects by
reference (faster, for large simulations; tests keep the codec on). Raw bytes from a
Byzantine node are always decoded, so garbage is a fault at the receiver in both modes.

Steps, honest and the strategy's emissions alike, are applied by the one dispatcher
(:class:`netsim.dispatch.Dispatcher`, as in the runtime and the blocking driver): the
simulator only supplies the delivery (a heap event per wire message, an immediate local event
for a node's copy to itself); faults go to one unbounded :class:`~netsim.dispatch.FaultLog`
(``SimResult.faults``: every fault with its observer), traffic to
:class:`~netsim.dispatch.Metrics`.
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

import numpy as np

from ..adversary import AdversaryContext, values_of, views_of
from ..codec import DEFAULT_MAX_FRAME, DecodeError, decode
from ..deprecation import deprecated_alias, renamed_keywords
from ..dispatch import Dispatcher, FaultLog, InvalidTarget, Metrics, Wire
from ..messages import Message
from ..protocol import EMPTY, Fault, Protocol
from .adversary import Strategy
from .schedulers import Scheduler, UniformDelay

Factory = Callable[[int, Any], Protocol]
"""``factory(node_id, input) -> Protocol``: builds an honest node (also a Byzantine core)."""


class SimulationError(RuntimeError):
    """The run exceeded a limit; the message says how to replay it."""


@dataclass
class SimResult:
    """What a run produced. ``outputs[i]`` lists honest node ``i``'s outputs in order."""

    seed: int
    n: int
    f: int
    honest: tuple[int, ...]
    byzantine_ids: tuple[int, ...]
    outputs: dict[int, list[Any]]
    output_times: dict[int, list[float]]
    faults: list[tuple[int, Fault]]
    metrics: Metrics
    time: float
    events: int
    healed: bool
    quiescent: bool
    done: dict[int, bool]

    byzantine = deprecated_alias("byzantine_ids")

    def faults_against(self, nodes: Sequence[int]) -> list[tuple[int, Fault]]:
        """Faults (observer, fault) recorded against any of ``nodes``."""
        s = set(nodes)
        return [(o, flt) for o, flt in self.faults if flt.sender in s]


class SimulatorContext(AdversaryContext):
    """The simulator's omniscient :class:`~netsim.adversary.AdversaryContext`
    (docs/architecture.md, "The adversary").

    Honest values and views come from the honest protocols through
    :class:`netsim.protocol.ValueHistory`; :meth:`in_flight` lists the heap and the held
    messages. ``honest`` (id -> live protocol object) is kept for tools that inspect a
    protocol beyond that interface; a strategy should not need it, and must never call or
    mutate what it holds.
    """

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        self.n = sim.n
        self.f = sim.f
        self.byzantine_ids = sim.byzantine_ids
        self.honest_ids = sim.honest
        self.honest: Mapping[int, Protocol] = MappingProxyType(sim.nodes)
        self.rng = sim.rng
        self.factory = sim.factory
        self.inputs: Mapping[int, Any] = MappingProxyType(dict(sim.inputs))

    @property
    def now(self) -> float:
        return self._sim.now

    def in_flight(self) -> list[tuple[float, int, int, Message | bytes]]:
        """Every message scheduled or held: ``(delivery time or inf, src, dst, payload)``."""
        ev = sorted(self._sim._heap)
        out: list[tuple[float, int, int, Message | bytes]] = [
            (e[0], e[2], e[3], e[4]) for e in ev if e[2] >= 0  # not the heal event
        ]
        out += [(float("inf"), h[0], h[1], h[2]) for h in self._sim._held]
        return out

    def honest_values(self, round: int) -> np.ndarray | None:
        return values_of(self.honest, self.honest_ids, round)

    def views(self, round: int) -> dict[int, Mapping[int, np.ndarray]] | None:
        return views_of(self.honest, self.honest_ids, round)


class Simulator:
    """Run honest sans-IO protocols against a scheduler and a Byzantine strategy.

    Parameters
    ----------
    n, f:
        Number of nodes and the bound on Byzantine ones.
    factory:
        ``factory(node_id, input)`` builds a node's protocol.
    inputs:
        ``inputs[i]`` for every node id (``None`` where a node has none).
    byzantine_ids:
        The Byzantine ids (at most ``f``); default: none (``byzantine=``, its deprecated
        name, still works for this release with a ``DeprecationWarning``).
    strategy:
        A :class:`~netsim.adversary.Strategy` for them (default: silent); its ``setup``
        receives this run's :class:`SimulatorContext`.
    scheduler:
        Default: uniform random delays in [0, 1].
    seed:
        Seeds the run's only random source.
    codec:
        Round-trip every message through the real codec (default; keep it on in tests).
    trace:
        A path or text stream: one JSON line per delivered message
        ``{"t", "src", "dst", "kind", "instance", "size"}``.
    max_events:
        Safety cap on deliveries; exceeding it raises :class:`SimulationError`.
    """

    byzantine = deprecated_alias("byzantine_ids")

    @renamed_keywords(byzantine="byzantine_ids")
    def __init__(
        self,
        n: int,
        f: int,
        factory: Factory,
        inputs: Mapping[int, Any] | Sequence[Any] | None = None,
        *,
        byzantine_ids: Sequence[int] = (),
        strategy: Strategy | None = None,
        scheduler: Scheduler | None = None,
        seed: int = 0,
        codec: bool = True,
        trace: str | Path | IO[str] | None = None,
        max_events: int = 50_000_000,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        if n < 1 or not 0 <= f < n:
            raise ValueError(f"need n >= 1 and 0 <= f < n, got n={n}, f={f}")
        byz = tuple(sorted(set(byzantine_ids)))
        if len(byz) > f:
            raise ValueError(f"at most f={f} Byzantine nodes, got {len(byz)}: {byz}")
        if any(not 0 <= b < n for b in byz):
            raise ValueError(f"Byzantine ids must be in range({n}), got {byz}")
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, Mapping):
            inputs = dict(enumerate(inputs))
        self.n, self.f, self.seed = n, f, seed
        self.byzantine_ids = byz
        self.honest = tuple(i for i in range(n) if i not in set(byz))
        self.inputs = dict(inputs)
        self.factory = factory
        self.rng = random.Random(seed)
        self.codec = codec
        self.max_events = max_events
        self.max_frame = max_frame
        self.scheduler = scheduler if scheduler is not None else UniformDelay()
        self.nodes: dict[int, Protocol] = {i: factory(i, self.inputs.get(i)) for i in self.honest}
        self.now = 0.0
        self._heap: list[tuple] = []
        self._held: list[tuple] = []
        self._seq = 0
        self.events = 0
        self.metrics = Metrics()
        self.fault_log = FaultLog(limit=None)  # every fault, with its observer
        self.faults: list[tuple[int, Fault]] = self.fault_log.entries
        self.metrics.faults_by_kind = self.fault_log.counts  # the same dict, kept current
        self.outputs: dict[int, list[Any]] = {i: [] for i in self.honest}
        self.output_times: dict[int, list[float]] = {i: [] for i in self.honest}
        self._trace_path = trace
        self._trace: IO[str] | None = None
        if strategy is None:
            from .adversary import Silent

            strategy = Silent()
        if not isinstance(strategy, Strategy):
            raise TypeError(f"strategy must be a netsim.adversary.Strategy (or None), got "
                            f"{type(strategy).__name__}: build one with make_strategy(name)")
        self.strategy = strategy
        self.scheduler.setup(n, self.honest, self.byzantine_ids)
        self.context: AdversaryContext = SimulatorContext(self)
        if hasattr(self.scheduler, "bind"):  # a scheduler is part of the adversary: it may
            self.scheduler.bind(self.context)  # read the omniscient context too
        self.strategy.setup(self.context)
        self._started = False
        self._dispatchers = [
            Dispatcher(i, n, send=self._post, local=self._local, metrics=self.metrics,
                       faults=self.fault_log, outputs=self._output, codec=codec)
            for i in range(n)
        ]

    # -- scheduling ------------------------------------------------------------------------
    def _post(self, src: int, dst: int, wire: Wire) -> None:
        """Schedule one wire message from src to dst (dst != src; already counted)."""
        d = self.scheduler.delay(src, dst, wire.message, self.now, self.rng)
        if d is None:
            self._held.append((src, dst, wire.payload, wire.size, wire.kind))
            return
        if not d >= 0.0:
            raise SimulationError(f"scheduler returned an invalid delay {d!r}")
        self._seq += 1
        heapq.heappush(self._heap, (self.now + d, self._seq, src, dst, wire.payload,
                                    wire.size, wire.kind))

    def _local(self, node: int, wire: Wire) -> None:
        """A node's message to itself: delivered locally, now, never on the wire."""
        self._seq += 1
        heapq.heappush(self._heap, (self.now, self._seq, node, node, wire.payload, wire.size,
                                    wire.kind))

    def _send(self, src: int, target: int, message: Message | bytes) -> None:
        try:
            self._dispatchers[src].send_message(target, message)
        except InvalidTarget as exc:
            raise SimulationError(str(exc)) from None

    def _apply(self, node: int, step: Any) -> None:
        try:
            self._dispatchers[node].apply(step)
        except InvalidTarget as exc:
            raise SimulationError(str(exc)) from None

    def _output(self, node: int, outputs: Sequence[Any]) -> None:
        self.outputs[node].extend(outputs)
        self.output_times[node].extend([self.now] * len(outputs))

    def _fault(self, observer: int, flt: Fault) -> None:
        self.fault_log.record(observer, flt)

    @staticmethod
    def _strategy_call(method: Callable[..., Any], *args: Any) -> Any:
        """A strategy's ``start``/``receive``; an invalid target of a Byzantine core
        (:func:`netsim.dispatch.destinations`) is a :class:`SimulationError`, as for a step."""
        try:
            return method(*args)
        except InvalidTarget as exc:
            raise SimulationError(str(exc)) from None

    def _emit(self, emissions: Any) -> None:
        for src, target, message in emissions:
            if src not in self.context.byzantine_ids:
                raise SimulationError(f"strategy tried to send as honest node {src}")
            self._send(src, target, message)

    def _heal(self) -> None:
        """Release every held message: eventual delivery."""
        self.scheduler.healed = True
        held, self._held = self._held, []
        for src, dst, payload, size, kind in held:
            d = self.scheduler.release_delay(src, dst, self.now, self.rng)
            self._seq += 1
            heapq.heappush(self._heap, (self.now + d, self._seq, src, dst, payload, size, kind))

    # -- the run ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start every honest node and the adversary (idempotent)."""
        if self._started:
            return
        self._started = True
        if self._trace_path is not None:
            if isinstance(self._trace_path, str | Path):
                self._trace = open(self._trace_path, "w", encoding="utf-8")  # noqa: SIM115
            else:
                self._trace = self._trace_path
        heal_at = self.scheduler.heal_at
        if heal_at is not None:
            self._seq += 1
            heapq.heappush(self._heap, (float(heal_at), self._seq, -1, -1, None, 0, "heal"))
        for i in self.honest:
            self._apply(i, self.nodes[i].start(self.now))
        self._emit(self._strategy_call(self.strategy.start, self.now))

    def run(
        self,
        *,
        heal: bool = True,
        until: Callable[[Simulator], bool] | None = None,
        max_time: float | None = None,
        tick: Callable[[Simulator], None] | None = None,
        tick_every: int = 4096,
    ) -> SimResult:
        """Deliver messages until nothing is left (quiescence), or ``until(sim)`` is true,
        or virtual time passes ``max_time``. With ``heal=False`` held messages are never
        released (a safety run); otherwise they are released when nothing else remains.
        ``tick(sim)`` is called every ``tick_every`` deliveries (progress reporting)."""
        self.start()
        if self._trace is None and isinstance(self._trace_path, str | Path):
            # a resumed run (e.g. liveness after safety): append to the trace file
            self._trace = open(self._trace_path, "a", encoding="utf-8")  # noqa: SIM115
        heap = self._heap
        pop = heapq.heappop
        deliver = self._deliver
        max_events = self.max_events
        events = self.events
        try:
            while True:
                if not heap:
                    if heal and self._held:
                        self._heal()
                        continue
                    break
                ev = pop(heap)
                if max_time is not None and ev[0] > max_time:
                    heapq.heappush(heap, ev)
                    break
                self.now = ev[0]
                if ev[2] < 0:  # the scheduler's heal event
                    if heal:
                        self._heal()
                    continue
                events += 1
                if tick is not None and not events % tick_every:
                    self.events = events
                    tick(self)
                if events > max_events:
                    raise SimulationError(
                        f"more than {max_events} deliveries (seed={self.seed}): "
                        "a protocol or strategy that never quiesces?"
                    )
                if deliver(ev) and until is not None and until(self):
                    break
        finally:
            self.events = events
            self._close_trace()
        return self.result()

    def _deliver(self, ev: tuple) -> bool:
        """Deliver one event ``(t, seq, src, dst, payload, size, kind)``: bytes are decoded
        (a codec error is a ``malformed`` fault at an honest receiver), the trace line
        written, the message handed to the honest node (its step applied) or to the
        strategy (its emissions sent). True when an honest node handled it."""
        t, _, src, dst, payload = ev[:5]
        trace = self._trace
        if type(payload) is bytes:
            try:
                msg = decode(payload, self.max_frame, self.n)  # REPORTs <= n
            except DecodeError as exc:
                if dst in self.nodes:
                    self._fault(dst, Fault(src, "malformed", exc.reason))
                if trace is not None:
                    self._trace_line(t, src, dst, "raw", None, ev[5])
                return False
            # honest bytes are encoded once and shared: decode gives each receiver its own
            # message object, as a network would
        else:
            msg = payload
        if trace is not None:
            self._trace_line(t, src, dst, ev[6], msg, ev[5])
        node = self.nodes.get(dst)
        if node is None:
            self._emit(self._strategy_call(self.strategy.receive, dst, src, msg, t))
            return False
        step = node.handle(src, msg, t)
        if step is not EMPTY:
            self._apply(dst, step)
        return True

    def _close_trace(self) -> None:
        """Close a trace file this simulator opened (a caller's stream stays open)."""
        if self._trace is not None and isinstance(self._trace_path, str | Path):
            self._trace.close()
            self._trace = None

    def _trace_line(self, t: float, src: int, dst: int, kind: str, msg: Any, size: int) -> None:
        inst = getattr(msg, "instance", None)
        rec = {
            "t": t,
            "src": src,
            "dst": dst,
            "kind": kind,
            "instance": list(inst) if inst is not None else None,
            "size": size,
        }
        assert self._trace is not None
        self._trace.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def result(self) -> SimResult:
        return SimResult(
            seed=self.seed,
            n=self.n,
            f=self.f,
            honest=self.honest,
            byzantine_ids=self.byzantine_ids,
            outputs=self.outputs,
            output_times=self.output_times,
            faults=self.faults,
            metrics=self.metrics,
            time=self.now,
            events=self.events,
            healed=self.scheduler.healed,
            quiescent=not self._heap and not self._held,
            done={i: self.nodes[i].done for i in self.honest},
        )


def simulate(
    n: int,
    f: int,
    factory: Factory,
    inputs: Mapping[int, Any] | Sequence[Any] | None = None,
    **kwargs: Any,
) -> SimResult:
    """Build a :class:`Simulator` and run it to quiescence (see its parameters)."""
    run_kw = {k: kwargs.pop(k) for k in ("heal", "until", "max_time") if k in kwargs}
    return Simulator(n, f, factory, inputs, **kwargs).run(**run_kw)
