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
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netsim.adversary import CoreStrategy, Emission
from netsim.messages import Message, Ready, Report, Send, Value
from netsim.protocol import ALL
from netsim.schedulers import Scheduler

from .attacks import ATTACKS, TWO_SIDED, attack_values, split_sides


class ValueAttack(CoreStrategy):
    """Byzantine nodes that follow the protocol but send the attack's vector each round."""

    def __init__(self, attack: str, **params: Any) -> None:
        if attack not in ATTACKS and attack != "omniscient":
            raise ValueError(
                f"unknown value attack {attack!r}; known: {', '.join(sorted(ATTACKS))}, "
                "omniscient"
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
            vals = attack_values(self.attack, honest, len(self.ctx.byzantine), self._gen,
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
        k = self.ctx.byzantine.index(byz)
        dtype = msg.vector.dtype
        dsts = [d for d in range(self.ctx.n) if d != byz] if target == ALL else [target]
        cls = type(msg)
        if sides is not None and cls is Value:
            # reliable broadcast would reduce an equivocation to (at most) one delivered
            # value: send one side's value to everyone instead, half of the Byzantine nodes
            # low and half high, and let the schedule decide who sees which
            b = len(self.ctx.byzantine)
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


class TargetedViews(Scheduler):
    """A scheduler that makes honest views differ as much as the witness gather allows.

    The message-level counterpart of the round engine's ``omniscient`` views. Honest nodes are
    split in two sides along their widest direction (recomputed each round from their
    current vectors: the scheduler reads the adversary's omniscient context); the Byzantine
    nodes are split in a low and a high half, as :class:`ValueAttack` does. Delays per hop:
    honest instances ``[0, 0.3]`` (delivered first, so every report names honest origins
    only); Byzantine instances ``[0.3, 0.6]``, except their READYs to the other side, which
    take ``slow + [0, 1]``; reports ``2 + [0, 0.5]`` (views form after each side has its own
    Byzantine values and before it can have the other side's). Each side's view then holds
    the honest values plus its own side's Byzantine values. It only delays: every message is
    eventually delivered.
    """

    name = "targeted"

    def __init__(self, slow: float = 5.0) -> None:
        super().__init__()
        self.slow = slow
        self.ctx: Any = None
        self._sides: dict[int, dict[int, int]] = {}

    def bind(self, ctx: Any) -> None:
        """Receive the adversary's omniscient context (called by the simulator)."""
        self.ctx = ctx

    def _side_of(self, rnd: int) -> dict[int, int]:
        sides = self._sides.get(rnd)
        if sides is None:
            ids = self.ctx.honest_ids
            rows = []
            for i in ids:
                hist = getattr(self.ctx.honest[i], "history", None)
                rows.append(hist[min(rnd, len(hist) - 1)] if hist else self.ctx.inputs[i])
            side, _ = split_sides(np.stack(rows).astype(np.float64))
            sides = self._sides[rnd] = {i: int(s) for i, s in zip(ids, side, strict=True)}
        return sides

    def delay(self, src, dst, message, now, rng):  # type: ignore[override]
        if self.healed or message is None or self.ctx is None:
            return rng.random()
        if isinstance(message, Report):
            return 2.0 + 0.5 * rng.random()
        _, rnd, origin = message.instance
        byz = self.ctx.byzantine
        if origin not in byz:
            return 0.3 * rng.random()
        if type(message) is Ready and dst not in byz:
            k = byz.index(origin)
            origin_side = 0 if k < (len(byz) + 1) // 2 else 1
            if self._side_of(rnd).get(dst, origin_side) != origin_side:
                return self.slow + rng.random()
        return 0.3 + 0.3 * rng.random()
