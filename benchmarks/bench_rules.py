"""Robust rules on one view, against the baselines popular robust-aggregation code uses.

Run: ``python -m benchmarks.bench_rules [--quick] [--no-write]``. Writes the BENCHMARKS.md
section "rules". All timings are the best of several repeats, float32 views of standard
normal values, on one thread (``torch.set_num_threads(1)``; numpy's BLAS is the default). Each
baseline is measured in the same run as the rule it is compared with:

- trimmed mean (f = m/4) at (m, d) in {(16, 1e5), (16, 1e6), (64, 1e5)} against
  ``torch.sort(x, 0)`` then the mean of the middle rows, and against a plain ``x.mean(0)``
  (the memory-bound floor); target: >= 2x faster than the torch.sort baseline;
- Krum and the geometric median (f = 3) on an attacked view at (16, 1e6): 13 standard normal
  vectors and 3 shifted by +5 in every coordinate (on an unattacked Gaussian view Weiszfeld
  stops after one step and there is nothing to measure), against ``torch.cdist`` implementations
  (Krum: pairwise ``cdist``, scores over the m-f-2 nearest; geometric median: Weiszfeld with
  one ``cdist`` of the view to the current estimate per iteration, the same tolerance and
  smoothing); target: >= 3x faster;
- one MVE rule at n = 13, f = 2, d = 1e5 and one MDA rule at n = 19, f = 3, d = 1e5 (views
  of n vectors); target: under 1 s each;
- the coordinate-wise rules against a plain mean ``x.mean(0)`` of the same view (the floor:
  one pass over memory): trimmed mean (f = m/4) and median on the compiled column kernel
  (agreement/rules/kernels.py, numba) and on its numpy fallback, all interleaved in one loop, at
  (m, d) in {(7, 1e6), (8, 1e6), (16, 1e6), (32, 1e5), (64, 1e5)} float32 and (16, 1e6),
  (32, 1e5) float64; target: trimmed mean and median within 5x of the mean at (16, 1e6) and
  (32, 1e5) float32. A second table compares the median's candidate kernels at d = 1e5:
  the numba kernel, numpy's row sort (the fallback), ``np.partition`` along the view axis,
  ``torch.sort`` and ``torch.kthvalue``;
- ball MDA (``agreement/rules/ball.py``) at (m, d) = (64, 1e5), float64, f in {4, 8, 16},
  against exact MDA and a plain mean, the three timed in turn within each repeat
  (interleaved, so that the load of the machine hits them alike); target: ball MDA under
  50 ms per call.

``--quick`` (a check that it runs, a few seconds): every d / 100, one repeat (two for the
subset rules); it never writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from agreement.rules import make_rule
from benchmarks.report import add_arguments, command, finish, machine, markdown_table


def best(fn: Callable[[], Any], repeats: int) -> float:
    out = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def krum_cdist(torch: Any, x: Any, f: int) -> Any:
    """Krum as robust-aggregation libraries write it: cdist, sort, sum of the nearest."""
    m = x.shape[0]
    d2 = torch.cdist(x, x) ** 2
    scores = torch.sort(d2, dim=1).values[:, 1 : m - f - 1].sum(dim=1)
    return x[torch.argmin(scores)]


def gm_cdist(torch: Any, x: Any, tol: float, max_iter: int, eps: float) -> Any:
    """Smoothed Weiszfeld on the vectors themselves: one cdist to the estimate per step."""
    z = x.mean(dim=0, keepdim=True)
    prev = None
    for _ in range(max_iter):
        dist = torch.cdist(x, z)[:, 0].clamp_min(eps)
        obj = float(dist.sum())
        if prev is not None and abs(prev - obj) <= tol * obj:
            break
        prev = obj
        w = 1.0 / dist
        z = (w[None, :] @ x) / w.sum()
    return z[0]


def trimmed_mean_rows(torch: Any, rng: np.random.Generator, scale: int, reps: int) -> list:
    """The trimmed-mean table: ours against torch.sort + middle mean, and a plain mean."""
    tm_rows = []
    for m, d in [(16, 100_000), (16, 1_000_000), (64, 100_000)]:
        d //= scale
        x = rng.standard_normal((m, d)).astype(np.float32)
        xt = torch.from_numpy(x)
        f = m // 4
        rule = make_rule("trimmed-mean", f)
        ours = best(lambda rule=rule, x=x: rule(x), reps)
        base = best(lambda xt=xt, f=f, m=m: torch.sort(xt, 0).values[f : m - f].mean(0), reps)
        mean = best(lambda x=x: x.mean(0), reps)
        ref = torch.sort(xt, 0).values[f : m - f].mean(0).numpy()
        err = float(np.abs(rule(x) - ref).max())
        tm_rows.append([m, f, f"{d:.0e}", f"{ours * 1e3:.2f}", f"{base * 1e3:.2f}",
                        f"{base / ours:.1f}x", f"{mean * 1e3:.2f}", f"{ours / mean:.1f}",
                        f"{err:.1e}"])
        print(*tm_rows[-1], sep="\t", flush=True)
    return tm_rows


def distance_rows(torch: Any, rng: np.random.Generator, scale: int, reps: int) -> list:
    """Krum and the geometric median through the Gram matrix against ``torch.cdist``
    versions, on an attacked view (f Byzantine vectors shifted by 5 in every coordinate)."""
    m, d, f = 16, 1_000_000 // scale, 3
    x = rng.standard_normal((m, d)).astype(np.float32)
    x[:f] += 5.0
    xt = torch.from_numpy(x)
    dist_rows = []
    krum = make_rule("krum", f)
    gm = make_rule("geometric-median", f)
    cases = [
        ("krum", lambda: krum(x), lambda: krum_cdist(torch, xt, f),
         lambda: float(np.abs(krum(x) - krum_cdist(torch, xt, f).numpy()).max())),
        ("geometric-median", lambda: gm(x),
         lambda: gm_cdist(torch, xt, gm.tol, gm.max_iter, gm.eps),
         lambda: float(np.linalg.norm(gm(x) - gm_cdist(torch, xt, gm.tol, gm.max_iter,
                                                       gm.eps).numpy())
                       / np.linalg.norm(gm(x)))),
    ]
    for name, ours_fn, base_fn, err_fn in cases:
        ours = best(ours_fn, reps)
        base = best(base_fn, reps)
        dist_rows.append([name, m, f, f"{d:.0e}", f"{ours * 1e3:.1f}", f"{base * 1e3:.1f}",
                          f"{base / ours:.1f}x", f"{err_fn():.1e}"])
        print(*dist_rows[-1], sep="\t", flush=True)
    return dist_rows


def subset_rows(rng: np.random.Generator, scale: int, reps: int) -> list:
    """One MVE rule (n = 13, f = 2) and one MDA rule (n = 19, f = 3) at d = 1e5 / scale,
    against a plain mean."""
    sub_rows = []
    for name, n, f in [("mve", 13, 2), ("mda", 19, 3)]:
        d = 100_000 // scale
        x = rng.standard_normal((n, d)).astype(np.float32)
        rule = make_rule(name, f)
        ours = best(lambda rule=rule, x=x: rule(x), max(2, reps // 2))
        mean = best(lambda x=x: x.mean(0), reps)
        sub_rows.append([name, n, f, f"{d:.0e}", f"{ours * 1e3:.1f}", f"{ours / mean:.0f}"])
        print(*sub_rows[-1], sep="\t", flush=True)
    return sub_rows


def interleaved(fns: list[Callable[[], Any]], repeats: int) -> list[float]:
    """The best time of each function, the functions called in turn within each repeat."""
    out = [float("inf")] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            out[k] = min(out[k], time.perf_counter() - t0)
    return out


COLUMN_SHAPES = [(7, 1_000_000, np.float32), (8, 1_000_000, np.float32),
                 (16, 1_000_000, np.float32), (32, 100_000, np.float32),
                 (64, 100_000, np.float32), (16, 1_000_000, np.float64),
                 (32, 100_000, np.float64)]


def column_rows(rng: np.random.Generator, scale: int, reps: int) -> list:
    """Trimmed mean (f = m/4) and median, compiled kernel and numpy fallback, against a plain
    mean of the same view, the five called in turn within each repeat; ratios to the mean."""
    from agreement.rules import kernels
    from agreement.rules.coordinate import median_numpy, trimmed_mean_numpy

    fast = kernels.enabled()
    rows = []
    for m, d, dt in COLUMN_SHAPES:
        d //= scale
        x = rng.standard_normal((m, d)).astype(dt)
        f = m // 4
        if fast:  # the kernel itself (a rule runs it from kernels.MIN_ELEMENTS values up)
            kernels.trimmed_mean(x[:, :8], f), kernels.median(x[:, :8])  # compile / load
            tm, med = (lambda x=x, f=f: kernels.trimmed_mean(x, f)), (
                lambda x=x: kernels.median(x))
        else:
            tm, med = (lambda x=x, f=f: trimmed_mean_numpy(x, f)), (lambda x=x: median_numpy(x))
        fns = [lambda x=x: x.mean(0), tm, lambda x=x, f=f: trimmed_mean_numpy(x, f), med,
               lambda x=x: median_numpy(x)]
        t = interleaved(fns, reps)
        ms = [f"{v * 1e3:.2f}" for v in t]
        if not fast:  # no compiled kernel: the rule ran the fallback too
            ms[1] = ms[3] = "-"
        rows.append([m, f, f"{d:.0e}", np.dtype(dt).name, ms[0],
                     *(f"{ms[k]} ({t[k] / t[0]:.1f}x)" for k in (1, 2, 3, 4))])
        print(*rows[-1], sep="\t", flush=True)
    return rows


def median_kernel_rows(torch: Any, rng: np.random.Generator, scale: int, reps: int) -> list:
    """The median's candidate kernels at d = 1e5 / scale, float32, interleaved; the last
    column checks that they agree with the rule."""
    from agreement.rules import kernels
    from agreement.rules.coordinate import median_numpy

    rows = []
    for m in (7, 16, 32, 64):
        d = 100_000 // scale
        x = rng.standard_normal((m, d)).astype(np.float32)
        xt = torch.from_numpy(x)
        lo, hi = (m - 1) // 2, m // 2

        def part(x: np.ndarray = x, lo: int = lo, hi: int = hi) -> np.ndarray:
            p = np.partition(x, (lo, hi), axis=0)
            return np.float32(0.5) * p[lo] + np.float32(0.5) * p[hi]

        def tsort(xt: Any = xt, lo: int = lo, hi: int = hi) -> Any:
            s = torch.sort(xt, 0).values
            return 0.5 * s[lo] + 0.5 * s[hi]

        def kth(xt: Any = xt, lo: int = lo, hi: int = hi) -> Any:
            a = torch.kthvalue(xt, lo + 1, 0).values
            return a if lo == hi else 0.5 * a + 0.5 * torch.kthvalue(xt, hi + 1, 0).values

        fns = [lambda x=x: x.mean(0), lambda x=x: median_numpy(x), part, tsort, kth]
        if kernels.enabled():
            kernels.median(x[:, :8])
            fns.append(lambda x=x: kernels.median(x))
        t = interleaved(fns, reps)
        ref = median_numpy(x)
        err = max(float(np.abs(part() - ref).max()), float(np.abs(kth().numpy() - ref).max()))
        cells = [f"{v * 1e3:.2f}" for v in t] + (["-"] if len(t) == 5 else [])
        rows.append([m, f"{d:.0e}", *cells, f"{err:.0e}"])
        print(*rows[-1], sep="\t", flush=True)
    return rows


def ball_rows(rng: np.random.Generator, scale: int, reps: int) -> list:
    """Ball MDA against exact MDA and a plain mean at (64, 1e5 / scale), float64, interleaved;
    the last column is the diameter of ball MDA's chosen set over exact MDA's (<= 2,
    proofs/ball_mda.md Lemma 1)."""
    from agreement.rules import gram, mda_subset, prepare
    from agreement.rules.ball import ball_selection

    m, d = 64, 100_000 // scale
    x = rng.standard_normal((m, d))
    rows = []
    for f in (4, 8, 16):
        ball, exact = make_rule("ball-mda", f), make_rule("mda", f)
        t_ball, t_mda, t_mean = interleaved(
            [lambda r=ball: r(x), lambda r=exact: r(x), lambda: x.mean(0)], max(2, reps // 2))
        D = gram(prepare(x, "bench"), "bench").distances2()
        S = ball_selection(D, f)[1]
        ratio = np.sqrt(D[np.ix_(S, S)].max() / mda_subset(D, f)[1])
        rows.append([m, f, f"{d:.0e}", f"{t_ball * 1e3:.1f}", f"{t_mda * 1e3:.1f}",
                     f"{t_mda / t_ball:.1f}x", f"{t_mean * 1e3:.2f}", f"{t_ball / t_mean:.1f}",
                     f"{ratio:.3f}"])
        print(*rows[-1], sep="\t", flush=True)
    return rows


def report(tm_rows: list, dist_rows: list, sub_rows: list, ball: list, cols: list,
           kernels_rows: list, kernel: str) -> str:
    """The ``rules`` section of the benchmark report (markdown)."""
    return (
        "## Robust rules on one view (CPU, one thread)\n\n"
        f"Machine: {machine()}  \nCommand: `{command()}`  \n"
        "float32 standard normal views; best of repeats; each baseline measured in the same "
        "run. Targets: trimmed mean >= 2x faster than `torch.sort(x, 0)` + middle mean; Krum "
        "and geometric median >= 3x faster than `torch.cdist` implementations at (16, 1e6); "
        "one MVE rule (n = 13, f = 2) and one MDA rule (n = 19, f = 3) at d = 1e5 under 1 s. "
        "The last column of each table is the largest difference from the baseline's result.\n\n"
        "### Trimmed mean (f = m/4)\n\n"
        + markdown_table(["m", "f", "d", "ours (ms)", "torch.sort + mean (ms)", "speed-up",
                          "plain mean (ms)", "ours / plain mean", "max |diff|"], tm_rows)
        + "\n\n### Coordinate-wise rules vs a plain mean of the same view\n\n"
        f"Column kernel: {kernel}. Trimmed mean (f = m/4) and median on the compiled kernel "
        "(`agreement/rules/kernels.py`) and on its numpy fallback (identical bits), and "
        "`x.mean(0)`, the five timed in turn within each repeat; in brackets the ratio to "
        "the mean. Target: within 5x at (16, 1e6) and (32, 1e5) float32.\n\n"
        + markdown_table(["m", "f", "d", "dtype", "mean (ms)", "trimmed mean, kernel",
                          "trimmed mean, numpy", "median, kernel", "median, numpy"], cols)
        + "\n\n### Median kernels (float32, interleaved, ms)\n\n"
        + markdown_table(["m", "d", "plain mean", "numpy row sort (fallback)",
                          "np.partition", "torch.sort", "torch.kthvalue", "numba kernel",
                          "max |diff|"], kernels_rows)
        + "\n\n### Distance-based rules through the Gram matrix\n\n"
        + markdown_table(["rule", "m", "f", "d", "ours (ms)", "torch.cdist version (ms)",
                          "speed-up", "diff (abs / rel)"], dist_rows)
        + "\n\n### Subset rules (one view of n vectors)\n\n"
        + markdown_table(["rule", "n", "f", "d", "time (ms)", "time / plain mean"], sub_rows)
        + "\n\n### Ball MDA against exact MDA (float64, interleaved; target < 50 ms)\n\n"
        + markdown_table(["m", "f", "d", "ball MDA (ms)", "exact MDA (ms)", "speed-up",
                          "plain mean (ms)", "ball / plain mean", "diam ratio"], ball)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap, "d / 100, one repeat; never writes BENCHMARKS.md")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    scale = 100 if args.quick else 1
    reps = 1 if args.quick else 5
    rng = np.random.default_rng(0)  # one stream, drawn by the four tables in this order
    tm_rows = trimmed_mean_rows(torch, rng, scale, reps)
    dist_rows = distance_rows(torch, rng, scale, reps)
    sub_rows = subset_rows(rng, scale, reps)
    ball = ball_rows(rng, scale, reps)
    from agreement.rules import kernels

    print(f"column kernel: {kernels.backend()}", flush=True)
    cols = column_rows(rng, scale, reps)
    kernels_rows = median_kernel_rows(torch, rng, scale, reps)
    body = report(tm_rows, dist_rows, sub_rows, ball, cols, kernels_rows, kernels.backend())
    finish("rules", body, quick=args.quick, no_write=args.no_write, allow_load=args.allow_load)


if __name__ == "__main__":
    main()
