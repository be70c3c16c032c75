"""What the network tests share (test_net_runtime, test_net_hostile, test_net_rendezvous):
the time bound of every network test and the check of the proven bounds of a run."""

from __future__ import annotations

import numpy as np

from agreement import AveragingAgreement, constants
from agreement.run import diameter

LIMIT = 30.0  # every network test is bounded in time


def check_bounds(honest: list[AveragingAgreement], n: int, f: int, rounds: int) -> None:
    """docs/theory.md §5.1 as in simulation (trimmed mean, n >= 3f+1; proofs/trimmed_mean.md): the
    per-coordinate range contracts by λ = f/(n-2f) each round, the averaging error is at most
    C·Δ2(x), and the final diameter is at most λ^T·√d·Δ2(x)."""
    hist = np.stack([np.stack([p.history[r] for p in honest]) for r in range(rounds + 1)])
    lam = constants.tm_contraction(n, f)
    ranges = hist.max(axis=1) - hist.min(axis=1)
    for r in range(rounds):
        assert np.all(ranges[r + 1] <= lam * ranges[r] + 1e-12), f"round {r}"
    d = hist.shape[2]
    c = constants.averaging_constant("trimmed-mean", n, f, d)
    err = np.linalg.norm(hist[-1].mean(0) - hist[0].mean(0))
    assert err <= c * diameter(hist[0]) + 1e-9
    assert diameter(hist[-1]) <= lam**rounds * np.sqrt(d) * diameter(hist[0]) + 1e-9
