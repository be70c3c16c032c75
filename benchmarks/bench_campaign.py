"""Campaign throughput: small seeded adversarial runs per second per core, 1 and 2 workers.

Run: ``python -m benchmarks.bench_campaign [--quick] [--no-write] [--seeds K]``. One campaign
(agreement.campaigns) of small runs, the issue's scale target: (n, f) in (4, 1), (5, 1),
(7, 2), (10, 2), (10, 3), (13, 4), d in {4, 16}, trimmed mean and MDA (MDA runs where
κ(n, f) < 1, at (5, 1) and (10, 2); its other cells are skipped), the split attack and the
equivocate strategy, targeted and random schedulers, 3 rounds, message engine with the codec
on; K seeds per cell (default 12). It is run twice from scratch, with ``workers=1`` (in process) and
``workers=2`` (a process pool), and reports the wall time of :func:`agreement.campaign`
(everything: pool start, runs, files), runs per second, runs per second per core used, and
the speed-up of 2 workers over 1 (target >= 1.8x: it needs two otherwise idle cores, so the
load average is printed at the start and at the end). The two campaigns' records are
compared (all fields but ``wall_time``) and must be equal. Writes BENCHMARKS.md section
"campaign". ``--quick`` (a check that it runs, a few seconds): 2 seeds of a smaller grid; it
never writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from agreement.campaigns import load_spec, run_campaign
from benchmarks.report import add_arguments, command, finish, machine, markdown_table


def spec_dict(seeds: int, quick: bool) -> dict[str, Any]:
    """The benchmark's campaign spec (module doc); ``quick``: (4, 1) and (5, 1), d = 4."""
    nf = [[4, 1], [5, 1]] if quick else [[4, 1], [5, 1], [7, 2], [10, 2], [10, 3], [13, 4]]
    return {
        "name": "bench-quick" if quick else "bench",
        "seeds": {"start": 0, "count": seeds},
        "axes": {"protocol": ["trimmed-mean", "mda"], "nf": nf,
                 "d": [4] if quick else [4, 16], "strategy": ["split", "equivocate"],
                 "scheduler": ["targeted", "random"]},
        "fixed": {"rounds": 3, "inputs": "gaussian", "engine": "message", "codec": True},
        "checks": {"claims": True},
    }


def _strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in records]


def timed_campaign(spec: Any, workers: int) -> tuple[float, list[dict[str, Any]]]:
    """Wall time of a fresh campaign with ``workers``, and its records."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = run_campaign(spec, Path(tmp) / "out", workers=workers, progress=False,
                           resume=False)
        return time.perf_counter() - t0, res.records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap, "2 seeds of (4, 1) and (5, 1), d = 4; never writes BENCHMARKS.md")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per cell (default 12)")
    args = ap.parse_args()
    seeds = args.seeds or (2 if args.quick else 12)
    spec = load_spec(spec_dict(seeds, args.quick))
    cores = os.cpu_count() or 1
    rows, base, recs1 = [], 0.0, None
    for workers in (1, 2):
        wall, records = timed_campaign(spec, workers)
        if workers == 1:
            base, recs1 = wall, records
        elif _strip(records) != _strip(recs1 or []):
            raise SystemExit("error: the 2-worker records differ from the 1-worker records")
        rate = len(records) / wall
        rows.append([workers, len(records), f"{wall:.2f}", f"{rate:.1f}",
                     f"{rate / min(workers, cores):.1f}", f"{base / wall:.2f}x"])
        print(*rows[-1], sep="\t", flush=True)
    failed = sum(r["status"] != "ok" for r in recs1 or [])
    table = markdown_table(
        ["workers", "runs", "wall time (s)", "runs/s", "runs/s per core", "speed-up vs 1"],
        rows)
    body = (
        "## Campaigns: throughput of small runs, 1 and 2 workers\n\n"
        f"Machine: {machine()}  \nCommand: `{command()}`  \n"
        f"{len(spec.cells())} cells x {seeds} seeds: (n, f) in "
        f"{', '.join(str(tuple(p)) for p in spec.axes['nf'])}, d in {spec.axes['d']}, "
        f"trimmed mean and MDA ({len(spec.skipped_cells())} MDA cells below its resilience "
        "skipped), split and equivocate, targeted and random schedulers, 3 rounds, "
        "message engine, codec on. Wall time of `agreement.campaign` from scratch (pool start, "
        "runs, files); the 2-worker records equal the 1-worker ones (all fields but wall_time); "
        f"{failed} violations or errors. Target: speed-up >= 1.8x on two idle cores.\n\n"
        + table
    )
    finish("campaign", body, quick=args.quick, no_write=args.no_write, allow_load=args.allow_load)


if __name__ == "__main__":
    main()
