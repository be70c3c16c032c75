"""The lower bound ``C >= f/(n-f)`` (docs/theory.md §2) made concrete in the simulator.

Inputs: nodes ``0..f-1`` hold 1, nodes ``f..n-1`` hold 0 (1-D). Two worlds, one seed, one
scheduler, full message level (:func:`agreement.run`):

- world A: nodes ``0..f-1`` are Byzantine and run the honest protocol (netsim strategy
  ``honest``) with input 1. The honest inputs are all 0: ``Δ2(x) = 0``, so C-averaging for any
  finite C forces every honest output to be exactly 0.
- world B: nodes ``f..2f-1`` are Byzantine and run the honest protocol with input 0. The
  honest inputs are f ones and n-2f zeros: ``x̄ = f/(n-f)``, ``Δ2(x) = 1``.

Every node sends the same messages in both worlds (the Byzantine nodes behave exactly as
honest nodes with those inputs would), so the nodes honest in both worlds (``2f..n-1``) see
the same run and output the same values; :func:`two_worlds` checks this equality. If world A
meets its bound (outputs 0), world B's outputs are within ``Δ2(y_B)`` of 0, so
``||ȳ_B - x̄_B|| >= f/(n-f) - Δ2(y_B)·f/(n-f)``: the averaging error of one of the two
worlds is at least ``f/(n-f)·Δ2(x)`` up to the agreement slack. Proof: ``lower_bound.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agreement import run
from agreement.constants import lower_bound_averaging_constant
from agreement.protocol import CONFIGS, get_config
from agreement.rules import make_rule


@dataclass
class TwoWorlds:
    """The two runs and what they show."""

    protocol: str
    n: int
    f: int
    rounds: int
    seed: int
    error_a: float          # ||ȳ_A - x̄_A|| with Δ2(x_A) = 0
    ratio_b: float          # ||ȳ_B - x̄_B|| / Δ2(x_B), Δ2(x_B) = 1
    diameter_b: float       # Δ2(y_B): the agreement slack
    indistinguishable: bool  # nodes honest in both worlds output the same vectors
    bound: float            # f/(n-f)

    @property
    def shown(self) -> bool:
        """The scenario exhibits the bound: world A violates C-averaging for every finite C
        (error > 0 at Δ2 = 0), or world B's ratio is at least ``f/(n-f)·(1 - Δ2(y_B))``."""
        return bool(self.indistinguishable and (
            self.error_a > 0 or self.ratio_b >= self.bound * (1 - self.diameter_b) - 1e-12))

    @property
    def worst(self) -> float:
        """The larger averaging ratio of the two worlds (``inf`` for world A's error at
        ``Δ2(x) = 0``)."""
        return float("inf") if self.error_a > 0 else self.ratio_b

    def as_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "n": self.n, "f": self.f, "rounds": self.rounds,
                "seed": self.seed, "error_a": self.error_a, "ratio_b": self.ratio_b,
                "diameter_b": self.diameter_b, "indistinguishable": self.indistinguishable,
                "bound": self.bound, "shown": self.shown}


def smallest_n(protocol: str, f: int) -> int:
    """The least n for which ``protocol`` runs with f faults (``Config.min_n``: its resilience,
    and views of ``n-f`` values large enough for its rule)."""
    cfg = get_config(protocol)
    rule = make_rule(cfg.rule, f)
    n = cfg.min_n(f)
    while n - f < rule.min_size():
        n += 1
    return n


def two_worlds(protocol: str, f: int = 1, n: int | None = None, rounds: int = 3,
               seed: int = 0, scheduler: str = "random") -> TwoWorlds:
    """Run the two worlds (module doc) at the message level with ``protocol``."""
    if f < 1:
        raise ValueError(f"the lower-bound scenario needs f >= 1, got f={f}")
    n = smallest_n(protocol, f) if n is None else n
    if n < 2 * f + 1:
        raise ValueError(f"the scenario needs n >= 2f+1 (two disjoint groups of f), got n={n}")
    x = np.zeros((n, 1))
    x[:f] = 1.0
    common = dict(f=f, protocol=protocol, rounds=rounds, strategy="honest", seed=seed,
                  scheduler=scheduler)
    a = run(x, byzantine_ids=list(range(f)), **common)
    b = run(x, byzantine_ids=list(range(f, 2 * f)), **common)
    both = range(2 * f, n)
    same = all(
        np.array_equal(a.outputs[a.honest.index(i)], b.outputs[b.honest.index(i)]) for i in both
    )
    return TwoWorlds(protocol, n, f, rounds, seed, a.averaging_error, b.averaging_ratio,
                     b.diameters[-1], same, lower_bound_averaging_constant(n, f))


def all_protocols(f: int = 1, rounds: int = 3, seed: int = 0) -> list[TwoWorlds]:
    """The scenario against every named protocol (:data:`agreement.protocol.CONFIGS`)."""
    return [two_worlds(p, f, rounds=rounds, seed=seed) for p in sorted(CONFIGS)]


__all__ = ["TwoWorlds", "all_protocols", "smallest_n", "two_worlds"]
