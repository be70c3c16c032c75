"""The learning attacks' line search builds its side-by-side view in one pass: the same view,
hence the same aggregates, bit for bit, as the concatenation it replaced."""

from __future__ import annotations

import pytest
import torch

from agreement.rules import make_rule
from learning.attacks import adaptive_candidates, aggregates


def _concatenated(honest, candidates, b, rule):
    k, d = candidates.shape
    wide = torch.cat([honest.repeat(1, k), candidates.reshape(1, k * d).expand(b, -1)])
    return rule(wide).reshape(k, d)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rule", ["trimmed-mean", "median", "mean"])
def test_side_by_side_view_is_the_concatenation(dtype, rule) -> None:
    gen = torch.Generator()
    gen.manual_seed(4)
    honest = torch.randn(7, 33, generator=gen, dtype=dtype)
    own = torch.randn(3, 33, generator=gen, dtype=dtype)
    cand = adaptive_candidates(honest, own, evals=5)
    r = make_rule(rule, 3)
    got = aggregates(honest, cand, 3, r)
    assert got.dtype == dtype and torch.equal(got, _concatenated(honest, cand, 3, r))
    wider = aggregates(honest, cand.double(), 3, r)  # promoted as torch.cat promotes
    assert wider.dtype == torch.float64
    assert torch.equal(wider, _concatenated(honest, cand.double(), 3, r))
