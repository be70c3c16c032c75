"""Full averaging agreements: the message level (the truth) against the round-level engine.

Run: ``python -m benchmarks.bench_agreement [--quick] [--no-write]``. A trimmed-mean agreement
of 10 rounds at n = 31, f = 10, d = 1e4 (the issue's target: round level >= 50x faster), plus
smaller points and the other protocols, all with the split attack, the random scheduler
(message level) and random views (round level). Wall time of ``agreement.run`` (best of
repeats), the message level with the codec on (as in tests) and off. Writes BENCHMARKS.md
section "agreement". ``--quick`` (a check that it runs, a few seconds): the same protocols at n
<= 10, d = 10 and 3 rounds, the round level once; it never writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time

from agreement import run
from agreement.inputs import make_inputs
from benchmarks.report import add_arguments, command, finish, machine, markdown_table


def timed(repeats: int, **kw) -> tuple[float, object]:
    best, res = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = run(**kw)
        best = min(best, time.perf_counter() - t0)
    return best, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap, "n <= 10, d = 10, 3 rounds, one repeat; never writes BENCHMARKS.md")
    args = ap.parse_args()
    points = [
        ("trimmed-mean", 31, 10, 10_000, 10),
        ("trimmed-mean", 10, 3, 1_000, 10),
        ("mda", 13, 2, 1_000, 10),
        ("mve", 7, 1, 100, 10),
    ]
    repeats = 3
    if args.quick:
        points = [("trimmed-mean", 10, 3, 10, 3), ("mda", 10, 2, 10, 3), ("mve", 7, 1, 10, 3)]
        repeats = 1
    rows = []
    for protocol, n, f, d, rounds in points:
        x = make_inputs("gaussian", n, d, 0)
        common = dict(inputs=x, f=f, protocol=protocol, rounds=rounds, strategy="split",
                      scheduler="random", views="random", seed=0)
        msg_on, res_m = timed(1, engine="message", **common)
        msg_off, _ = timed(1, engine="message", codec=False, **common)
        rnd, _ = timed(repeats, engine="round", **common)
        rows.append([
            protocol, n, f, f"{d:.0e}" if d >= 1000 else d, rounds,
            f"{msg_on:.3f}", f"{msg_off:.3f}", f"{rnd:.4f}", f"{msg_on / rnd:,.0f}x",
            f"{res_m.messages:,}", f"{res_m.bytes / 1e6:,.1f}",  # type: ignore[attr-defined]
        ])
        print(*rows[-1], sep="\t", flush=True)
    table = markdown_table(
        ["protocol", "n", "f", "d", "rounds", "message level, codec on (s)",
         "message level, codec off (s)", "round level (s)", "round-level speed-up",
         "messages", "MB on the wire"], rows)
    body = (
        "## Full averaging agreements: message level vs round level\n\n"
        f"Machine: {machine()}  \nCommand: `{command()}`  \n"
        "Split attack (f Byzantine ids 0..f-1), random scheduler (message level) and random "
        "views (round level), gaussian inputs, float64; wall time of `agreement.run` "
        f"(round level: best of {repeats}). Target: the round level >= 50x faster than the message "
        "level at n = 31, f = 10, d = 1e4.\n\n" + table
    )
    finish("agreement", body, quick=args.quick, no_write=args.no_write, allow_load=args.allow_load)


if __name__ == "__main__":
    main()
