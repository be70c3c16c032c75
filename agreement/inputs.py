"""Input generators for agreement experiments: ``make_inputs(name, n, d, rng)`` -> ``(n, d)``.

- ``gaussian``: i.i.d. standard normal entries;
- ``uniform``: i.i.d. uniform entries in [0, 1];
- ``clusters``: two tight clusters 10 apart along a random direction (the honest nodes
  disagree in one direction: where contraction bounds are tight);
- ``line``: points evenly spread on a segment of length 1 (a 1-D problem embedded in R^d);
- ``corners``: vertices of the unit cube picked at random (spread in every coordinate: the
  √d of coordinate-wise rules shows).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _gaussian(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((n, d))


def _uniform(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random((n, d))


def _clusters(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u) + 1e-300
    side = np.arange(n) % 2
    return 10.0 * side[:, None] * u[None, :] + 0.01 * rng.standard_normal((n, d))


def _line(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u) + 1e-300
    t = rng.permutation(np.linspace(0.0, 1.0, n))
    return t[:, None] * u[None, :]


def _corners(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2, size=(n, d)).astype(np.float64)


INPUTS: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "gaussian": _gaussian,
    "uniform": _uniform,
    "clusters": _clusters,
    "line": _line,
    "corners": _corners,
}


def make_inputs(name: str, n: int, d: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """``(n, d)`` float64 inputs from the generator ``name``."""
    if name not in INPUTS:
        raise ValueError(f"unknown input generator {name!r}; known: {', '.join(sorted(INPUTS))}")
    if n < 1 or d < 1:
        raise ValueError(f"need n >= 1 and d >= 1, got n={n}, d={d}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return INPUTS[name](n, d, rng)
