"""The training methods of :func:`learning.learn.train`, one class each behind
:class:`~learning.methods.base.Method`, by name in :data:`METHODS`.

- :mod:`~learning.methods.base`: the contract (:class:`Setup`, :class:`StepInput`,
  :class:`Method`, :class:`Traffic`) and the registry (:func:`register_method`; how to add a
  method is its module doc);
- :mod:`~learning.methods.learn`: LEARN (``learn``), the agreement layer on the gradients and
  the parameters (docs/theory.md §6);
- :mod:`~learning.methods.baselines`: a trusted server with a robust rule (``server``),
  plain decentralized SGD (``dsgd``), local training (``local``).
"""

from __future__ import annotations

from .base import (
    METHODS,
    PROTOCOL_STRATEGIES,
    Descent,
    Method,
    Setup,
    StepInput,
    Task,
    Traffic,
    finite_rows,
    protocol_strategies,
    register_method,
    two_sided,
)
from .baselines import DSGD, SERVER_RULES, Local, Server, ServerRule
from .learn import Agreement, Learn, calibrate_round

__all__ = [
    "DSGD",
    "METHODS",
    "PROTOCOL_STRATEGIES",
    "SERVER_RULES",
    "Agreement",
    "Descent",
    "Learn",
    "Local",
    "Method",
    "Server",
    "ServerRule",
    "Setup",
    "StepInput",
    "Task",
    "Traffic",
    "calibrate_round",
    "finite_rows",
    "protocol_strategies",
    "register_method",
    "two_sided",
]
