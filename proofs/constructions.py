"""The best known constructions of every searched claim, as search candidates evaluated
through the rule as implemented (``proofs.search.Evaluator``): the ``best_known`` column of
``python -m proofs verify``, against which a search that falls short is reported
(``search-too-short``, below 0.9 of it).

Each builder returns a :class:`proofs.search.Candidate` (honest rows first, then the
Byzantine rows; the views checked by :func:`agreement.engine.check_views`), embedded on the
first axis when ``d > 1`` (the 1-D constructions are on a line) unless said otherwise.

- ``coord-contraction`` of the trimmed mean: ``trimmed_mean.md`` Theorem 1's equality case
  (``n-2f`` honest zeros, ``f`` honest ones, ``f`` Byzantine ones; V1 all, V2 the zeros and
  the Byzantine values): ``λ = f/(n-2f)`` exactly; the ℓ2 row uses the same round (``λ``).
- ``coord-error``: Theorem 2's (``2f`` zeros, ``n-3f`` ones, ``f`` Byzantine ones; the view
  omits ``f`` zeros): ``2f/(n-f)`` exactly.
- MDA's ``l2-contraction`` (``mda.md`` Theorem 1): ``2f`` honest zeros, ``n-3f`` honest ones,
  ``f`` Byzantine values at ``2 - ε``; V1 all ``n`` (MDA keeps the honest values, mean
  ``1 - 2f/(n-f)``), V2 omits ``f`` zeros (MDA keeps the ones and the Byzantine values, mean
  ``1 + f(1-ε)/(n-2f)``): ``2f/(n-f) + f(1-ε)/(n-2f)``, the ``(e1, e2) = (f, 0)`` term of κ
  (8/15 - ε/5 at (7,1): κ itself; 0.5857 at (13,2), 0.976 of κ = 0.6).
- MDA's ``bias`` (Theorem 2): ``n-3f`` honest zeros, ``2f`` honest ones, ``f`` Byzantine at
  ``-(1-ε)``; the view omits ``f`` ones: ``2f/(n-f) + f(1-ε)/(n-2f)`` (β up to ε).
- MVE, 1-D: ``mve.bias_1d`` (Proposition 4) for the bias; Proposition 6's round
  (``mve.stall_1d``) for the contraction (``1 - ε/2``); the mean variant: MDA's rounds.
- MVE, d >= 2: ``mve.flat_subset``'s round (Proposition 5) for the bias (624.5 at d = 2,
  ``L = 1250``) and, with V2 = the honest values only, for the contraction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .search import Candidate, Evaluator, check_candidate

EPS = 1e-3


def _line(x1: list[float], b1: list[float], d: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros((len(x1), d))
    x[:, 0] = x1
    b = np.zeros((len(b1), d))
    b[:, 0] = b1
    return x, b


def _views(n: int, omit1: list[int], omit2: list[int]) -> tuple[np.ndarray, np.ndarray]:
    v1, v2 = np.ones(n, bool), np.ones(n, bool)
    v1[omit1] = False
    v2[omit2] = False
    return v1, v2


def tm_contraction(n: int, f: int, d: int) -> Candidate:
    x, b = _line([0.0] * (n - 2 * f) + [1.0] * f, [1.0] * f, d)
    v1, v2 = _views(n, [], list(range(n - 2 * f, n - f)))
    return Candidate(x, b, v1, v2)


def tm_error(n: int, f: int, d: int) -> Candidate:
    x, b = _line([0.0] * (2 * f) + [1.0] * (n - 3 * f), [1.0] * f, d)
    v, _ = _views(n, list(range(f)), [])
    return Candidate(x, b, v, v.copy())


def mda_contraction(n: int, f: int, d: int, eps: float = EPS) -> Candidate:
    x, b = _line([0.0] * (2 * f) + [1.0] * (n - 3 * f), [2.0 - eps] * f, d)
    v1, v2 = _views(n, [], list(range(f)))
    return Candidate(x, b, v1, v2)


def mda_bias(n: int, f: int, d: int, eps: float = EPS) -> Candidate:
    x, b = _line([0.0] * (n - 3 * f) + [1.0] * (2 * f), [-(1.0 - eps)] * f, d)
    v, _ = _views(n, list(range(n - 2 * f, n - f)), [])
    return Candidate(x, b, v, v.copy())


def mve_bias_1d(n: int, f: int, d: int, eps: float = EPS) -> Candidate:
    # mve.bias_1d: q-f honest zeros, 2f ones, f Byzantine at -1+ε; the view omits f ones
    q = n - 2 * f
    x, b = _line([0.0] * (q - f) + [1.0] * (2 * f), [-1.0 + eps] * f, d)
    v, _ = _views(n, list(range(q, q + f)), [])
    return Candidate(x, b, v, v.copy())


def mve_stall(n: int, f: int, d: int, eps: float = EPS) -> Candidate:
    # mve.stall_1d's round (n = 7, f = 1): A = 2 nodes at 0, B = 4 at 1, Byzantine 2-ε;
    # V1 omits one node of A, V2 is all seven
    x, b = _line([0.0, 0.0, 1.0, 1.0, 1.0, 1.0], [2.0 - eps], d)
    v1, v2 = _views(n, [0], [])
    return Candidate(x, b, v1, v2)


def _flat_2d(n: int, f: int, distance: float) -> tuple[np.ndarray, np.ndarray]:
    h = n - f
    x = np.zeros((h, 2))
    x[: h - 1, 0] = np.linspace(0, 1, h - 1)
    x[h - 1] = (0.5, 0.3)
    b = np.zeros((f, 2))
    b[:, 0] = distance
    return x, b


def _flat(n: int, f: int, d: int, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """``mve.flat_subset``'s inputs (d = 2: a segment and one point off it; d >= n-f-1:
    Gaussian, the Byzantine value on the line through x_0, x_1)."""
    h = n - f
    if d == 2 or d < h - 1:
        x2, b2 = _flat_2d(n, f, distance)
        x, b = np.zeros((h, d)), np.zeros((f, d))
        x[:, :2], b[:, :2] = x2, b2
        return x, b
    x = np.random.default_rng(0).normal(size=(h, d))
    w = np.zeros((f, h))
    w[:, 0], w[:, 1] = distance, 1 - distance
    return x, w @ x


FLAT_DISTANCES = (100.0, 1000.0, 1250.0, 1450.0)


def mve_flat_bias(n: int, f: int, d: int) -> list[Candidate]:
    out = []
    for L in FLAT_DISTANCES:
        x, b = _flat(n, f, d, L)
        v = np.ones(n, bool)
        out.append(Candidate(x, b, v, v.copy()))
    return out


def mve_flat_contraction(n: int, f: int, d: int) -> list[Candidate]:
    out = []
    for L in FLAT_DISTANCES:
        x, b = _flat(n, f, d, L)
        v1, v2 = _views(n, [], list(range(n - f, n)))
        out.append(Candidate(x, b, v1, v2))
    return out


def ball_mda_round(n: int, f: int, d: int, eps: float = EPS) -> Candidate:
    """ball_mda.md Proposition 4: 2f honest zeros, n-3f honest ones, one Byzantine value at
    2-2ε and f-1 at 3-4ε; V1 omits f zeros (the ball around the Byzantine 2-2ε wins), V2 is
    all n (the honest values win): ``(2f-1)/(n-2f) + 2f/(n-f)`` up to ε."""
    x = np.zeros((n - f, d))
    x[2 * f:, 0] = 1.0
    b = np.zeros((f, d))
    b[:, 0] = 3 - 4 * eps
    b[0, 0] = 2 - 2 * eps
    v1, v2 = np.ones(n, bool), np.ones(n, bool)
    v1[:f] = False
    return Candidate(x, b, v1, v2)


def ball_mda_bias(n: int, f: int, d: int, eps: float = EPS) -> Candidate:
    """Proposition 4's view V1 alone (both views V1): the output's distance to the honest
    values, ``(2f-1)/(n-2f) + 2f/(n-f)`` up to ε."""
    c = ball_mda_round(n, f, d, eps)
    return Candidate(c.x, c.b, c.v1, c.v1.copy())


# (claim name, d == 1) -> builder(s); a builder returns a candidate or a list of them
Builder = Callable[[int, int, int], Any]
BUILDERS: dict[tuple[str, bool], Builder] = {
    ("tm-contraction", True): tm_contraction, ("tm-contraction", False): tm_contraction,
    ("tm-error", True): tm_error, ("tm-error", False): tm_error,
    ("tm-l2-contraction", True): tm_contraction, ("tm-l2-contraction", False): tm_contraction,
    ("mda-contraction", True): mda_contraction, ("mda-contraction", False): mda_contraction,
    ("mda-bias", True): mda_bias, ("mda-bias", False): mda_bias,
    ("mve-bias", True): mve_bias_1d, ("mve-bias", False): mve_flat_bias,
    ("mve-contraction", True): mve_stall, ("mve-contraction", False): mve_flat_contraction,
    ("mve-mean-contraction", True): mda_contraction, ("mve-mean-bias", True): mda_bias,
    ("ball-mda-contraction", True): ball_mda_round, ("ball-mda-bias", True): ball_mda_bias,
}

SOURCES: dict[tuple[str, bool], str] = {
    ("tm-contraction", True): "trimmed_mean.md Theorem 1 (equality)",
    ("tm-error", True): "trimmed_mean.md Theorem 2 (equality)",
    ("tm-l2-contraction", True): "trimmed_mean.md Theorem 1's round",
    ("mda-contraction", True): "mda.md Theorem 1, (e1, e2) = (f, 0)",
    ("mda-bias", True): "mda.md Theorem 2",
    ("mve-bias", True): "mve.md Proposition 4 (mve.bias_1d)",
    ("mve-bias", False): "mve.md Proposition 5 (mve.flat_subset)",
    ("mve-contraction", True): "mve.md Proposition 6 (mve.stall_1d, one round)",
    ("mve-contraction", False): "mve.md Proposition 5's round, V2 = honest values",
    ("mve-mean-contraction", True): "MDA's construction (mda.md Theorem 1)",
    ("mve-mean-bias", True): "MDA's construction (mda.md Theorem 2)",
    ("ball-mda-contraction", True): "ball_mda.md Proposition 4",
    ("ball-mda-bias", True): "ball_mda.md Proposition 4, both views V1",
}


def best_known(claim: Any, n: int, f: int, d: int) -> tuple[float | None, str, Candidate | None]:
    """``(value, source, candidate)`` of the best known construction of ``claim`` (an
    :class:`agreement.claims.Claim`) at ``(n, f, d)``, evaluated through the rule (not
    counted in any search budget); ``(None, "", None)`` when none is known."""
    key = (claim.name, d == 1)
    build = BUILDERS.get(key) or BUILDERS.get((claim.name, True) if d > 1 else key)
    if build is None:
        return None, "", None
    if claim.name.startswith("mve") and d == 1 and claim.name == "mve-contraction" \
            and (n, f) != (7, 1):
        return None, "", None
    try:
        cands = build(n, f, d)
    except (ValueError, IndexError):
        return None, "", None
    cands = cands if isinstance(cands, list) else [cands]
    ev = Evaluator(claim.rule, n, f, claim.objective, dict(claim.rule_params))
    best, best_c = None, None
    for c in cands:
        check_candidate(c, n, f)
        v = ev(c)
        if best is None or v > best:
            best, best_c = v, c
    src = SOURCES.get(key) or SOURCES.get((claim.name, True), "")
    return best, src, best_c


__all__ = ["BUILDERS", "SOURCES", "best_known"]
