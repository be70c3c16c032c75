"""agreement: robust rules and the iterated averaging-agreement protocols (docs/theory.md §5).

- :mod:`agreement.rules`: the rules on a view of m vectors (numpy or torch, any device), by
  name through a registry;
- :mod:`agreement.protocol`: :class:`AveragingAgreement`, a gather plus a rule iterated for T
  rounds, as a sans-IO protocol, and the named configurations (:data:`CONFIGS`);
- :mod:`agreement.engine`: the round-level engine (views chosen by the adversary, rules
  batched on one device);
- :mod:`agreement.attacks` / :mod:`agreement.adversary`: value attacks at both levels;
- :mod:`agreement.constants`: the bounds of docs/theory.md as code;
- :func:`run`: one experiment at either level, with diameters and averaging error;
- :func:`register_value_attack`, :func:`register_rule`: your own value attacks and rules, by
  name everywhere (docs/guides/adversary.md);
- :func:`campaign` (:mod:`agreement.campaigns`): a study of many seeded runs over a grid,
  on a process pool or a Dask cluster, with records, a summary per cell and replays of
  every failure (imported on first use).

Nothing here imports torch at import time.

Names (README.md, "Glossary"): ``byzantine_ids`` are the Byzantine node ids, ``strategy`` their
behaviour (a value attack of :data:`agreement.attacks.VALUE_ATTACKS` or a netsim protocol-level
strategy). ``make_*`` builds a new object (``rules.make_rule``, ``inputs.make_inputs``,
``gathers.make_gather``); ``get_*`` looks up a registered one (:func:`get_config` returns the
registered :class:`~agreement.protocol.Config`, it builds nothing).
"""

from typing import Any

from . import constants
from .attacks import register_value_attack
from .protocol import CONFIGS, AveragingAgreement, Decision, get_config
from .rules import register_rule
from .run import AgreementResult, diameter, run

_CAMPAIGN_NAMES = ("campaign", "CampaignSpec", "CampaignResult", "load_spec")


def __getattr__(name: str) -> Any:
    """The campaign names (:mod:`agreement.campaigns`), imported on first use so that
    ``import agreement`` stays light."""
    if name in _CAMPAIGN_NAMES:
        from . import campaigns

        return getattr(campaigns, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CONFIGS",
    "AgreementResult",
    "AveragingAgreement",
    "CampaignResult",
    "CampaignSpec",
    "Decision",
    "campaign",
    "constants",
    "diameter",
    "get_config",
    "load_spec",
    "register_rule",
    "register_value_attack",
    "run",
]
