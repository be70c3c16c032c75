"""The training methods of :func:`learning.learn.train`, one class each behind
:class:`~learning.methods.base.Method`, by name in :data:`METHODS`.

- :mod:`~learning.methods.base`: the contract (:class:`Setup`, :class:`StepInput`,
  :class:`Method`, :class:`Traffic`) and the registry (:func:`register_method`; how to add a
  method is its module doc);
- :mod:`~learning.methods.learn`: LEARN (``learn``), the agreement layer on the gradients and
  the parameters (docs/theory.md §6);
- :mod:`~learning.methods.baselines`: a trusted server with a robust rule (``server``),
  plain decentralized SGD (``dsgd``), local training (``local``);
- :mod:`~learning.methods.byzsgd`: ByzSGD (``byzsgd``): replicated servers, some
  Byzantine, and Byzantine workers, first quorums and median gathers (docs/systems/byzsgd.md);
- :mod:`~learning.methods.kardam`: Kardam (``kardam``) and asynchronous SGD (``async-sgd``),
  staleness from a netsim scheduler's delays (docs/systems/kardam.md);
- :mod:`~learning.methods.choco`: CHOCO-SGD (``choco``): compressed gossip on a graph, no
  Byzantine resilience (docs/systems/choco.md);
- :mod:`~learning.methods.zeno`: Zeno, the server rule ``server --protocol zeno`` that
  scores gradients on a validation batch (docs/systems/zeno.md).
"""

from __future__ import annotations

from . import byzsgd, choco, kardam, zeno  # noqa: F401  (each registers its method)
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
