"""benchmarks/bench_backend.py: CollaborativeSGD over TLS against DDP over gloo (its quick
form: four processes, a tiny MLP, a few seconds)."""

from __future__ import annotations

import re

import pytest

from benchmarks import bench_backend
from learning.learn import log_target, proven_rounds


@pytest.mark.parametrize("name", list(bench_backend.MODELS))
def test_the_models_have_the_stated_dimension(name: str) -> None:
    model = bench_backend.build_model(name)
    assert sum(p.numel() for p in model.parameters()) == bench_backend.dimension(name)
    assert bench_backend.dimension("digits-mlp") == 4_810
    assert bench_backend.dimension("mlp-1m") == 1_076_010


def _rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and cells[0] == "tiny-mlp":
            rows[cells[2]] = cells
    return rows


def test_quick_runs_every_backend_and_counts_rounds_and_bytes(capsys) -> None:
    n, f, steps, warmup = 4, 1, 3, 1
    bench_backend.main(["--quick", "--steps", str(steps), "--warmup", str(warmup)])
    out = capsys.readouterr().out
    assert "(--quick: BENCHMARKS.md not written)" in out
    rows = _rows(out)
    assert set(rows) == {"ddp", "1+1", "proven"}
    d = bench_backend.dimension("tiny-mlp")
    assert rows["ddp"][1] == f"{d:,}" and rows["ddp"][6] == "1.0x"
    assert rows["1+1"][3] == "1 + 1"
    # the proven schedule: the optimizer's rounds at the timed steps t = warmup+1 .. +steps
    proven = [proven_rounds("trimmed-mean", n, f, d, log_target(t))
              for t in range(warmup + 1, warmup + steps + 1)]
    assert rows["proven"][3] == (f"{min(proven)}-{max(proven)} + 1" if min(proven) < max(proven)
                                 else f"{proven[0]} + 1")
    for backend in ("1+1", "proven"):
        step, per_round = float(rows[backend][4]), float(rows[backend][5])
        assert 0 < per_round <= step
        assert re.fullmatch(r"\d+\.\dx", rows[backend][6])
    # every agreement round sends this node's vector to its n-1 peers at least once
    wire = 1e6 * float(rows["1+1"][8])
    assert wire >= 2 * (n - 1) * 4 * d
    assert 1e6 * float(rows["ddp"][8]) == pytest.approx(2 * (n - 1) / n * 4 * d, abs=500)
