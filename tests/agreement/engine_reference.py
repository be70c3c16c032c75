"""The round engine's direct path and view batching as they were before the fast paths
(the plain form: every round through ``torch.cat``/``np.concatenate``, the view draws always
made, ``np.unique`` over the masks), kept as the reference that
tests/agreement/test_engine_paths.py compares the engine with, bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np

from agreement.engine import RoundEngine, RoundPlan, session_rows, valid_rows


class ReferenceEngine(RoundEngine):
    """:class:`agreement.engine.RoundEngine` with the plain direct path and batching."""

    def _step_direct(self, honest: Any, is_torch: bool) -> tuple[Any, RoundPlan]:
        h = honest.shape[0]
        b = len(self.byzantine_ids)
        if (isinstance(self.attack, str) and self.attack == "silent") or b == 0:
            byz = honest[:0]
        else:
            if self.native or not is_torch:
                byz = self.attack(honest, b, self.rng, **self.attack_params)
            else:
                import torch

                host = self.attack(honest.detach().cpu().numpy(), b, self.rng,
                                   **self.attack_params)
                byz = torch.as_tensor(np.asarray(host), device=honest.device)
            if tuple(byz.shape) != (b, honest.shape[1]):
                raise ValueError(f"the attack returned shape {tuple(byz.shape)}, "
                                 f"expected {(b, honest.shape[1])}")
        if is_torch:
            import torch

            byz = session_rows(byz, honest)
            valid_byz = valid_rows(byz).cpu().numpy()
            values = torch.cat([honest, byz[torch.as_tensor(valid_byz, device=byz.device)]])
        else:
            byz = session_rows(byz, honest)
            valid_byz = valid_rows(byz)
            values = np.concatenate([honest, byz[valid_byz]])
        ids = np.array(self.honest + [self.byzantine_ids[k] for k in np.flatnonzero(valid_byz)],
                       dtype=np.int64)
        masks = np.zeros((h, len(ids)), dtype=bool)
        self._random_views(np.ones(len(ids), dtype=bool), ids, masks)
        return self._batch(values, masks), RoundPlan(values, ids, masks)

    def _batch(self, values: Any, masks: np.ndarray) -> Any:
        m = masks.shape[1]
        if m <= 62:
            keys = masks.astype(np.int64) @ (np.int64(1) << np.arange(m, dtype=np.int64))
            _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
            uniq = masks[first]
        else:
            uniq, inv = np.unique(masks, axis=0, return_inverse=True)
        if len(uniq) == len(masks):
            return self.rule.batch(values, masks)
        out = self.rule.batch(values, uniq)
        inv = inv.reshape(-1)
        if type(out).__module__.startswith("torch"):
            import torch

            return out[torch.as_tensor(inv, device=out.device)]
        return out[inv]
