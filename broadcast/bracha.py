"""Bracha reliable broadcast with digest echoes (docs/theory.md §3), sans-IO.

One :class:`ReliableBroadcast` object per node serves every instance ``(session, round,
origin)`` of a session. For each instance, with ``n >= 3f+1``::

    origin:                               send VALUE(v) to all
    on VALUE(v) from the origin (first):  if v is valid, send ECHO(H(v)) to all
    on ECHO(h) from ceil((n+f+1)/2) distinct nodes, or READY(h) from f+1 distinct nodes:
                                          send READY(h) to all (once)
    on READY(h) from 2f+1 distinct nodes: deliver v with H(v) = h

A node that must deliver ``h`` without holding a valid ``v`` with ``H(v) = h`` sends
``FETCH(h)`` to the first f+1 nodes it saw echo ``h`` (at least one of them is honest, and an
honest echoer holds ``v``), and accepts the first ``REPLY`` whose digest is ``h``. Every node
answers one FETCH per peer and instance for values it holds, also after it has delivered.

Guarantees (n >= 3f+1, any schedule with eventual delivery between honest nodes):
validity (an honest origin's valid value is delivered by every honest node), agreement (no
two honest nodes deliver different values), integrity (at most one delivery per instance),
totality (if one honest node delivers, every honest node does). Only *valid* values
(:func:`netsim.messages.valid_vector`: finite, a squared norm ``<= 2^1000``, of the session's
dtype and dimension when they are set) are ever echoed, hence ever delivered: an invalid
VALUE is a fault ``invalid-value`` whose detail says why (e.g. ``dtype float64, the session's
is float32``).

Memory is bounded under any behaviour of the peers: per instance, each peer is counted at
most once as an echoer, once as a readier and once as a fetcher, and at most two values are
held (the origin's first VALUE and the one reply that matches the wanted digest). Instances
are created only for this session, origins in ``range(n)`` and rounds ``<= max_round`` (the
owner moves that window forward); anything else is a fault, not a buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netsim.messages import (
    Echo,
    Fetch,
    InstanceId,
    Message,
    Ready,
    Reply,
    Value,
    digest,
    session_dtype,
    vector_problem,
)
from netsim.protocol import ALL, EMPTY, Fault, Protocol, Step, require_resilience


@dataclass(frozen=True, slots=True)
class Delivered:
    """Output of reliable broadcast: ``vector`` was delivered for ``instance``."""

    instance: InstanceId
    digest: bytes
    vector: np.ndarray


def echo_threshold(n: int, f: int) -> int:
    """``ceil((n+f+1)/2)``: echoes needed before sending READY."""
    return (n + f + 2) // 2


class _Instance:
    """Per-instance state at one node. Every map is keyed by peer id (at most n entries)."""

    __slots__ = (
        "delivered",
        "echo_count",
        "echo_from",
        "fetch_sent",
        "got_value",
        "ready_count",
        "ready_from",
        "replied",
        "sent_ready",
        "served",
        "store",
        "want",
    )

    def __init__(self) -> None:
        self.got_value = False
        self.store: dict[bytes, np.ndarray] = {}
        self.echo_from: dict[int, bytes] = {}
        self.echo_count: dict[bytes, int] = {}
        self.ready_from: dict[int, bytes] = {}
        self.ready_count: dict[bytes, int] = {}
        self.sent_ready = False
        self.delivered: bytes | None = None
        self.want: bytes | None = None
        self.fetch_sent: list[int] = []
        self.replied: set[int] = set()
        self.served: set[int] = set()


class ReliableBroadcast(Protocol):
    """Bracha reliable broadcast at node ``node_id`` for one session.

    Parameters
    ----------
    node_id, n, f:
        This node, the number of nodes and the bound on Byzantine nodes (``n >= 3f+1``).
    session:
        The session id every instance of this object belongs to.
    dim:
        If given, only vectors of this dimension are valid.
    dtype:
        If given (float32 or float64), only vectors of exactly this dtype are valid: a
        session has one dtype, its honest inputs' (no conversion is made, so a float64
        value can never overflow a float32 view).
    max_round:
        Instances of later rounds are refused (fault ``future-round``); see
        :meth:`set_max_round`.
    value:
        If given, :meth:`start` broadcasts it as this node's value for round 0.
    expect:
        Instances whose delivery makes :attr:`done` true (default: none).
    unsafe:
        Allow ``n < 3f+1`` (to demonstrate what breaks); the guarantees are then void.
    """

    def __init__(
        self,
        node_id: int,
        n: int,
        f: int,
        *,
        session: int = 0,
        dim: int | None = None,
        dtype: object = None,
        max_round: int = 0,
        value: np.ndarray | None = None,
        expect: tuple[InstanceId, ...] = (),
        unsafe: bool = False,
    ) -> None:
        require_resilience(n, f, 3, "Bracha reliable broadcast", unsafe)
        if not 0 <= node_id < n:
            raise ValueError(f"node_id must be in range(n) = range({n}), got {node_id}")
        self.node_id, self.n, self.f = node_id, n, f
        self.session = session
        self.dim = dim
        self.dtype: np.dtype | None = None if dtype is None else session_dtype(dtype)
        self.max_round = max_round
        self.value = value
        self.expect = tuple(expect)
        self.instances: dict[InstanceId, _Instance] = {}
        self.deliveries: dict[InstanceId, Delivered] = {}
        self._echo_threshold = echo_threshold(n, f)
        self._ready_amplify = f + 1
        self._deliver_threshold = 2 * f + 1

    # -- the owner's interface -------------------------------------------------------------
    def set_max_round(self, max_round: int) -> None:
        """Accept instances up to ``max_round`` from now on (the window of future rounds)."""
        self.max_round = max(self.max_round, max_round)

    def valid(self, vector: np.ndarray) -> bool:
        """External validity: :func:`netsim.messages.valid_vector` (finite, a squared norm
        ``<= 2^1000``), of dimension ``dim`` and dtype ``dtype`` when they are set."""
        return vector_problem(vector, self.dtype, self.dim) is None

    def problem(self, vector: np.ndarray) -> str | None:
        """Why ``vector`` is not valid here (:func:`netsim.messages.vector_problem`)."""
        return vector_problem(vector, self.dtype, self.dim)

    def broadcast(self, rnd: int, vector: np.ndarray) -> Step:
        """Start this node's instance ``(session, rnd, node_id)`` with value ``vector``
        (the caller's own value: an invalid one is the caller's error, ``ValueError``)."""
        msg = Value((self.session, rnd, self.node_id), vector)
        why = self.problem(msg.vector)
        if why is not None:
            raise ValueError(f"cannot broadcast an invalid vector ({why})")
        self.set_max_round(rnd)
        return Step([(ALL, msg)])

    @property
    def done(self) -> bool:
        return all(i in self.deliveries for i in self.expect)

    # -- Protocol --------------------------------------------------------------------------
    def start(self, now: float) -> Step:
        if self.value is None:
            return EMPTY
        return self.broadcast(0, self.value)

    def handle(self, sender: int, message: Message, now: float) -> Step:
        t = type(message)
        if t is Echo:
            return self._on_echo(sender, message)  # type: ignore[arg-type]
        if t is Ready:
            return self._on_ready(sender, message)  # type: ignore[arg-type]
        if t is Value:
            return self._on_value(sender, message)  # type: ignore[arg-type]
        if t is Fetch:
            return self._on_fetch(sender, message)  # type: ignore[arg-type]
        if t is Reply:
            return self._on_reply(sender, message)  # type: ignore[arg-type]
        return Step(faults=[Fault(sender, "unexpected-message", t.NAME)])

    # -- internals -------------------------------------------------------------------------
    def _instance(self, sender: int, instance: InstanceId) -> _Instance | Fault:
        inst = self.instances.get(instance)
        if inst is not None:
            return inst
        session, rnd, origin = instance
        if session != self.session:
            return Fault(sender, "wrong-session", f"{instance}")
        if origin >= self.n:
            return Fault(sender, "bad-origin", f"{instance}")
        if rnd > self.max_round:
            return Fault(sender, "future-round", f"{instance} beyond round {self.max_round}")
        inst = self.instances[instance] = _Instance()
        return inst

    def _deliver(self, instance: InstanceId, inst: _Instance, h: bytes, step: Step) -> Step:
        inst.delivered = h
        inst.want = None
        d = Delivered(instance, h, inst.store[h])
        self.deliveries[instance] = d
        step.outputs.append(d)  # type: ignore[attr-defined]
        return step

    def _on_value(self, sender: int, msg: Value) -> Step:
        inst = self._instance(sender, msg.instance)
        if type(inst) is Fault:
            return Step(faults=[inst])
        assert isinstance(inst, _Instance)
        if sender != msg.instance[2]:
            return Step(faults=[Fault(sender, "value-not-from-origin", f"{msg.instance}")])
        if inst.got_value:
            kind = "equivocation" if digest(msg.vector) not in inst.store else "duplicate"
            return Step(faults=[Fault(sender, kind, f"second VALUE for {msg.instance}")])
        inst.got_value = True
        why = self.problem(msg.vector)
        if why is not None:
            return Step(faults=[Fault(sender, "invalid-value", f"{msg.instance}: {why}")])
        h = digest(msg.vector)
        inst.store[h] = msg.vector
        step = Step([(ALL, Echo(msg.instance, h))])
        if inst.want == h:
            self._deliver(msg.instance, inst, h, step)
        return step

    def _on_echo(self, sender: int, msg: Echo) -> Step:
        inst = self._instance(sender, msg.instance)
        if type(inst) is Fault:
            return Step(faults=[inst])
        assert isinstance(inst, _Instance)
        h = msg.digest
        prev = inst.echo_from.get(sender)
        if prev is not None:
            kind = "duplicate" if prev == h else "conflicting-echo"
            return Step(faults=[Fault(sender, kind, f"second ECHO for {msg.instance}")])
        inst.echo_from[sender] = h
        count = inst.echo_count[h] = inst.echo_count.get(h, 0) + 1
        step = EMPTY
        if (
            inst.want == h
            and len(inst.fetch_sent) <= self.f
            and sender != self.node_id
        ):
            inst.fetch_sent.append(sender)
            step = Step([(sender, Fetch(msg.instance, h))])
        if count >= self._echo_threshold and not inst.sent_ready:
            inst.sent_ready = True
            if step is EMPTY:
                step = Step()
            step.messages.append((ALL, Ready(msg.instance, h)))  # type: ignore[attr-defined]
        return step

    def _on_ready(self, sender: int, msg: Ready) -> Step:
        inst = self._instance(sender, msg.instance)
        if type(inst) is Fault:
            return Step(faults=[inst])
        assert isinstance(inst, _Instance)
        h = msg.digest
        prev = inst.ready_from.get(sender)
        if prev is not None:
            kind = "duplicate" if prev == h else "conflicting-ready"
            return Step(faults=[Fault(sender, kind, f"second READY for {msg.instance}")])
        inst.ready_from[sender] = h
        count = inst.ready_count[h] = inst.ready_count.get(h, 0) + 1
        step = EMPTY
        if count >= self._ready_amplify and not inst.sent_ready:
            inst.sent_ready = True
            step = Step([(ALL, Ready(msg.instance, h))])
        if count >= self._deliver_threshold and inst.delivered is None and inst.want is None:
            if step is EMPTY:
                step = Step()
            if h in inst.store:
                return self._deliver(msg.instance, inst, h, step)
            inst.want = h
            askable = sorted(p for p, e in inst.echo_from.items() if e == h and p != self.node_id)
            for peer in askable[: self.f + 1]:
                inst.fetch_sent.append(peer)
                step.messages.append((peer, Fetch(msg.instance, h)))  # type: ignore[attr-defined]
        return step

    def _on_fetch(self, sender: int, msg: Fetch) -> Step:
        inst = self._instance(sender, msg.instance)
        if type(inst) is Fault:
            return Step(faults=[inst])
        assert isinstance(inst, _Instance)
        if sender in inst.served:
            return Step(faults=[Fault(sender, "duplicate", f"second FETCH for {msg.instance}")])
        inst.served.add(sender)
        vec = inst.store.get(msg.digest)
        if vec is None:
            return Step(faults=[Fault(sender, "unknown-fetch", f"{msg.instance}")])
        return Step([(sender, Reply(msg.instance, vec))])

    def _on_reply(self, sender: int, msg: Reply) -> Step:
        inst = self.instances.get(msg.instance)
        if inst is None or sender not in inst.fetch_sent:
            return Step(faults=[Fault(sender, "unsolicited-reply", f"{msg.instance}")])
        if sender in inst.replied:
            return Step(faults=[Fault(sender, "duplicate", f"second REPLY for {msg.instance}")])
        inst.replied.add(sender)
        if inst.want is None:
            return EMPTY  # already delivered: a late honest reply
        h = digest(msg.vector)
        if h != inst.want:
            return Step(faults=[Fault(sender, "bad-reply", f"digest mismatch {msg.instance}")])
        why = self.problem(msg.vector)
        if why is not None:  # pragma: no cover - needs a digest collision
            return Step(faults=[Fault(sender, "invalid-value", f"{msg.instance}: {why}")])
        inst.store[h] = msg.vector
        return self._deliver(msg.instance, inst, h, Step())
