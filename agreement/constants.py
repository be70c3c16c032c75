"""The constants of THEORY.md as code: contraction factors, averaging constants, round counts.

One source of truth: the protocols choose their round counts here, the tests and the CLI
compare measured runs with these bounds, and ``proofs`` (which reads agreement) proves or
refutes them. Claims marked **[to prove]** in THEORY.md are marked so in the docstrings.

Notation: ``n`` nodes, ``f`` Byzantine, ``h = n - f`` honest, ``d`` the dimension,
``Δ2(x)`` the honest ℓ2 diameter, ``x̄`` the honest mean.
"""

from __future__ import annotations

import math


def _check(n: int, f: int, k: int, what: str) -> None:
    if f < 0 or n < 1:
        raise ValueError(f"{what} needs n >= 1 and f >= 0, got n={n}, f={f}")
    if n < k * f + 1:
        raise ValueError(f"{what} needs n >= {k}f+1, got n={n}, f={f}")


def lower_bound_averaging_constant(n: int, f: int) -> float:
    """No averaging agreement achieves ``C < f/(n-f)`` (THEORY.md §2) **[to prove]**.

    Two indistinguishable worlds: f nodes at 1 and the rest at 0, the f being Byzantine
    (but acting honestly, Δ2 = 0, output must be 0) or honest (x̄ = f/h, Δ2 = 1).
    """
    if not 0 <= f < n:
        raise ValueError(f"needs 0 <= f < n, got n={n}, f={f}")
    return f / (n - f)


# -- trimmed mean (THEORY.md §5.1), n >= 3f+1 ------------------------------------------------

def tm_contraction(n: int, f: int) -> float:
    """Per-coordinate, per-round contraction of the honest range under RB-TM:
    ``λ = f/(n-2f)`` (< 1 iff n >= 3f+1; 1/2 at n = 4, f = 1) **[to prove]**."""
    _check(n, f, 3, "trimmed-mean agreement")
    return f / (n - 2 * f)


def tm_error_factor(n: int, f: int) -> float:
    """Per-coordinate, per-round deviation from the honest mean:
    ``|y_j,c - x̄_c| <= (2f/(n-f)) · range_c(x)`` **[to prove]**."""
    _check(n, f, 3, "trimmed-mean agreement")
    return 2 * f / (n - f)


def tm_l2_contraction(n: int, f: int, d: int, rounds: int = 1) -> float:
    """``Δ2(y^T) <= √d · λ^T · Δ2(x)``: the ℓ2 factor after ``rounds`` rounds."""
    return math.sqrt(d) * tm_contraction(n, f) ** rounds


def tm_rounds(n: int, f: int, d: int, halvings: float) -> int:
    """Rounds for a ``2^-N`` ℓ2 contraction: ``T = ceil((N + ½·log2 d) / log2(1/λ))``."""
    lam = tm_contraction(n, f)
    if lam == 0:
        return 1
    return max(1, math.ceil((halvings + 0.5 * math.log2(d)) / math.log2(1 / lam)))


def tm_averaging_constant(n: int, f: int, d: int) -> float:
    """``C_TM <= (2f/(n-f)) · min(√d, h/√2) / (1 - λ)`` **[to prove]**."""
    lam = tm_contraction(n, f)
    h = n - f
    return tm_error_factor(n, f) * min(math.sqrt(d), h / math.sqrt(2)) / (1 - lam)


# -- minimum-diameter averaging (THEORY.md §5.3), n >= 6f+1 ----------------------------------

def mda_contraction(n: int, f: int) -> float:
    """Per-round ℓ2 contraction of MDA: ``Δ2(y) <= (4f/(n-2f)) · Δ2(x)`` **[to prove]**
    (1-D worst case seen: 3f/(n-2f)). Below 1 for n >= 6f+1."""
    _check(n, f, 6, "MDA agreement")
    return 4 * f / (n - 2 * f)


def mda_bias(n: int, f: int) -> float:
    """Per-round bias of MDA: ``||ȳ - x̄|| <= (f/(n-2f) + 2f/(n-f)) · Δ2(x)`` **[to prove]**."""
    _check(n, f, 6, "MDA agreement")
    return f / (n - 2 * f) + 2 * f / (n - f)


def mda_averaging_constant(n: int, f: int) -> float:
    """``C_MDA <= (f/(n-2f) + 2f/(n-f)) · (n-2f)/(n-6f)`` **[to prove]**; about 3f/n."""
    _check(n, f, 6, "MDA agreement")
    return mda_bias(n, f) * (n - 2 * f) / (n - 6 * f)


# -- round counts for a target -----------------------------------------------------------------

def rounds_for_target(
    protocol: str, n: int, f: int, d: int, delta: float, input_diameter: float
) -> int:
    """Rounds after which the protocol's proven contraction guarantees ``Δ2(y) <= delta``,
    given ``Δ2(x) <= input_diameter``.

    trimmed-mean: ``√d · λ^T · D <= δ``; mda: ``(4f/(n-2f))^T · D <= δ``. Other protocols
    have no proven contraction here and raise ``NotImplementedError``.
    """
    if delta <= 0 or input_diameter < 0:
        raise ValueError("need delta > 0 and input_diameter >= 0")
    if input_diameter <= delta:
        return 1
    ratio = delta / input_diameter
    if protocol == "trimmed-mean":
        lam, scale = tm_contraction(n, f), math.sqrt(d)
    elif protocol == "mda":
        lam, scale = mda_contraction(n, f), 1.0
    else:
        raise NotImplementedError(
            f"no proven contraction for {protocol!r}: give a fixed number of rounds"
        )
    if lam == 0:
        return 1
    return max(1, math.ceil(math.log(ratio / scale) / math.log(lam)))


def contraction(protocol: str, n: int, f: int, d: int) -> float | None:
    """The protocol's per-round ℓ2 contraction bound, or ``None`` when none is claimed.

    For trimmed-mean the proven per-round statement is per coordinate (``λ`` on every
    coordinate's range); its ℓ2 consequence over one round is ``√d · λ``, loose when d is
    large, so tests check the per-coordinate form.
    """
    if protocol == "trimmed-mean":
        return tm_contraction(n, f)
    if protocol == "mda":
        return mda_contraction(n, f)
    return None


def averaging_constant(protocol: str, n: int, f: int, d: int) -> float | None:
    """The protocol's averaging constant ``C`` (``||ȳ - x̄|| <= C·Δ2(x)``), or ``None``."""
    if protocol == "trimmed-mean":
        return tm_averaging_constant(n, f, d)
    if protocol == "mda":
        return mda_averaging_constant(n, f)
    return None
