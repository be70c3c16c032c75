"""Applying a :class:`~netsim.protocol.Step`: the one dispatcher, fault log and metrics type.

Every way of running a sans-IO protocol (the simulator, the async runtime, the blocking
driver of :mod:`netsim.net.driver`, the Byzantine cores of :mod:`netsim.sim.adversary`)
carries out a step the same way, here:

- :func:`destinations`: a message's target expanded to node ids in increasing order;
  :data:`~netsim.protocol.ALL` is every id of ``range(n)``, the sender included, and the
  sender's own copy is delivered locally, never on the wire; any other target outside
  ``range(n)`` is :class:`InvalidTarget` (a bug of the protocol, not a peer's fault);
- :class:`Wire`: a message encoded once per send with the one codec (:func:`netsim.codec.
  encode`; raw ``bytes``, which only a Byzantine strategy emits, go out as they are, kind
  ``"raw"``), shared by every destination;
- :class:`Dispatcher`: one node's steps applied: each message encoded once and handed to the
  caller's ``send`` (per wire destination) and ``local`` (its copy to itself) callbacks, in
  increasing destination order, counted in :class:`Metrics`; the outputs handed to the
  caller; the faults recorded in a :class:`FaultLog`;
- :class:`FaultLog`: every fault counted by kind, the first ``limit`` kept (bounded memory
  against a hostile flood: a peer can make the counts grow only in value, never in size
  beyond its distinct kinds, which the protocols fix);
- :class:`Metrics`: wire traffic as the simulator and the runtime both count it: one
  message of the encoded size per addressed peer (a message to oneself is not traffic).

Nothing here imports torch or touches IO: the callbacks do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .codec import encode, wire_size
from .messages import KIND_NAMES, Message
from .protocol import ALL, Fault, Step, Target


class InvalidTarget(ValueError):
    """A step addressed a node id outside ``range(n)`` (and not :data:`ALL`)."""


def destinations(target: Target, me: int, n: int) -> Sequence[int]:
    """The ids ``target`` addresses, in increasing order: ``range(n)`` for :data:`ALL`
    (``me`` included: its copy is local), else ``(target,)``.

    Raises :class:`InvalidTarget` unless ``target`` is :data:`ALL` or in ``range(n)``."""
    if target == ALL:
        return range(n)
    if 0 <= target < n:
        return (target,)
    raise InvalidTarget(f"node {me} sent to invalid target {target}")


class Wire:
    """One outgoing message, encoded once: ``payload`` (the codec's bytes, or the message
    object itself when the caller runs without the codec), its wire ``size`` and ``kind``
    (the message type's name, ``"raw"`` for bytes); ``message`` is the object (``None`` for
    raw bytes)."""

    __slots__ = ("kind", "message", "payload", "size")

    def __init__(self, message: Message | None, payload: Any, size: int, kind: str) -> None:
        self.message, self.payload, self.size, self.kind = message, payload, size, kind

    @classmethod
    def of(cls, message: Message | bytes, codec: bool = True) -> Wire:
        """Encode ``message`` (``codec=False``: keep the object, size :func:`netsim.codec.
        wire_size`, exactly what encoding would give)."""
        if isinstance(message, bytes | bytearray):
            raw = bytes(message)
            return cls(None, raw, len(raw), "raw")
        kind = KIND_NAMES[message.KIND]
        if codec:
            body = encode(message)
            return cls(message, body, len(body), kind)
        return cls(message, message, wire_size(message), kind)

    @property
    def local(self) -> Message | bytes:
        """What a local delivery hands the node: the object, or the raw bytes to decode."""
        return self.payload if self.message is None else self.message


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


class FaultLog:
    """Recorded faults: :attr:`counts` by kind (every fault) and :attr:`entries`, the first
    ``limit`` faults (``None``: all) as ``(observer, fault)`` in the order recorded."""

    __slots__ = ("counts", "entries", "limit")

    def __init__(self, limit: int | None = 1000) -> None:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0 or None, got {limit}")
        self.limit = limit
        self.counts: dict[str, int] = {}
        self.entries: list[tuple[int, Fault]] = []

    def record(self, observer: int, fault: Fault) -> None:
        """Count ``fault`` (seen by node ``observer``) and keep it while under the limit."""
        self.counts[fault.kind] = self.counts.get(fault.kind, 0) + 1
        if self.limit is None or len(self.entries) < self.limit:
            self.entries.append((observer, fault))

    @property
    def faults(self) -> list[Fault]:
        """The kept faults, without their observers."""
        return [flt for _, flt in self.entries]

    @property
    def total(self) -> int:
        """How many faults were recorded (kept or not)."""
        return sum(self.counts.values())

    def merged(self, *others: FaultLog) -> FaultLog:
        """A new unbounded log: this log's kept faults then each of ``others``', the counts
        summed."""
        out = FaultLog(None)
        for log in (self, *others):
            out.entries += log.entries
            for k, v in log.counts.items():
                out.counts[k] = out.counts.get(k, 0) + v
        return out


class KeepsFaults:
    """A mixin for whatever owns a :class:`FaultLog` as ``self.fault_log`` (the runtime, the
    transport, the driver's session node): the read-only views ``faults`` and
    ``fault_counts`` that their callers read."""

    fault_log: FaultLog

    @property
    def faults(self) -> list[Fault]:
        """The faults kept (the first ``limit`` of the log)."""
        return self.fault_log.faults

    @property
    def fault_counts(self) -> dict[str, int]:
        """Every fault recorded, counted by kind."""
        return self.fault_log.counts


Send = Callable[[int, int, Wire], None]
"""``send(src, dst, wire)``: put ``wire`` on the channel from ``src`` to ``dst != src``."""

Local = Callable[[int, Wire], None]
"""``local(node, wire)``: ``node``'s message to itself, to be delivered locally."""

Outputs = Callable[[int, Sequence[Any]], None]
"""``outputs(node, values)``: a step's outputs, in order."""


class Dispatcher:
    """Applies the steps of node ``me`` of ``n`` (see the module docstring).

    ``send`` and ``local`` carry the messages (the caller's IO: a heap of events, a
    transport's channels, a queue); ``metrics`` (optional) counts the wire traffic; ``faults``
    (default: a new :class:`FaultLog`) records the step's faults with ``me`` as observer;
    ``outputs`` (optional) receives the step's outputs; ``codec=False`` skips encoding
    (:meth:`Wire.of`).
    """

    __slots__ = ("codec", "fault_log", "local", "me", "metrics", "n", "outputs", "send")

    def __init__(self, me: int, n: int, *, send: Send, local: Local,
                 metrics: Metrics | None = None, faults: FaultLog | None = None,
                 outputs: Outputs | None = None, codec: bool = True) -> None:
        self.me, self.n = me, n
        self.send, self.local = send, local
        self.metrics = metrics
        self.fault_log = FaultLog() if faults is None else faults
        self.outputs = outputs
        self.codec = codec

    def apply(self, step: Step) -> None:
        """Send every message of ``step``, hand over its outputs, record its faults."""
        for target, message in step.messages:
            self.send_message(target, message)
        if step.outputs and self.outputs is not None:
            self.outputs(self.me, step.outputs)
        if step.faults:
            record, me = self.fault_log.record, self.me
            for flt in step.faults:
                record(me, flt)

    def send_message(self, target: Target, message: Message | bytes) -> None:
        """Encode ``message`` once and deliver it to every id ``target`` addresses, in
        increasing order (``me``'s copy through ``local``). :class:`InvalidTarget` for a
        target outside ``range(n)``."""
        me = self.me
        wire = Wire.of(message, self.codec)
        dsts = destinations(target, me, self.n)
        if target != me and self.metrics is not None:
            self.metrics.count(me, wire.kind, len(dsts) - (target == ALL), wire.size)
        send = self.send
        for dst in dsts:
            if dst == me:
                self.local(me, wire)
            else:
                send(me, dst, wire)
