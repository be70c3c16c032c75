"""A user's strategy module written against Jungle's public API only (no ``_private`` name,
no private module): a value attack, a per-receiver value attack and a protocol-level strategy
that reads the honest values through the typed context. ``tests/netsim/test_adversary_api.py``
checks its imports with ``ast`` and runs it in both engines; ``tests/learning/
test_custom_attack.py`` runs it in training. :func:`registered` registers it for one test and
restores the registries afterwards (they are process-wide)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from agreement import attacks, register_value_attack
from netsim.adversary import ALL, STRATEGIES, CoreStrategy, register_strategy


def shift(honest: np.ndarray, f: int, rng: np.random.Generator,
          scale: float = 3.0) -> np.ndarray:
    """Every Byzantine node sends the honest mean moved by scale x the honest std."""
    v = honest.mean(axis=0) + scale * honest.std(axis=0)
    return np.repeat(v[None], f, axis=0)


def mirror(honest: np.ndarray, f: int, rng: np.random.Generator) -> np.ndarray:
    """Per receiver: honest node j (the j-th honest id) gets 2·x_j - mean, mirrored away."""
    far = 2 * honest - honest.mean(axis=0)
    return np.repeat(far[:, None, :], f, axis=1)  # (h, f, d)


mirror.per_receiver = True  # type: ignore[attr-defined]


class FavourHigh(CoreStrategy):
    """Honest cores that talk only to the honest nodes at or above the honest median of
    coordinate 0 in the message's round (the others never hear from the Byzantine ids)."""

    name = "favour-high"

    def route(self, byz, core, target, msg):  # type: ignore[override]
        rnd = getattr(msg, "instance", (0, 0, 0))[1]
        vals = self.ctx.honest_values(rnd)
        dsts = [d for d in range(self.ctx.n) if d != byz] if target == ALL else [target]
        if vals is None:  # a protocol without values: behave honestly
            return [(byz, d, msg) for d in dsts]
        cut = float(np.median(vals[:, 0]))
        keep = {i for i, v in zip(self.ctx.honest_ids, vals[:, 0], strict=True) if v >= cut}
        keep |= set(self.ctx.byzantine_ids)
        return [(byz, d, msg) for d in dsts if d in keep]


NAMES = {"value": ("test-shift", "test-mirror"), "strategy": ("test-favour-high",)}


@contextlib.contextmanager
def registered() -> Iterator[None]:
    """Register this module's attacks and strategy for the duration of a ``with`` block."""
    before_attacks = dict(attacks.VALUE_ATTACKS)
    before_strategies = dict(STRATEGIES)
    register_value_attack("test-shift", shift)
    register_value_attack("test-mirror", mirror, per_receiver=True)
    register_strategy("test-favour-high", FavourHigh)
    try:
        yield
    finally:
        attacks.VALUE_ATTACKS.clear()
        attacks.VALUE_ATTACKS.update(before_attacks)
        attacks.VALUE_ATTACK_NAMES = attacks.value_attack_names()
        STRATEGIES.clear()
        STRATEGIES.update(before_strategies)
