"""The public API for writing a Byzantine strategy (docs/guides/adversary.md).

Everything a strategy author needs, from one module:

- :class:`Strategy` (the base: ``setup(ctx)``, ``start(now)``, ``receive(byz, sender,
  message, now)``, each returning :data:`Emission` triples) and :class:`CoreStrategy`
  (Byzantine nodes that run honest cores of the run's own protocol and route, withhold,
  duplicate or rewrite what the cores send);
- :class:`AdversaryContext`: the typed, read-only window a strategy gets in ``setup``;
- :data:`ALL` (the target "every node"), and
  :func:`register_strategy`, :func:`make_strategy` and :data:`STRATEGIES`, the registry that
  every front end reads (``--strategy NAME`` on the command lines, ``strategy="NAME"`` in
  :func:`agreement.run`).

**The capability model** (docs/architecture.md, "The adversary"). A strategy is omniscient
but not omnipotent: through the context it may read every honest node's value and view and
every message in flight (in the simulator; a Byzantine process on a real network sees only
what it receives), and it may *write* only messages whose sender is one of
``ctx.byzantine_ids``: the simulator refuses any other sender. It cannot drop, delay or
forge honest messages; *when* messages arrive is the scheduler's business, and a scheduler
may only delay (:mod:`netsim.sim.schedulers`). Hence every safety property proven for at
most f Byzantine senders (docs/theory.md §1) holds against any strategy written here.

Value attacks (what Byzantine nodes put into an averaging round) are plain functions
``attack(honest, f, rng, **params) -> (f, d)``, registered with
:func:`agreement.attacks.register_value_attack`; they need no class.
"""

from __future__ import annotations

import copy
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .deprecation import deprecated_alias, renamed_keywords
from .messages import Message, valid_vector
from .protocol import ALL, Protocol, ValueHistory

InFlight = tuple[float, int, int, "Message | bytes"]
"""``(delivery time, or inf while held; src; dst; message or raw bytes)``."""


class AdversaryContext(ABC):
    """The adversary's typed, read-only window on a run, given to ``Strategy.setup``.

    Attributes (read-only by convention): ``n``, ``f``; ``byzantine_ids`` (the ids this
    strategy may send as) and ``honest_ids`` (both sorted tuples); ``rng``, the run's one
    ``random.Random`` (every random choice of a strategy must come from it, or from
    :meth:`np_rng`, for the run to be reproducible from its seed); ``factory(node_id,
    input) -> Protocol``, the run's protocol factory (for honest-looking cores); and
    ``inputs``, node id -> input.

    Value accessors, for protocols that iterate on vectors (:class:`netsim.protocol.
    ValueHistory`, e.g. averaging agreement): :meth:`honest_values` and :meth:`views`. A
    strategy reads honest state only through them, never through a protocol's attributes.

    Implemented by the simulator (omniscient) and by a Byzantine process of the real network
    (:class:`netsim.net.node.LocalAdversaryContext`: no honest state, so
    :meth:`in_flight`, :meth:`honest_values` and :meth:`views` raise
    ``NotImplementedError``).
    """

    n: int
    f: int
    byzantine_ids: tuple[int, ...]
    honest_ids: tuple[int, ...]
    rng: random.Random
    factory: Callable[[int, Any], Protocol]
    inputs: Mapping[int, Any]

    byzantine = deprecated_alias("byzantine_ids")

    @property
    @abstractmethod
    def now(self) -> float:
        """The current (virtual, in the simulator) time."""

    @abstractmethod
    def in_flight(self) -> list[InFlight]:
        """Every message scheduled or held, in delivery order (:data:`InFlight`)."""

    @abstractmethod
    def honest_values(self, round: int) -> np.ndarray | None:
        """``(h, d)``: row ``j`` is honest node ``honest_ids[j]``'s vector entering round
        ``round`` (:meth:`netsim.protocol.ValueHistory.value_at`: a node not there yet
        shows its latest); ``None`` when the run's protocol exposes no values (e.g. one
        reliable broadcast) or the honest vectors differ in shape."""

    @abstractmethod
    def views(self, round: int) -> dict[int, Mapping[int, np.ndarray]] | None:
        """Honest node id -> the view (``origin -> vector``) it applied its rule to in round
        ``round``, for the honest nodes whose view of that round is formed
        (:meth:`netsim.protocol.ValueHistory.view_at`); ``None`` when the protocol exposes
        no views."""

    @renamed_keywords(byzantine="byzantine_ids")
    def only(self, byzantine_ids: tuple[int, ...]) -> AdversaryContext:
        """The same context for a subset of the Byzantine ids (for mixed strategies)."""
        sub = copy.copy(self)
        sub.byzantine_ids = tuple(byzantine_ids)
        return sub

    def np_rng(self) -> np.random.Generator:
        """A numpy generator seeded from the run's one random source (``rng``)."""
        return np.random.default_rng(self.rng.getrandbits(64))

    def alt_input(self, node: int) -> Any:
        """A different, still valid, input for ``node`` (for equivocation and twins):
        ``x + N(0, I)·(1 + max|x|)`` in ``x``'s dtype, mirrored (``-x``) where that
        overflows; ``None`` where ``node`` has no input."""
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


def values_of(nodes: Mapping[int, Any], ids: tuple[int, ...], round: int) -> np.ndarray | None:
    """:meth:`AdversaryContext.honest_values` over protocol objects (for implementers of a
    context): ``None`` unless every node of ``ids`` is a :class:`ValueHistory` whose
    vectors of ``round`` are 1-D of one shape."""
    if round < 0:
        raise ValueError(f"rounds count from 0, got {round}")
    rows = []
    for i in ids:
        node = nodes.get(i)
        if not isinstance(node, ValueHistory):
            return None
        rows.append(np.asarray(node.value_at(round)))
    if not rows or rows[0].ndim != 1 or len({r.shape for r in rows}) > 1:
        return None
    return np.stack(rows)


def views_of(nodes: Mapping[int, Any], ids: tuple[int, ...], round: int
             ) -> dict[int, Mapping[int, np.ndarray]] | None:
    """:meth:`AdversaryContext.views` over protocol objects (for implementers of a context)."""
    if round < 0:
        raise ValueError(f"rounds count from 0, got {round}")
    out: dict[int, Mapping[int, np.ndarray]] = {}
    for i in ids:
        node = nodes.get(i)
        if not isinstance(node, ValueHistory):
            return None
        view = node.view_at(round)
        if view is not None:
            out[i] = view
    return out


# the strategies themselves live with the simulator; this module is their public face
from .sim.adversary import (  # noqa: E402
    STRATEGIES,
    BadReply,
    CoreStrategy,
    Crash,
    Emission,
    Equivocate,
    Flood,
    Forge,
    Garbage,
    Honest,
    Mixed,
    Replay,
    Selective,
    Silent,
    Strategy,
    Twins,
    make_strategy,
    register_strategy,
    strategy_names,
)

__all__ = [
    "ALL",
    "STRATEGIES",
    "AdversaryContext",
    "BadReply",
    "CoreStrategy",
    "Crash",
    "Emission",
    "Equivocate",
    "Flood",
    "Forge",
    "Garbage",
    "Honest",
    "InFlight",
    "Mixed",
    "Replay",
    "Selective",
    "Silent",
    "Strategy",
    "Twins",
    "ValueHistory",
    "make_strategy",
    "register_strategy",
    "strategy_names",
    "values_of",
    "views_of",
]
