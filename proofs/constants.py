"""The constants of docs/theory.md as code: a re-export of :mod:`agreement.constants`.

One source of truth lives in ``agreement`` (the protocols choose their round counts there and
dependencies point agreement -> proofs); every function's docstring names the proof in
``proofs/*.md`` that establishes it (or the counterexample that refutes the original spec's claim).
"""

from agreement.constants import (
    averaging_constant,
    contraction,
    lower_bound_averaging_constant,
    mda_averaging_constant,
    mda_bias,
    mda_contraction,
    mve_averaging_constant,
    mve_bias,
    mve_contraction,
    mve_mean_averaging_constant,
    mve_mean_bias,
    mve_mean_contraction,
    mve_range_factor,
    rounds_for_target,
    tm_averaging_constant,
    tm_contraction,
    tm_error_factor,
    tm_l2_contraction,
    tm_rounds,
)

__all__ = [
    "averaging_constant",
    "contraction",
    "lower_bound_averaging_constant",
    "mda_averaging_constant",
    "mda_bias",
    "mda_contraction",
    "mve_averaging_constant",
    "mve_bias",
    "mve_contraction",
    "mve_mean_averaging_constant",
    "mve_mean_bias",
    "mve_mean_contraction",
    "mve_range_factor",
    "rounds_for_target",
    "tm_averaging_constant",
    "tm_contraction",
    "tm_error_factor",
    "tm_l2_contraction",
    "tm_rounds",
]
