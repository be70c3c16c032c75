"""Message-level value attacks on averaging agreement.

:class:`ValueAttack` is a netsim core strategy: each Byzantine node runs an honest
:class:`~agreement.protocol.AveragingAgreement` core (so it follows every step of reliable
broadcast and witnesses, and keeps up with the rounds), but each round the vector it
broadcasts is replaced by the attack's value, computed from the honest nodes' current
vectors (the adversary is omniscient). Two-sided attacks (``split``, ``omniscient``): under
the first-quorum gather (plain SENDs) each Byzantine node equivocates, the low value to the
lower half of the honest nodes and the high value to the upper half; under reliable
broadcast, which would reduce such an equivocation to at most one delivered value, half of
the Byzantine nodes broadcast the low value and half the high one.

:class:`TargetedViews`, the scheduler that pairs with the two-sided attacks, lives in
:mod:`netsim.sim.schedulers` (registered there as ``targeted``); it is re-exported here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netsim.messages import Message, Send, Value
from netsim.protocol import ALL
from netsim.sim.adversary import CoreStrategy, Emission
from netsim.sim.schedulers import TargetedViews, split_sides

from .attacks import TWO_SIDED, VALUE_ATTACK_NAMES, attack_values

__all__ = ["TargetedViews", "ValueAttack"]


class ValueAttack(CoreStrategy):
    """Byzantine nodes that follow the protocol but send the attack's vector each round."""

    def __init__(self, attack: str, **params: Any) -> None:
        if attack not in VALUE_ATTACK_NAMES:
            raise ValueError(
                f"unknown value attack {attack!r}; known: {', '.join(VALUE_ATTACK_NAMES)}"
            )
        self.attack = attack
        self.name = attack
        self.params = params

    def setup(self, ctx: Any) -> None:
        super().setup(ctx)
        self._cache: dict[int, tuple[np.ndarray, dict[int, int] | None]] = {}
        self._gen = ctx.np_rng()
        if self.attack == "alie":
            self.params.setdefault("n", ctx.n)

    def _honest_at(self, rnd: int) -> np.ndarray:
        """The honest vectors of round ``rnd`` (a node not there yet shows its latest)."""
        rows = []
        for i in self.ctx.honest_ids:
            hist = self.ctx.honest[i].history
            rows.append(hist[min(rnd, len(hist) - 1)])
        return np.stack(rows)

    def _values(self, rnd: int) -> tuple[np.ndarray, dict[int, int] | None]:
        got = self._cache.get(rnd)
        if got is None:
            honest = self._honest_at(rnd)
            vals = attack_values(self.attack, honest, len(self.ctx.byzantine_ids), self._gen,
                                 **self.params)
            sides = None
            if self.attack in TWO_SIDED:
                side, _ = split_sides(honest)
                sides = {i: int(s) for i, s in zip(self.ctx.honest_ids, side, strict=True)}
            got = self._cache[rnd] = (vals, sides)
        return got

    def route(self, byz: int, core: int, target: int, msg: Message) -> list[Emission]:
        if not isinstance(msg, Value | Send) or msg.instance[2] != byz:
            return [(byz, target, msg)]
        _, rnd, _ = msg.instance
        vals, sides = self._values(rnd)
        k = self.ctx.byzantine_ids.index(byz)
        dtype = msg.vector.dtype
        dsts = [d for d in range(self.ctx.n) if d != byz] if target == ALL else [target]
        cls = type(msg)
        if sides is not None and cls is Value:
            # reliable broadcast would reduce an equivocation to (at most) one delivered
            # value: send one side's value to everyone instead, half of the Byzantine nodes
            # low and half high, and let the schedule decide who sees which
            b = len(self.ctx.byzantine_ids)
            v = vals[0 if k < (b + 1) // 2 else 1, k].astype(dtype)
            return [(byz, target, cls(msg.instance, v))]
        if sides is None:
            v = vals[k].astype(dtype)
            return [(byz, target, cls(msg.instance, v))]
        out: list[Emission] = []
        for d in dsts:
            v = vals[sides.get(d, 0), k].astype(dtype)
            out.append((byz, d, cls(msg.instance, v)))
        return out
