"""The witness gather (Abraham, Amit, Dolev, OPODIS 2004; docs/theory.md §4), sans-IO.

Per round ``r`` at honest node ``i``, with ``n >= 3f+1``::

    RB-broadcast (r, x_i)
    V_i := values RB-delivered for round r (origin -> vector), growing over time
    when |V_i| first reaches n-f:  send REPORT(r, S_i) to all, S_i = those n-f origins
    node k is a witness for i when i got REPORT(r, S_k) from k and S_k ⊆ V_i
    when i has n-f witnesses:      output the view V_i as it stands (n-f <= |V_i| <= n)

Guarantee: any two honest views of a round share at least ``n-f`` values. Two witness sets of
size ``n-f`` overlap in ``n-2f >= f+1`` nodes, hence in an honest node ``k``, which sent the
same ``S_k`` to both; ``S_k`` is contained in both views, and ``|S_k| = n-f``. By the
agreement of reliable broadcast, a given origin has the same value in every view.

Reports need no reliable broadcast (an honest witness sends the same report to all). Each
peer's first report per round is kept; a second one, or one that is not a set of ``n-f``
origins, is a fault. Rounds beyond ``max_round`` (the current round plus ``window``) are
refused as faults so that a flooding peer cannot grow memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netsim.messages import Message, Report
from netsim.protocol import ALL, EMPTY, Fault, Protocol, Step, require_resilience

from .bracha import Delivered, ReliableBroadcast


@dataclass(frozen=True, slots=True)
class View:
    """Output of the witness gather: the view of node ``node`` for ``round``.

    ``values`` maps origin to vector, in increasing origin order; ``witnesses`` are the
    nodes whose reports made the view final. ``rows``, when given, is the view already as
    one C-contiguous ``(|V|, d)`` array whose rows are ``values`` in order (the gather
    assembles it as the values arrive): :meth:`matrix` returns it without a copy.
    """

    session: int
    round: int
    values: dict[int, np.ndarray]
    witnesses: tuple[int, ...] = field(default=())
    rows: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def origins(self) -> tuple[int, ...]:
        return tuple(self.values)

    def matrix(self) -> np.ndarray:
        """The view as an ``(|V|, d)`` array, rows in increasing origin order (read-only;
        :attr:`rows` when the gather assembled it, else a stack of :attr:`values`)."""
        if self.rows is not None:
            return self.rows
        return np.stack(list(self.values.values()))


class _Round:
    __slots__ = ("block", "done", "reported", "reports", "values", "witnesses")

    def __init__(self) -> None:
        self.values: dict[int, np.ndarray] = {}
        self.block: np.ndarray | None = None  # (n, d): row o holds origin o's value
        self.reported = False
        self.reports: dict[int, frozenset[int]] = {}
        self.witnesses: set[int] = set()
        self.done = False

    def add(self, origin: int, vector: np.ndarray, n: int) -> None:
        """Keep ``origin``'s delivered value: until the view is out, copied into row
        ``origin`` of one ``(n, d)`` block allocated at the round's first value (every
        delivered value of a session has its dtype and dimension), so the view needs no
        stack; after it, kept as it is (a late value is in no view)."""
        block = self.block
        if block is None and not self.done and not self.values:
            block = self.block = np.empty((n, vector.shape[0]), dtype=vector.dtype)
        if self.done or block is None or block.dtype != vector.dtype \
                or block.shape[1:] != vector.shape:
            # after the view, or a gather without a session dtype and dimension that got
            # values of several: kept as they are (the view is then a stack, as before)
            self.block = None
            self.values[origin] = vector
            return
        row = block[origin]
        row[...] = vector
        row.flags.writeable = False
        self.values[origin] = row

    def rows(self, origins: list[int]) -> np.ndarray | None:
        """The view's ``(|V|, d)`` array for the sorted ``origins`` (called once, when the
        view is out): the block's first ``|V|`` rows, without a copy when the origins are
        ``0 .. |V|-1``; else after moving each row after a gap up into it, in place (only
        the rows after the first missing origin are copied, into memory already touched),
        and :attr:`values` then names the moved rows."""
        block = self.block
        if block is None:
            return None
        for i, o in enumerate(origins):
            if o != i:  # i < o: row i is free (a missing origin's, or already moved up)
                block[i] = block[o]
                row = block[i]
                row.flags.writeable = False
                self.values[o] = row
        out = block[: len(origins)]
        out.flags.writeable = False
        return out


class WitnessGather(Protocol):
    """Reliable broadcast plus witnesses: one view per round, ``n-f <= |V| <= n``.

    Parameters
    ----------
    node_id, n, f, session, dim, dtype, unsafe:
        As for :class:`broadcast.bracha.ReliableBroadcast` (``n >= 3f+1``): only values of
        the session's dimension and dtype (when set) are delivered, hence in a view.
    window:
        How many rounds beyond the current one peers may already send messages for.
    value:
        If given, :meth:`start` gathers round 0 with this node's value.
    rounds:
        The session's length: :attr:`done` becomes true once the view of round
        ``rounds - 1`` is out, and messages of every round below ``rounds`` are always
        accepted, whatever the window (an honest node may lag any number of rounds behind
        the others: refusing their messages would cost it liveness). Memory stays bounded
        by ``max(rounds, current + window + 1)`` rounds of at most n values each.
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
        window: int = 2,
        value: np.ndarray | None = None,
        rounds: int = 1,
        unsafe: bool = False,
    ) -> None:
        require_resilience(n, f, 3, "the witness gather", unsafe)
        self.node_id, self.n, self.f = node_id, n, f
        self.session = session
        self.window = window
        self.value = value
        self.rounds = rounds
        self.rb = ReliableBroadcast(
            node_id, n, f, session=session, dim=dim, dtype=dtype, max_round=max(window, rounds - 1),
            unsafe=unsafe,
        )
        self.state: dict[int, _Round] = {}
        self.views: dict[int, View] = {}
        self.current = 0

    @property
    def max_round(self) -> int:
        return self.rb.max_round

    @property
    def done(self) -> bool:
        return (self.rounds - 1) in self.views

    def gather(self, rnd: int, vector: np.ndarray) -> Step:
        """Start round ``rnd`` with this node's vector; its view comes out later."""
        self.current = max(self.current, rnd)
        self.rb.set_max_round(rnd + self.window)
        return self.rb.broadcast(rnd, vector)

    # -- Protocol --------------------------------------------------------------------------
    def start(self, now: float) -> Step:
        if self.value is None:
            return EMPTY
        return self.gather(0, self.value)

    def handle(self, sender: int, message: Message, now: float) -> Step:
        if type(message) is Report:
            return self._on_report(sender, message)
        step = self.rb.handle(sender, message, now)
        if not step.outputs:
            return step
        out = Step(list(step.messages), [], list(step.faults))
        for d in step.outputs:
            if isinstance(d, Delivered):
                out.extend(self._on_delivered(d))
        return out

    # -- internals -------------------------------------------------------------------------
    def _round(self, rnd: int) -> _Round:
        st = self.state.get(rnd)
        if st is None:
            st = self.state[rnd] = _Round()
        return st

    def _on_delivered(self, d: Delivered) -> Step:
        _, rnd, origin = d.instance
        st = self._round(rnd)
        st.add(origin, d.vector, self.n)
        step = Step()
        if not st.reported and len(st.values) >= self.n - self.f:
            st.reported = True
            origins = tuple(sorted(st.values))[: self.n - self.f]
            step.messages.append((ALL, Report(self.session, rnd, origins)))  # type: ignore[attr-defined]
        if not st.done:
            have = st.values.keys()
            for k, s in st.reports.items():
                if k not in st.witnesses and s <= have:
                    st.witnesses.add(k)
            self._maybe_output(rnd, st, step)
        return step

    def _on_report(self, sender: int, msg: Report) -> Step:
        if msg.session != self.session:
            return Step(faults=[Fault(sender, "wrong-session", f"report {msg.session}")])
        if msg.round > self.max_round:
            return Step(faults=[Fault(sender, "future-round", f"report round {msg.round}")])
        origins = frozenset(msg.origins)
        if len(origins) != self.n - self.f or any(o >= self.n for o in origins):
            return Step(faults=[Fault(sender, "bad-report", f"round {msg.round}")])
        st = self._round(msg.round)
        prev = st.reports.get(sender)
        if prev is not None:
            kind = "duplicate" if prev == origins else "conflicting-report"
            return Step(faults=[Fault(sender, kind, f"round {msg.round}")])
        st.reports[sender] = origins
        if st.done or not origins <= st.values.keys():
            return EMPTY
        st.witnesses.add(sender)
        step = Step()
        self._maybe_output(msg.round, st, step)
        return step

    def _maybe_output(self, rnd: int, st: _Round, step: Step) -> None:
        if st.done or len(st.witnesses) < self.n - self.f:
            return
        st.done = True
        origins = sorted(st.values)
        rows = st.rows(origins)  # first: it may move values up into the block's gaps
        view = View(
            self.session,
            rnd,
            {o: st.values[o] for o in origins},
            tuple(sorted(st.witnesses)),
            rows,
        )
        self.views[rnd] = view
        step.outputs.append(view)  # type: ignore[attr-defined]
