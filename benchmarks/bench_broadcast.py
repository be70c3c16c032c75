"""Simulated messages per second for one Bracha reliable broadcast.

Run: ``python -m benchmarks.bench_broadcast [--quick] [--no-write]``. For n in {4, 16, 31, 64},
all nodes honest and with f = floor((n-1)/3) Byzantine nodes (silent, and equivocating with the
origin among them), codec round-trip on and off. The figure is wire messages (a node's messages
to itself excluded) divided by the wall time of building and running the ``Simulator`` on one
core, best of several repetitions. The codec-off run is the baseline of the same run: the ratio
shows what the codec costs. Writes the table into BENCHMARKS.md (section "broadcast").
``--quick`` (a check that it runs, about a second): n in {4, 16}, one repetition of at least
0.02 s; it never writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.report import add_arguments, command, finish, machine, markdown_table
from broadcast import ReliableBroadcast
from netsim import Simulator, make_strategy


def one_run(n: int, byz: str, codec: bool, seed: int, dim: int) -> tuple[int, float]:
    f = (n - 1) // 3
    inst = (0, 0, 0)

    def factory(i: int, x: object) -> ReliableBroadcast:
        return ReliableBroadcast(i, n, f, value=x, expect=(inst,))  # type: ignore[arg-type]

    inputs = {0: np.arange(dim, dtype=np.float32)}
    # silent Byzantine nodes are the last f ids (honest origin); equivocators include origin 0
    byz_ids = {"none": [], "silent": list(range(n - f, n))}.get(byz, list(range(f)))
    strategy = None if byz == "none" else make_strategy(byz)
    t0 = time.perf_counter()
    sim = Simulator(n, f, factory, inputs, byzantine_ids=byz_ids, strategy=strategy,
                    seed=seed, codec=codec)
    res = sim.run()
    return res.metrics.messages, time.perf_counter() - t0


def measure(n: int, byz: str, codec: bool, min_time: float, repeats: int, dim: int) -> float:
    best = 0.0
    for r in range(repeats):
        msgs, secs, seed = 0, 0.0, r * 1000
        while secs < min_time:
            m, s = one_run(n, byz, codec, seed, dim)
            msgs, secs, seed = msgs + m, secs + s, seed + 1
        best = max(best, msgs / secs)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap, "n in {4, 16}, one short repetition; never writes BENCHMARKS.md")
    ap.add_argument("--dim", type=int, default=16, help="dimension of the broadcast vector")
    args = ap.parse_args()
    min_time, repeats = (0.02, 1) if args.quick else (0.5, 3)
    rows = []
    for n in (4, 16) if args.quick else (4, 16, 31, 64):
        f = (n - 1) // 3
        for byz in ("none", "silent", "equivocate"):
            off = measure(n, byz, False, min_time, repeats, args.dim)
            on = measure(n, byz, True, min_time, repeats, args.dim)
            label = {"none": "all honest", "silent": f"{f} silent, honest origin"}.get(
                byz, f"{f} {byz}, Byzantine origin")
            rows.append([n, f, label, f"{off:,.0f}", f"{on:,.0f}", f"{on / off:.2f}"])
            print(*rows[-1], sep="\t", flush=True)
    table = markdown_table(
        ["n", "f", "Byzantine", "msg/s codec off", "msg/s codec on", "on / off"], rows
    )
    body = (
        "## Simulated reliable broadcast (messages per second, one core)\n\n"
        f"Machine: {machine()}  \nCommand: `{command()}`  \n"
        f"One Bracha RB of a {args.dim}-dimensional float32 vector from node 0, run to "
        "quiescence; wire messages (self-messages excluded) per second of building and "
        "running the `Simulator`, best of several repetitions. "
        "Target: >= 300,000 msg/s with the codec off.\n\n"
        + table
    )
    finish("broadcast", body, quick=args.quick, no_write=args.no_write, allow_load=args.allow_load)


if __name__ == "__main__":
    main()
