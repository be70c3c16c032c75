"""The learning attacks at the message level: a netsim core strategy.

:class:`LearningValueAttack` is :class:`agreement.adversary.ValueAttack` (each Byzantine node
runs an honest :class:`~agreement.protocol.AveragingAgreement` core, follows reliable
broadcast and witnesses, and replaces the vector it broadcasts in each round) whose vectors
come from a learning attack (:class:`learning.attacks.AttackHook`) applied to the honest
vectors of that round, read from the omniscient context.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from agreement.adversary import ValueAttack

from .attacks import AttackHook


class LearningValueAttack(ValueAttack):
    """Byzantine nodes that follow the protocol but broadcast ``hook(honest_r)`` in round r."""

    def __init__(self, hook: AttackHook, device: torch.device, dtype: torch.dtype) -> None:
        # not ValueAttack.__init__: its name check is for the agreement layer's attacks
        self.attack = hook.name
        self.name = hook.name
        self.params: dict[str, Any] = {}
        self.hook = hook
        self.device, self.dtype = device, dtype

    def _values(self, rnd: int) -> tuple[np.ndarray, dict[int, int] | None]:
        got = self._cache.get(rnd)
        if got is None:
            honest = torch.as_tensor(self._honest_at(rnd), dtype=self.dtype, device=self.device)
            vals = self.hook(honest, len(self.ctx.byzantine_ids))
            got = self._cache[rnd] = (vals.detach().cpu().numpy(), None)
        return got
