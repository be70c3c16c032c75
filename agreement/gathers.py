"""Gathers: how one round's view is collected. Two are offered:

- ``witness``: reliable broadcast plus witnesses (:class:`broadcast.WitnessGather`,
  docs/theory.md §4): views of size ``n-f..n``, any two honest views sharing ``>= n-f`` values,
  a Byzantine origin's value the same in every view (``n >= 3f+1``);
- ``first-quorum``: :class:`FirstQuorumGather`, plain sends and the first ``n-f`` valid
  vectors of the round. Cheaper (n messages of d floats per node and round instead of RB's
  n² digests plus fetches), but two honest views may share only ``n-2f`` values and a
  Byzantine node may put different values in different views.

Both have the interface ``gather(round, vector) -> Step``, their outputs are
:class:`broadcast.View` objects, and the rounds they accept are bounded by ``max_round``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from broadcast import View, WitnessGather
from netsim.messages import Message, Send, session_dtype, vector_problem
from netsim.protocol import ALL, EMPTY, Fault, Protocol, Step, require_resilience


class FirstQuorumGather(Protocol):
    """Plain sends; the view of a round is the first ``n-f`` valid vectors received.

    Each peer's first ``SEND`` per round counts; a second is a fault (``duplicate`` or
    ``equivocation``), as are invalid vectors (``invalid-value``, its detail saying why:
    :func:`netsim.messages.vector_problem`: non-finite, a squared norm above 2^1000, or not
    of the session's ``dim`` and ``dtype`` when they are set) and rounds beyond ``max_round``
    (``future-round``). Memory: at most one vector per peer and round, rounds ``<=
    max_round``. Needs ``n >= 2f+1``, so that a view of
    ``n-f`` vectors holds at least ``n-2f >= 1`` honest ones.
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
        unsafe: bool = False,
    ) -> None:
        require_resilience(n, f, 2, "the first-quorum gather", unsafe)
        self.node_id, self.n, self.f = node_id, n, f
        self.session = session
        self.dim = dim
        self.dtype: np.dtype | None = None if dtype is None else session_dtype(dtype)
        self.max_round = max_round
        self.received: dict[int, dict[int, np.ndarray]] = {}
        self.views: dict[int, View] = {}

    def set_max_round(self, max_round: int) -> None:
        self.max_round = max(self.max_round, max_round)

    def gather(self, rnd: int, vector: np.ndarray) -> Step:
        msg = Send((self.session, rnd, self.node_id), vector)
        why = vector_problem(msg.vector, self.dtype, self.dim)
        if why is not None:
            raise ValueError(f"cannot send an invalid vector ({why})")
        self.set_max_round(rnd)
        return Step([(ALL, msg)])

    def _valid(self, v: np.ndarray) -> bool:
        return vector_problem(v, self.dtype, self.dim) is None

    def start(self, now: float) -> Step:
        return EMPTY

    def handle(self, sender: int, message: Message, now: float) -> Step:
        if type(message) is not Send:
            return Step(faults=[Fault(sender, "unexpected-message", message.NAME)])
        session, rnd, origin = message.instance  # type: ignore[attr-defined]
        if session != self.session:
            return Step(faults=[Fault(sender, "wrong-session", f"{message.instance}")])
        if origin != sender:
            return Step(faults=[Fault(sender, "value-not-from-origin", f"{message.instance}")])
        if rnd > self.max_round:
            return Step(faults=[Fault(sender, "future-round", f"round {rnd}")])
        got = self.received.setdefault(rnd, {})
        vec = message.vector  # type: ignore[attr-defined]
        if sender in got:
            same = got[sender].tobytes() == vec.tobytes()
            kind = "duplicate" if same else "equivocation"
            return Step(faults=[Fault(sender, kind, f"round {rnd}")])
        why = vector_problem(vec, self.dtype, self.dim)
        if why is not None:
            got[sender] = vec  # remembered so that a retry is a fault, never a view member
            return Step(faults=[Fault(sender, "invalid-value", f"round {rnd}: {why}")])
        got[sender] = vec
        if rnd in self.views:
            return EMPTY
        valid = {o: v for o, v in got.items() if self._valid(v)}
        if len(valid) < self.n - self.f:
            return EMPTY
        view = View(self.session, rnd, {o: valid[o] for o in sorted(valid)}, ())
        self.views[rnd] = view
        return Step(outputs=[view])


GATHERS: dict[str, Callable[..., Any]] = {
    "witness": WitnessGather,
    "first-quorum": FirstQuorumGather,
}


def make_gather(
    name: str, node_id: int, n: int, f: int, *, session: int, dim: int | None,
    max_round: int, unsafe: bool, dtype: object = None,
) -> WitnessGather | FirstQuorumGather:
    """Build a gather by name (``witness`` or ``first-quorum``); only vectors of the
    session's ``dim`` and ``dtype`` (when given) are valid, hence in a view."""
    if name == "witness":
        return WitnessGather(node_id, n, f, session=session, dim=dim, dtype=dtype, window=0,
                             rounds=max_round + 1, unsafe=unsafe)
    if name == "first-quorum":
        return FirstQuorumGather(node_id, n, f, session=session, dim=dim, dtype=dtype,
                                 max_round=max_round, unsafe=unsafe)
    raise ValueError(f"unknown gather {name!r}; known: {', '.join(sorted(GATHERS))}")
