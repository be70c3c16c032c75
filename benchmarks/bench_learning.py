"""LEARN against plain D-SGD: time per training step, in the same process on the same device,
and (``--accuracy``) the accuracy targets of the learning issue.

Run: ``python -m benchmarks.bench_learning [--device cuda] [--accuracy] [--quick]``.

Speed: digits, the MLP (64-64-10, d = 4810), n = 10, f = 3, batch 32 per node, 300 steps;
the mean wall time of one step (evaluation excluded) of D-SGD (local step + plain average of
the n parameter vectors) and of LEARN with the round-level engine (trimmed mean, random views;
``N_t = ceil(log2 t)`` gradient rounds + 1 parameter round, i.e. 8.3 rounds per step on
average over 300 steps; and fixed 1 + 1 rounds), attack-free and under ALIE. Target: LEARN
<= 3x D-SGD. Accuracy: the compare grid (attacks x methods) and the ALIE z x Dirichlet α sweep.
Writes BENCHMARKS.md section "learning".
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from benchmarks._report import command, machine, markdown_table, write_section
from learning.experiments import (
    ATTACKS_ALL,
    METHODS_COMPARE,
    pivot_markdown,
    run_grid,
    sweep_alie,
)
from learning.learn import TrainConfig, train


def step_time(cfg: TrainConfig, repeats: int) -> tuple[float, float]:
    """Best mean step time (s) over ``repeats`` runs, and the rounds per step."""
    best, rounds = float("inf"), 0.0
    for _ in range(repeats):
        res = train(cfg)
        best = min(best, res.step_time)
        rounds = res.agreement_rounds / cfg.steps
    return best, rounds


def speed(device: str, steps: int, repeats: int) -> str:
    base = TrainConfig(device=device, steps=steps, eval_every=steps, seed=0)
    train(replace(base, steps=20))  # warm-up (imports, kernels, allocator)
    rows = []
    dsgd, _ = step_time(replace(base, method="dsgd"), repeats)
    rows.append(["D-SGD (plain average)", "none", "-", f"{dsgd * 1e3:.2f}", "1.0x"])
    for attack in ("none", "alie"):
        for rounds in ("log", 1):
            t, r = step_time(replace(base, method="learn", attack=attack, rounds=rounds),
                             repeats)
            rows.append([f"LEARN trimmed-mean, {'ceil(log2 t)' if rounds == 'log' else 1}"
                         " gradient rounds + 1", attack, f"{r:.1f}", f"{t * 1e3:.2f}",
                         f"{t / dsgd:.1f}x"])
    t, _ = step_time(replace(base, method="server", attack="alie"), repeats)
    rows.append(["trusted server, trimmed mean", "alie", "-", f"{t * 1e3:.2f}",
                 f"{t / dsgd:.1f}x"])
    table = markdown_table(["method", "attack", "agreement rounds / step", "ms / step",
                            "vs D-SGD"], rows)
    return (f"### Time per step ({device}, torch threads: {torch.get_num_threads()})\n\n"
            f"digits, MLP d = 4810, n = 10, f = 3, batch 32 per node, {steps} steps, mean step "
            f"time without evaluation (first 5 steps skipped), best of {repeats}. "
            "Target: LEARN <= 3x D-SGD.\n\n"
            + table)


def accuracy(steps: int) -> str:
    base = TrainConfig(steps=steps, seed=0)
    rows = run_grid(base, ATTACKS_ALL, METHODS_COMPARE)
    sweep = sweep_alie(base)
    return (f"### Accuracy: attacks x methods (digits, MLP, n = 10, f = 3, Dirichlet α = 1, "
            f"{steps} steps, seed 0)\n\nHonest test accuracy, mean / min over honest nodes "
            "(`python -m learning compare`).\n\n" + pivot_markdown(rows) +
            f"\n\n### ALIE z x Dirichlet α, LEARN trimmed mean ({steps} steps, seed 0)\n\n"
            "(`python -m learning sweep`)\n\n" + pivot_markdown(sweep, "attack", "alpha"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--accuracy", action="store_true", help="also the accuracy grid + sweep")
    ap.add_argument("--quick", action="store_true", help="60 steps, one repeat")
    ap.add_argument("--no-write", action="store_true", help="print only")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    steps, repeats = (60, 1) if a.quick else (300, 2)
    t0 = time.perf_counter()
    parts = [speed(a.device, steps, repeats)]
    if a.accuracy:
        parts.append(accuracy(steps))
    body = ("## Learning: LEARN vs D-SGD\n\n"
            f"Machine: {machine()}  \nCommand: `{command()}` "
            f"({time.perf_counter() - t0:.0f} s)  \n"
            "Timings taken while other engineers shared the machine's cores.\n\n"
            + "\n\n".join(parts))
    if not a.no_write:
        write_section("learning", body)
    print(body)


if __name__ == "__main__":
    main()
