"""Command line of netsim: ``python -m netsim <command>`` (also ``jungle <command>``).

Commands:
  broadcast   one Bracha reliable broadcast (or, with --witness, one witness round of all
              nodes) in the adversarial simulator;
  simulate    one iterated averaging agreement (trimmed-mean, mda, mve, baselines) under
              attack, at the message or the round level (see :mod:`agreement.cli`).

This module is a front end: like every ``cli``/``__main__`` module it may import the layers
above netsim (broadcast, agreement); the libraries never do.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from .adversary import STRATEGIES, make_strategy
from .schedulers import SCHEDULERS, make_scheduler
from .simulator import SimResult, Simulator

_STRATEGY_HELP = {
    "silent": "never sends anything",
    "honest": "follows the protocol (control run)",
    "crash": "honest, then crashes after a random number of messages",
    "selective": "honest core whose messages reach only a random half of the nodes",
    "equivocate": "two cores with different values, each talking to half of the nodes",
    "twins": "two cores with different values under one id, both talking to everyone",
    "replay": "honest core plus duplicates and replays of others' messages",
    "flood": "honest core plus copies of its messages for far-future rounds",
    "forge": "honest core plus forged/conflicting ECHO and READY, VALUEs for others",
    "bad-reply": "honest core that answers FETCH with wrong vectors",
    "garbage": "malformed frames: random bytes, bad lengths, unknown kinds, bit flips",
}
_SCHEDULER_HELP = {
    "fifo": "every message takes one time unit (global send order)",
    "random": "independent uniform delays in [0, 1] (arbitrary reordering)",
    "heavy-tail": "Pareto delays: most messages fast, a few very late",
    "partition": "two halves of the honest nodes cut off from each other until t = 10",
    "starve": "all messages to one honest node held until the others are done",
}


def _listing(title: str, items: dict[str, str]) -> str:
    width = max(len(k) for k in items)
    return title + ":\n" + "\n".join(f"  {k:<{width}}  {v}" for k, v in sorted(items.items()))


def _positive(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _nonneg(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=_positive, default=7, help="number of nodes (default 7)")
    p.add_argument("--f", type=_nonneg, default=2, help="Byzantine bound f (default 2)")
    p.add_argument(
        "--byzantine",
        default="none",
        choices=["none", *sorted(STRATEGIES)],
        metavar="STRATEGY",
        help="strategy of the f Byzantine nodes, or 'none' for an all-honest run "
        "(default none); see the list below",
    )
    p.add_argument(
        "--byzantine-ids",
        default=None,
        help="comma-separated Byzantine ids (default: 0..f-1, so the origin 0 is Byzantine)",
    )
    p.add_argument(
        "--scheduler",
        default="random",
        choices=sorted(SCHEDULERS),
        metavar="SCHEDULER",
        help="delivery schedule (default random); see the list below",
    )
    p.add_argument("--seed", type=int, default=0, help="the one seed of the run (default 0)")
    p.add_argument("--dim", type=_nonneg, default=8, help="vector dimension (default 8)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--trace", metavar="FILE", help="write a JSON-lines trace of deliveries")
    p.add_argument(
        "--no-codec",
        action="store_true",
        help="pass messages by reference instead of through the codec (faster)",
    )
    p.add_argument(
        "--unsafe",
        action="store_true",
        help="allow n < 3f+1 (to see what breaks; the guarantees are void)",
    )


def build_parser() -> argparse.ArgumentParser:
    epilog = _listing("strategies", _STRATEGY_HELP) + "\n\n" + _listing(
        "schedulers", _SCHEDULER_HELP
    )
    parser = argparse.ArgumentParser(
        prog="python -m netsim",
        description="Jungle's adversarial network simulator.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    b = sub.add_parser(
        "broadcast",
        help="one reliable broadcast (or one witness round) under attack",
        description=(
            "Run one Bracha reliable broadcast from --origin among n nodes, f of them "
            "Byzantine, and report what every honest node delivered. With --witness, every "
            "node broadcasts a vector and the witness gather builds one view per honest node."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog,
    )
    _add_common(b)
    b.add_argument("--origin", type=_nonneg, default=0, help="the broadcasting node (default 0)")
    b.add_argument(
        "--witness", action="store_true", help="run one witness round of all nodes instead"
    )
    from agreement.cli import add_simulate_parser  # a front end may import upward

    add_simulate_parser(sub)
    return parser


def _byzantine_ids(args: argparse.Namespace) -> list[int]:
    if args.byzantine == "none":
        return []
    if args.byzantine_ids is None:
        return list(range(args.f))
    try:
        ids = sorted({int(x) for x in args.byzantine_ids.split(",") if x.strip()})
    except ValueError:
        raise SystemExit(
            f"error: --byzantine-ids must be integers, got {args.byzantine_ids!r}"
        ) from None
    if len(ids) > args.f or any(not 0 <= i < args.n for i in ids):
        raise SystemExit(f"error: --byzantine-ids needs at most f={args.f} ids in range(n)")
    return ids


def _fault_counts(res: SimResult) -> dict[str, int]:
    return {k: res.metrics.faults_by_kind[k] for k in sorted(res.metrics.faults_by_kind)}


def run_broadcast(args: argparse.Namespace) -> dict[str, Any]:
    """Run the ``broadcast`` command; return its JSON-able report."""
    from broadcast import Delivered, ReliableBroadcast, View, WitnessGather

    n, f = args.n, args.f
    if not 0 <= args.origin < n:
        raise SystemExit(f"error: --origin must be in range(n) = range({n})")
    byz = _byzantine_ids(args)
    rng = np.random.default_rng(args.seed)
    vectors = {i: rng.standard_normal(args.dim) for i in range(n)}
    if args.witness:
        def factory(i: int, x: Any) -> WitnessGather:
            return WitnessGather(i, n, f, value=x, dim=args.dim, unsafe=args.unsafe)
        inputs = vectors
    else:
        inst = (0, 0, args.origin)

        def factory(i: int, x: Any) -> ReliableBroadcast:  # type: ignore[misc]
            return ReliableBroadcast(
                i, n, f, value=x, dim=args.dim, expect=(inst,), unsafe=args.unsafe
            )
        inputs = {args.origin: vectors[args.origin]}
    strategy = make_strategy(args.byzantine) if byz else None
    sim = Simulator(
        n, f, factory, inputs,
        byzantine=byz, strategy=strategy, scheduler=make_scheduler(args.scheduler),
        seed=args.seed, codec=not args.no_codec, trace=args.trace,
    )
    res = sim.run()
    report: dict[str, Any] = {
        "command": "witness" if args.witness else "broadcast",
        "n": n,
        "f": f,
        "seed": args.seed,
        "dim": args.dim,
        "scheduler": args.scheduler,
        "byzantine": args.byzantine,
        "byzantine_ids": byz,
    }
    if args.witness:
        views: dict[int, View | None] = {
            i: next((o for o in res.outputs[i] if isinstance(o, View)), None) for i in res.honest
        }
        origins = {i: (sorted(v.values) if v else None) for i, v in views.items()}
        sets = [set(o) for o in origins.values() if o is not None]
        overlap = min((len(a & b) for a in sets for b in sets), default=None)
        consistent = all(
            np.array_equal(views[i].values[o], views[j].values[o])  # type: ignore[union-attr]
            for i in views for j in views
            if views[i] and views[j]
            for o in set(views[i].values) & set(views[j].values)  # type: ignore[union-attr]
        )
        report.update(
            views={str(i): o for i, o in origins.items()},
            complete=all(o is not None for o in origins.values()),
            min_overlap=overlap,
            witness_guarantee=overlap is not None and overlap >= n - f and consistent,
        )
        report["agreement"] = consistent
    else:
        delivered: dict[int, Delivered | None] = {
            i: next((o for o in res.outputs[i] if isinstance(o, Delivered)), None)
            for i in res.honest
        }
        digests = {i: (d.digest.hex() if d else None) for i, d in delivered.items()}
        distinct = {h for h in digests.values() if h is not None}
        honest_origin = args.origin not in byz
        report.update(
            origin=args.origin,
            origin_honest=honest_origin,
            delivered={str(i): h for i, h in digests.items()},
            agreement=len(distinct) <= 1,
            totality=len(distinct) == 0 or all(h is not None for h in digests.values()),
        )
        if honest_origin:
            want = vectors[args.origin]
            report["validity"] = all(
                d is not None and np.array_equal(d.vector, want) for d in delivered.values()
            )
    report.update(
        messages=res.metrics.messages,
        bytes=res.metrics.bytes,
        messages_by_kind=dict(sorted(res.metrics.messages_by_kind.items())),
        faults=_fault_counts(res),
        faults_against_honest=len([1 for _, fl in res.faults if fl.sender not in byz]),
        virtual_time=round(res.time, 6),
        events=res.events,
    )
    return report


def _print_human(rep: dict[str, Any]) -> None:
    byz = rep["byzantine_ids"]
    head = (
        f"{rep['command']}: n={rep['n']} f={rep['f']} seed={rep['seed']} d={rep['dim']} "
        f"scheduler={rep['scheduler']} byzantine={rep['byzantine']} ids={byz}"
    )
    print(head)
    if rep["command"] == "broadcast":
        who = "Byzantine" if not rep["origin_honest"] else "honest"
        print(f"origin {rep['origin']} ({who})")
        for i, h in rep["delivered"].items():
            print(f"  node {i:>3}: " + (f"delivered {h[:16]}…" if h else "nothing delivered"))
        print(f"agreement: {rep['agreement']}   totality: {rep['totality']}", end="")
        print(f"   validity: {rep['validity']}" if "validity" in rep else "")
    else:
        for i, o in rep["views"].items():
            print(f"  node {i:>3}: view of {len(o) if o else 0} origins {o}")
        print(
            f"min pairwise overlap: {rep['min_overlap']} (needs >= n-f = "
            f"{rep['n'] - rep['f']})   witness guarantee: {rep['witness_guarantee']}"
        )
    kinds = ", ".join(f"{k} {v}" for k, v in rep["messages_by_kind"].items())
    print(f"messages: {rep['messages']} ({kinds})   bytes: {rep['bytes']}")
    faults = ", ".join(f"{k} {v}" for k, v in rep["faults"].items()) or "none"
    print(f"faults recorded: {faults}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "broadcast":
        try:
            rep = run_broadcast(args)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(rep, sort_keys=True))
        else:
            _print_human(rep)
        return 0
    if args.command == "simulate":
        from agreement.cli import run_simulate

        return run_simulate(args)
    raise AssertionError(args.command)  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
