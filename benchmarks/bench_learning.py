"""LEARN against plain D-SGD: time per training step and accuracy, for both gradient-round
schedules, in the same process on the same device, and (``--accuracy``) the accuracy targets
of the learning issue.

Run: ``python -m benchmarks.bench_learning [--device cuda] [--accuracy] [--quick]
[--steps S] [--repeats R] [--no-write]``.

Speed: digits, the MLP (64-64-10, d = 4810), n = 10, f = 3, batch 32 per node, 300 steps;
the mean wall time of one step (evaluation excluded) of D-SGD (local step + plain average of
the n parameter vectors) and of LEARN with the round-level engine (trimmed mean, random views)
under each gradient-round schedule: ``proven`` (the default: the least T whose proven
contraction reaches docs/theory.md §6's target 2^-N_t, ``T = ceil((N_t + ½·log2 min(d, n-1)) /
log2(1/λ))`` with λ = f/(n-2f) = 3/4: 7 rounds at t = 1, 19 at t = 64, 26 at t = 300), ``log``
(N_t = ceil(log2 t) rounds: not covered by the theorem) and a fixed 1, each + 1 parameter
round; attack-free and under ALIE; with the final honest test accuracy of each run. Target:
LEARN <= 3x D-SGD.

Per attack (every attack of :data:`learning.attacks.LEARNING_ATTACKS`, ``none`` and
``dissensus`` included; ``--attack-steps`` steps, 60 by default, as the proven schedule's
rounds make a 300-step run of every attack minutes long): the mean wall time of one agreement
round (gradient and parameter rounds, the attack's computation included, measured inside
LEARN: ``TrainResult.round_time``) over one attack-free D-SGD step (targets: <= 0.25 without
attack, <= 0.5 under every attack), and the LEARN step over the D-SGD step under the ``log``
and the ``proven`` schedules, all interleaved in one run.

Accuracy: the compare grid (attacks x methods) and the ALIE z x Dirichlet α sweep. Writes
BENCHMARKS.md section "learning" (speed) and, with ``--accuracy``, "learning-accuracy" (the
grids: deterministic, so written whatever the load). ``--quick`` (a check that it runs, a
few seconds): the speed table at 20 steps, one repeat, a 5-step warm-up, and the per-attack
table at 4 steps; it never writes BENCHMARKS.md (and refuses ``--accuracy``, whose grids are
long whatever the steps).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any

import torch

from benchmarks.report import add_arguments, command, finish, machine, markdown_table
from learning.attacks import LEARNING_ATTACKS
from learning.experiments import (
    ATTACKS_ALL,
    METHODS_COMPARE,
    pivot_markdown,
    run_grid,
    sweep_alie,
)
from learning.learn import TrainConfig, train


def speed(device: str, steps: int, repeats: int, warmup: int = 20) -> str:
    """Every configuration run ``repeats`` times, interleaved (so that a change of load on
    the shared machine hits all of them alike); the best mean step time of each, and its
    accuracy (the same in every repeat: the runs are deterministic)."""
    base = TrainConfig(device=device, steps=steps, eval_every=steps, seed=0)
    train(replace(base, steps=warmup))  # warm-up (imports, kernels, allocator)
    configs = [("D-SGD (plain average)", replace(base, method="dsgd"))]
    names = {"proven": "proven (default)", "log": "log: ceil(log2 t)", 1: "fixed 1"}
    for attack in ("none", "alie"):
        for rounds in ("proven", "log", 1):
            configs.append((f"LEARN trimmed-mean, {names[rounds]}",
                            replace(base, method="learn", attack=attack, rounds=rounds)))
    configs.append(("trusted server, trimmed mean", replace(base, method="server",
                                                             attack="alie")))
    best = [float("inf")] * len(configs)
    results: list[Any] = [None] * len(configs)
    for _ in range(repeats):
        for k, (_, cfg) in enumerate(configs):
            res = train(cfg)
            best[k] = min(best[k], res.step_time)
            results[k] = res
    dsgd = best[0]
    rows = []
    for k, (label, cfg) in enumerate(configs):
        res = results[k]
        r = res.agreement_rounds / cfg.steps
        g = res.gradient_rounds
        extra = (best[k] - dsgd) / r * 1e3 if r else None
        acc = f"{res.accuracy_mean:.3f} / {res.accuracy_min:.3f}"
        rows.append([label, cfg.attack, f"{sum(g) / len(g):.1f} ({g[0]}..{g[-1]})" if g else "-",
                     f"{r:.1f}" if r else "-", acc, f"{best[k] * 1e3:.2f}",
                     f"{extra:.2f}" if extra is not None else "-", f"{best[k] / dsgd:.1f}x"])
    table = markdown_table(["method, gradient rounds", "attack",
                            "gradient rounds / step (first..last)", "agreement rounds / step",
                            "accuracy mean / min", "ms / step", "extra ms / round",
                            "vs D-SGD"], rows)
    return (f"### Time per step and accuracy ({device}, torch threads: "
            f"{torch.get_num_threads()})\n\n"
            f"digits, MLP d = 4810, n = 10, f = 3, batch 32 per node, {steps} steps, mean step "
            "time without evaluation (first 5 steps skipped), best of "
            f"{repeats} interleaved runs; honest test accuracy after the last step (seed 0). "
            "Target: LEARN <= 3x D-SGD.\n\n" + table)


def attacks_table(device: str, steps: int, repeats: int) -> str:
    """Per attack of the registry: one agreement round and the LEARN step (log and proven
    schedules) over one attack-free D-SGD step; every configuration run ``repeats`` times,
    interleaved, the best of each kept."""
    base = TrainConfig(device=device, steps=steps, eval_every=steps, seed=0, method="learn")
    configs = [("dsgd", "none", replace(base, method="dsgd"))]
    for attack in LEARNING_ATTACKS:
        for rounds in ("log", "proven"):
            configs.append((rounds, attack, replace(base, attack=attack, rounds=rounds)))
    step = [float("inf")] * len(configs)
    rnd = [float("inf")] * len(configs)
    per_step = [0.0] * len(configs)
    for _ in range(repeats):
        for k, (_, _, cfg) in enumerate(configs):
            res = train(cfg)
            step[k] = min(step[k], res.step_time)
            rnd[k] = min(rnd[k], res.round_time or float("inf"))
            per_step[k] = res.agreement_rounds / steps
    dsgd = step[0]
    by = {(sched, attack): k for k, (sched, attack, _) in enumerate(configs)}
    rows = []
    for attack in LEARNING_ATTACKS:
        lg, pr = by[("log", attack)], by[("proven", attack)]
        ratio = min(rnd[lg], rnd[pr]) / dsgd
        target = 0.25 if attack == "none" else 0.5
        rows.append([attack, f"{min(rnd[lg], rnd[pr]) * 1e3:.3f}", f"{ratio:.2f}",
                     "yes" if ratio <= target else "no", f"{per_step[lg]:.1f}",
                     f"{step[lg] / dsgd:.1f}x", f"{per_step[pr]:.1f}", f"{step[pr] / dsgd:.1f}x"])
    table = markdown_table(["attack", "ms / agreement round", "round / D-SGD step",
                            "target met (0.25 none, 0.5 attacked)", "log: rounds / step",
                            "log: step / D-SGD", "proven: rounds / step",
                            "proven: step / D-SGD"], rows)
    return (f"### One agreement round under every attack ({device}, {steps} steps)\n\n"
            f"digits, MLP d = 4810, n = 10, f = 3, LEARN trimmed mean (round-level engine, "
            f"random views); D-SGD step (attack-free): {dsgd * 1e3:.2f} ms. A round's time is "
            "measured inside LEARN (gradient and parameter rounds, the attack's computation "
            "included; the better of the two schedules' means, first 5 steps skipped); best of "
            f"{repeats} interleaved runs.\n\n" + table)


def seeds_table(steps: int, seeds: tuple[int, ...]) -> str:
    """LEARN trimmed mean under every attack over several seeds, against its attack-free
    accuracy (the target: within 5 points under every attack)."""
    acc: dict[str, list[float]] = {}
    for attack in ATTACKS_ALL:
        acc[attack] = [float(train(TrainConfig(steps=steps, seed=s, attack=attack))
                             .accuracy_mean or 0.0) for s in seeds]
    free = sum(acc["none"]) / len(seeds)
    rows = []
    for attack, vals in acc.items():
        mean = sum(vals) / len(vals)
        rows.append([attack, " / ".join(f"{v:.3f}" for v in vals), f"{mean:.3f}",
                     f"{100 * (mean - free):+.1f}",
                     "-" if attack == "none" else ("yes" if free - mean <= 0.05 else "NO")])
    return markdown_table(["attack", f"accuracy, seeds {', '.join(map(str, seeds))}",
                           "mean", "vs attack-free (points)", "within 5 points"], rows)


def accuracy(steps: int) -> str:
    base = TrainConfig(steps=steps, seed=0)
    rows = run_grid(base, ATTACKS_ALL, METHODS_COMPARE)
    sweep = sweep_alie(base)
    seeds = seeds_table(steps, (0, 1, 2))
    return (f"### Accuracy: attacks x methods (digits, MLP, n = 10, f = 3, Dirichlet α = 1, "
            f"{steps} steps, seed 0)\n\nHonest test accuracy, mean / min over honest nodes "
            "(`python -m learning compare`).\n\n" + pivot_markdown(rows) +
            f"\n\n### ALIE z x Dirichlet α, LEARN trimmed mean ({steps} steps, seed 0)\n\n"
            "(`python -m learning sweep`)\n\n" + pivot_markdown(sweep, "attack", "alpha")
            + f"\n\n### LEARN trimmed mean over 3 seeds ({steps} steps): the 5-point target\n\n"
            "Honest mean test accuracy per seed, its mean, and the difference with the "
            "attack-free mean.\n\n" + seeds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--accuracy", action="store_true", help="also the accuracy grid + sweep")
    add_arguments(ap, "20 steps, one repeat; never writes BENCHMARKS.md")
    ap.add_argument("--steps", type=int, default=None, help="steps per run (default 300)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 3)")
    ap.add_argument("--attack-steps", type=int, default=None,
                    help="steps per run of the per-attack table (default 60)")
    a = ap.parse_args()
    if a.quick and a.accuracy:
        ap.error("--quick runs the speed table only: drop --quick to run --accuracy")
    torch.set_num_threads(a.threads)
    steps, repeats = (20, 1) if a.quick else (300, 3)
    steps = a.steps or steps
    repeats = a.repeats or repeats
    t0 = time.perf_counter()
    parts = [speed(a.device, steps, repeats, warmup=5 if a.quick else 20),
             attacks_table(a.device, a.attack_steps or (4 if a.quick else 60), repeats)]
    body = ("## Learning: LEARN vs D-SGD\n\n"
            f"Machine: {machine()}  \nCommand: `{command()}` "
            f"({time.perf_counter() - t0:.0f} s)  \n"
            "A load above what this run uses means other work shared the machine: the times "
            "are then upper bounds.\n\n" + "\n\n".join(parts))
    finish("learning", body, quick=a.quick, no_write=a.no_write, allow_load=a.allow_load)
    if a.accuracy:  # deterministic tables, in a section of their own
        finish("learning-accuracy", accuracy(steps), quick=a.quick, no_write=a.no_write,
               allow_load=True)


if __name__ == "__main__":
    main()
