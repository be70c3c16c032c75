"""The deterministic adversarial network simulator (DESIGN.md).

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
"""

from __future__ import annotations

import copy
import heapq
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

import numpy as np

from ..codec import DEFAULT_MAX_FRAME, DecodeError, decode, encode, wire_size
from ..messages import KIND_NAMES, Message, valid_vector
from ..protocol import ALL, EMPTY, Fault, Protocol
from .schedulers import Scheduler, UniformDelay

Factory = Callable[[int, Any], Protocol]
"""``factory(node_id, input) -> Protocol``: builds an honest node (also a Byzantine core)."""


class SimulationError(RuntimeError):
    """The run exceeded a limit; the message says how to replay it."""


@dataclass
class Metrics:
    """Wire traffic (messages a node sends to itself are local and not counted)."""

    messages: int = 0
    bytes: int = 0
    messages_by_kind: dict[str, int] = field(default_factory=dict)
    bytes_by_kind: dict[str, int] = field(default_factory=dict)
    messages_by_node: dict[int, int] = field(default_factory=dict)
    bytes_by_node: dict[int, int] = field(default_factory=dict)
    faults_by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, src: int, kind: str, count: int, size: int) -> None:
        """Account ``count`` wire messages of ``size`` bytes each sent by ``src``."""
        total = count * size
        self.messages += count
        self.bytes += total
        self.messages_by_kind[kind] = self.messages_by_kind.get(kind, 0) + count
        self.bytes_by_kind[kind] = self.bytes_by_kind.get(kind, 0) + total
        self.messages_by_node[src] = self.messages_by_node.get(src, 0) + count
        self.bytes_by_node[src] = self.bytes_by_node.get(src, 0) + total

    def as_dict(self) -> dict[str, Any]:
        def srt(d: Mapping) -> dict:
            return {str(k): d[k] for k in sorted(d)}

        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "messages_by_kind": srt(self.messages_by_kind),
            "bytes_by_kind": srt(self.bytes_by_kind),
            "messages_by_node": srt(self.messages_by_node),
            "bytes_by_node": srt(self.bytes_by_node),
            "faults_by_kind": srt(self.faults_by_kind),
        }


@dataclass
class SimResult:
    """What a run produced. ``outputs[i]`` lists honest node ``i``'s outputs in order."""

    seed: int
    n: int
    f: int
    honest: tuple[int, ...]
    byzantine: tuple[int, ...]
    outputs: dict[int, list[Any]]
    output_times: dict[int, list[float]]
    faults: list[tuple[int, Fault]]
    metrics: Metrics
    time: float
    events: int
    healed: bool
    quiescent: bool
    done: dict[int, bool]

    def faults_against(self, nodes: Sequence[int]) -> list[tuple[int, Fault]]:
        """Faults (observer, fault) recorded against any of ``nodes``."""
        s = set(nodes)
        return [(o, flt) for o, flt in self.faults if flt.sender in s]


class AdversaryContext:
    """The adversary's omniscient, read-only window on the run (DESIGN.md, "The adversary").

    ``honest`` maps honest ids to their live protocol objects: strategies may read any
    state but must not call or mutate them. ``rng`` is the simulator's one random source.
    """

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        self.n = sim.n
        self.f = sim.f
        self.byzantine = sim.byzantine
        self.honest_ids = sim.honest
        self.honest: Mapping[int, Protocol] = MappingProxyType(sim.nodes)
        self.rng = sim.rng
        self.factory = sim.factory
        self.inputs: Mapping[int, Any] = MappingProxyType(dict(sim.inputs))

    @property
    def now(self) -> float:
        return self._sim.now

    def only(self, byzantine: tuple[int, ...]) -> AdversaryContext:
        """The same context for a subset of the Byzantine ids (for mixed strategies)."""
        sub = copy.copy(self)
        sub.byzantine = tuple(byzantine)
        return sub

    def in_flight(self) -> list[tuple[float, int, int, Message | bytes]]:
        """Every message scheduled or held: ``(delivery time or inf, src, dst, payload)``."""
        ev = sorted(self._sim._heap)
        out: list[tuple[float, int, int, Message | bytes]] = [
            (e[0], e[2], e[3], e[4]) for e in ev if e[2] >= 0  # not the heal event
        ]
        out += [(float("inf"), h[0], h[1], h[2]) for h in self._sim._held]
        return out

    def np_rng(self) -> np.random.Generator:
        """A numpy generator seeded from the simulator's one random source."""
        return np.random.default_rng(self.rng.getrandbits(64))

    def alt_input(self, node: int) -> Any:
        """A different, still valid, input for ``node`` (for equivocation and twins)."""
        x = self.inputs.get(node)
        if x is None:
            return None
        x = np.asarray(x)
        noise = self.np_rng().standard_normal(x.shape).astype(x.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            alt = x + noise * (1.0 + float(np.abs(x).max(initial=0.0)))
        # near the dtype's largest values the sum can overflow: mirror those coordinates
        # instead, so the alternative stays finite and still differs from x; and if its
        # squared norm overflows (an invalid value), mirror x whole
        alt = np.where(np.isfinite(alt), alt, -x)
        return alt if valid_vector(alt) or not x.any() else -x


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
    byzantine:
        The Byzantine ids (at most ``f``); default: none.
    strategy:
        A :class:`~netsim.sim.adversary.Strategy` for them (default: silent).
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

    def __init__(
        self,
        n: int,
        f: int,
        factory: Factory,
        inputs: Mapping[int, Any] | Sequence[Any] | None = None,
        *,
        byzantine: Sequence[int] = (),
        strategy: Any = None,
        scheduler: Scheduler | None = None,
        seed: int = 0,
        codec: bool = True,
        trace: str | Path | IO[str] | None = None,
        max_events: int = 50_000_000,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        if n < 1 or not 0 <= f < n:
            raise ValueError(f"need n >= 1 and 0 <= f < n, got n={n}, f={f}")
        byz = tuple(sorted(set(byzantine)))
        if len(byz) > f:
            raise ValueError(f"at most f={f} Byzantine nodes, got {len(byz)}: {byz}")
        if any(not 0 <= b < n for b in byz):
            raise ValueError(f"Byzantine ids must be in range({n}), got {byz}")
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, Mapping):
            inputs = dict(enumerate(inputs))
        self.n, self.f, self.seed = n, f, seed
        self.byzantine = byz
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
        self.faults: list[tuple[int, Fault]] = []
        self.outputs: dict[int, list[Any]] = {i: [] for i in self.honest}
        self.output_times: dict[int, list[float]] = {i: [] for i in self.honest}
        self._trace_path = trace
        self._trace: IO[str] | None = None
        if strategy is None:
            from .adversary import Silent

            strategy = Silent()
        self.strategy = strategy
        self.scheduler.setup(n, self.honest, self.byzantine)
        self.context = AdversaryContext(self)
        if hasattr(self.scheduler, "bind"):  # a scheduler is part of the adversary: it may
            self.scheduler.bind(self.context)  # read the omniscient context too
        self.strategy.setup(self.context)
        self._started = False

    # -- scheduling ------------------------------------------------------------------------
    def _post(self, src: int, dst: int, msg: Message | None, payload: Any, size: int,
              kind: str) -> None:
        """Schedule one wire message from src to dst (dst != src; already counted)."""
        d = self.scheduler.delay(src, dst, msg, self.now, self.rng)
        if d is None:
            self._held.append((src, dst, payload, size, kind))
            return
        if not d >= 0.0:
            raise SimulationError(f"scheduler returned an invalid delay {d!r}")
        self._seq += 1
        heapq.heappush(self._heap, (self.now + d, self._seq, src, dst, payload, size, kind))

    def _local(self, node: int, payload: Any, size: int, kind: str) -> None:
        """A node's message to itself: delivered locally, now, never on the wire."""
        self._seq += 1
        heapq.heappush(self._heap, (self.now, self._seq, node, node, payload, size, kind))

    def _send(self, src: int, target: int, message: Message | bytes) -> None:
        if type(message) is bytes or isinstance(message, bytes | bytearray):
            payload: Any = bytes(message)
            msg = None
            size = len(payload)
            kind = "raw"
        else:
            msg = message
            kind = KIND_NAMES[msg.KIND]
            if self.codec:
                payload = encode(msg)
                size = len(payload)
            else:
                payload = msg
                size = wire_size(msg)
        if target == ALL:
            self.metrics.count(src, kind, self.n - 1, size)
            post = self._post
            for dst in range(self.n):
                if dst == src:
                    self._local(src, payload, size, kind)
                else:
                    post(src, dst, msg, payload, size, kind)
        elif target == src:
            self._local(src, payload, size, kind)
        elif 0 <= target < self.n:
            self.metrics.count(src, kind, 1, size)
            self._post(src, target, msg, payload, size, kind)
        else:
            raise SimulationError(f"node {src} sent to invalid target {target}")

    def _apply(self, node: int, step: Any) -> None:
        for target, message in step.messages:
            self._send(node, target, message)
        if step.outputs:
            self.outputs[node].extend(step.outputs)
            self.output_times[node].extend([self.now] * len(step.outputs))
        for flt in step.faults:
            self._fault(node, flt)

    def _fault(self, observer: int, flt: Fault) -> None:
        self.faults.append((observer, flt))
        fk = self.metrics.faults_by_kind
        fk[flt.kind] = fk.get(flt.kind, 0) + 1

    def _emit(self, emissions: Any) -> None:
        for src, target, message in emissions:
            if src not in self.context.byzantine:
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
        self._emit(self.strategy.start(self.now))

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
        nodes = self.nodes
        max_frame = self.max_frame
        strategy = self.strategy
        trace = self._trace
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
                t = ev[0]
                if max_time is not None and t > max_time:
                    heapq.heappush(heap, ev)
                    break
                self.now = t
                src, dst, payload = ev[2], ev[3], ev[4]
                if src < 0:  # the scheduler's heal event
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
                if type(payload) is bytes:
                    try:
                        msg = decode(payload, max_frame, self.n)  # REPORTs <= n
                    except DecodeError as exc:
                        if dst in nodes:
                            self._fault(dst, Fault(src, "malformed", exc.reason))
                        if trace is not None:
                            self._trace_line(t, src, dst, "raw", None, ev[5])
                        continue
                    # honest bytes are encoded once and shared: decode gives each receiver
                    # its own message object, as a network would
                else:
                    msg = payload
                if trace is not None:
                    self._trace_line(t, src, dst, ev[6], msg, ev[5])
                node = nodes.get(dst)
                if node is not None:
                    step = node.handle(src, msg, t)
                    if step is not EMPTY:
                        self._apply(dst, step)
                    if until is not None and until(self):
                        break
                else:
                    self._emit(strategy.receive(dst, src, msg, t))
        finally:
            self.events = events
            if trace is not None and isinstance(self._trace_path, str | Path):
                trace.close()
                self._trace = None
        return self.result()

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
            byzantine=self.byzantine,
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
