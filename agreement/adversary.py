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

The attack is a registered name or a function of the value-attack contract
(:mod:`agreement.attacks`: ``attack(honest, f, rng, **params) -> (f, d)``, or ``(h, f, d)``
per receiver). The honest vectors come from the public context
(:meth:`netsim.adversary.AdversaryContext.honest_values`), never from a protocol's
attributes. A per-receiver attack sends honest receiver ``r`` (the ``r``-th honest id) row
``r``, as a SEND (first-quorum: each view gets its own value) or a VALUE (reliable
broadcast: an equivocation, of which at most one value is delivered, or none); Byzantine
receivers get row 0.

:class:`TargetedViews`, the scheduler that pairs with the two-sided attacks, lives in
:mod:`netsim.sim.schedulers` (registered there as ``targeted``); it is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from netsim.adversary import AdversaryContext, CoreStrategy, Emission
from netsim.messages import Message, Send, Value
from netsim.protocol import ALL
from netsim.registry import unknown
from netsim.sim.schedulers import TargetedViews, split_sides

from .attacks import (
    TWO_SIDED,
    attack_values,
    check_value_attack,
    is_per_receiver,
    value_attack_names,
)

__all__ = ["TargetedViews", "ValueAttack"]


class ValueAttack(CoreStrategy):
    """Byzantine nodes that follow the protocol but send the attack's vector each round."""

    per_receiver = False

    def __init__(self, attack: str | Callable[..., Any], **params: Any) -> None:
        if isinstance(attack, str):
            if attack not in value_attack_names():
                raise unknown("value attack", attack, value_attack_names())
            self.name = attack
        elif callable(attack):
            self.name = getattr(attack, "__name__", type(attack).__name__)
        else:
            raise TypeError(f"a value attack is a name or a function, got "
                            f"{type(attack).__name__}")
        self.attack = attack
        self.params = params
        self.per_receiver = is_per_receiver(attack)

    def setup(self, ctx: AdversaryContext) -> None:
        super().setup(ctx)
        self._cache: dict[int, tuple[np.ndarray, dict[int, int] | None]] = {}
        self._gen = ctx.np_rng()
        if isinstance(self.attack, str) and self.attack == "alie":
            self.params.setdefault("n", ctx.n)

    def _honest_at(self, rnd: int) -> np.ndarray:
        """The honest vectors of round ``rnd`` (a node not there yet shows its latest),
        from the public context."""
        vals = self.ctx.honest_values(rnd)
        if vals is None:
            raise ValueError(
                f"the value attack {self.name!r} needs honest nodes that expose their vectors "
                "(netsim.protocol.ValueHistory, e.g. agreement.AveragingAgreement); this "
                "protocol does not: use a protocol-level strategy"
            )
        return vals

    def _values(self, rnd: int) -> tuple[np.ndarray, dict[int, int] | None]:
        """Round ``rnd``'s values and, for two-sided and per-receiver attacks, the row of
        each honest receiver (a side, or its index among the honest ids)."""
        got = self._cache.get(rnd)
        if got is None:
            honest = self._honest_at(rnd)
            b, (h, d) = len(self.ctx.byzantine_ids), honest.shape
            vals = attack_values(self.attack, honest, b, self._gen, **self.params)
            sides = None
            if isinstance(self.attack, str) and self.attack in TWO_SIDED:
                side, _ = split_sides(honest)
                sides = {i: int(s) for i, s in zip(self.ctx.honest_ids, side, strict=True)}
            else:
                vals = check_value_attack(vals, b, h, d, self.per_receiver, repr(self.name))
                if self.per_receiver:
                    sides = {i: j for j, i in enumerate(self.ctx.honest_ids)}
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
        if self.per_receiver and sides is not None:  # each receiver its own row
            return [(byz, d, cls(msg.instance, vals[sides.get(d, 0), k].astype(dtype)))
                    for d in dsts]
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
