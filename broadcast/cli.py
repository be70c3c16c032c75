"""Command line of broadcast: ``python -m broadcast run`` (also ``jungle broadcast``).

``run`` makes one Bracha reliable broadcast from ``--origin`` among n nodes, f of them
Byzantine, in netsim's adversarial simulator, and reports what every honest node delivered
with the three guarantees checked (agreement, totality, and validity when the origin is
honest; n >= 3f+1, proofs/equivalence.md). With ``--witness`` every node broadcasts a vector
and the witness gather builds one view per honest node; the report checks that any two
views share at least n - f origins with equal vectors.

It imports broadcast and netsim only (the layers below); the libraries never import it.
``--plugin MODULE`` (:mod:`netsim.plugins`) imports a module that registers strategies or
schedulers first; the choices and the listings of ``--help`` are the registries'.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from netsim.cli_args import (
    ArgumentParser,
    CommandLineError,
    add_plugin_argument,
    byzantine_ids,
    check_output_path,
    fail,
    nonneg_int,
    plugin_argv,
    positive_int,
    summary,
    translate,
)
from netsim.sim.adversary import STRATEGIES, make_strategy
from netsim.sim.schedulers import SCHEDULER_HELP, SCHEDULERS, make_scheduler
from netsim.sim.simulator import SimResult, Simulator

from .bracha import Delivered, ReliableBroadcast
from .witness import View, WitnessGather

STRATEGY_HELP = {
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
"""One line per built-in strategy of :data:`netsim.sim.adversary.STRATEGIES`, for ``--help``
(a registered one is described by its docstring's first line)."""

_FLAGS = (("unsafe=True", "--unsafe"), ("byzantine_ids", "--byzantine-ids"))


def _listing(title: str, items: dict[str, str]) -> str:
    width = max(len(k) for k in items)
    return title + ":\n" + "\n".join(f"  {k:<{width}}  {v}" for k, v in sorted(items.items()))


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=positive_int, default=7, help="number of nodes (default 7)")
    p.add_argument("--f", type=nonneg_int, default=2, help="Byzantine bound f (default 2)")
    p.add_argument("--strategy", "--byzantine", dest="strategy", default="none",
                   choices=["none", *sorted(STRATEGIES)],
                   metavar="STRATEGY", help="strategy of the f Byzantine nodes, or 'none' for "
                   "an all-honest run (default none); see the list below; --byzantine is its old "
                   "name, kept as an alias")
    p.add_argument("--byzantine-ids", default=None, help="comma-separated Byzantine ids "
                   "(default: 0..f-1, so the origin 0 is Byzantine)")
    p.add_argument("--scheduler", default="random", choices=sorted(SCHEDULERS),
                   metavar="SCHEDULER", help="delivery schedule (default random); see below")
    p.add_argument("--seed", type=int, default=0, help="the one seed of the run (default 0)")
    p.add_argument("--dim", type=positive_int, default=8, help="vector dimension (default 8)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--trace", metavar="FILE", help="write a JSON-lines trace of deliveries")
    p.add_argument("--no-codec", action="store_true",
                   help="pass messages by reference instead of through the codec (faster)")
    p.add_argument("--unsafe", action="store_true",
                   help="allow n < 3f+1 (to see what breaks; the guarantees are void)")
    p.add_argument("--origin", type=nonneg_int, default=0,
                   help="the broadcasting node (default 0)")
    p.add_argument("--witness", action="store_true",
                   help="run one witness round of all nodes instead")


def build_parser() -> argparse.ArgumentParser:
    strategies = {k: summary(v, STRATEGY_HELP, k) for k, v in STRATEGIES.items()}
    epilog = _listing("strategies", strategies) + "\n\n" + _listing(
        "schedulers", SCHEDULER_HELP)
    parser = ArgumentParser(prog="python -m broadcast",
                            description="Reliable broadcast and the witness gather under attack.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run", help="one reliable broadcast (or one witness round) under attack",
        description="Run one Bracha reliable broadcast from --origin among n nodes, f of them "
        "Byzantine, and report what every honest node delivered. With --witness, every node "
        "broadcasts a vector and the witness gather builds one view per honest node.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog,
    )
    _add_arguments(run)
    add_plugin_argument(run)
    return parser


def _simulate(args: argparse.Namespace, byz: list[int]) -> tuple[SimResult, dict[int, Any]]:
    """One simulated run of the protocol the flags name; ``(result, input vectors)``."""
    n, f = args.n, args.f
    rng = np.random.default_rng(args.seed)
    vectors = {i: rng.standard_normal(args.dim) for i in range(n)}
    factory: Any
    if args.witness:
        def factory(i: int, x: Any) -> WitnessGather:
            return WitnessGather(i, n, f, value=x, dim=args.dim, unsafe=args.unsafe)
        inputs = vectors
    else:
        inst = (0, 0, args.origin)

        def factory(i: int, x: Any) -> ReliableBroadcast:
            return ReliableBroadcast(i, n, f, value=x, dim=args.dim, expect=(inst,),
                                     unsafe=args.unsafe)
        inputs = {args.origin: vectors[args.origin]}
    sim = Simulator(
        n, f, factory, inputs, byzantine_ids=byz,
        strategy=make_strategy(args.strategy) if byz else None,
        scheduler=make_scheduler(args.scheduler), seed=args.seed,
        codec=not args.no_codec, trace=args.trace,
    )
    return sim.run(), vectors


def witness_fields(res: SimResult, n: int, f: int) -> dict[str, Any]:
    """Each honest view's origins, the least pairwise overlap, and whether the witness
    guarantee held: every two views share >= n - f origins with equal vectors."""
    views: dict[int, View | None] = {
        i: next((o for o in res.outputs[i] if isinstance(o, View)), None) for i in res.honest
    }
    origins = {i: (sorted(v.values) if v else None) for i, v in views.items()}
    sets = [set(o) for o in origins.values() if o is not None]
    overlap = min((len(a & b) for a in sets for b in sets), default=None)
    present = [v for v in views.values() if v is not None]
    consistent = all(np.array_equal(a.values[o], b.values[o])
                     for a in present for b in present for o in set(a.values) & set(b.values))
    return dict(views={str(i): o for i, o in origins.items()},
                complete=all(o is not None for o in origins.values()), min_overlap=overlap,
                witness_guarantee=overlap is not None and overlap >= n - f and consistent,
                agreement=consistent)


def broadcast_fields(res: SimResult, origin: int, byz: list[int],
                     want: np.ndarray) -> dict[str, Any]:
    """What each honest node delivered (digests), and the guarantees of reliable broadcast:
    agreement, totality, and (honest origin) validity, the origin's vector ``want``."""
    delivered: dict[int, Delivered | None] = {
        i: next((o for o in res.outputs[i] if isinstance(o, Delivered)), None)
        for i in res.honest
    }
    digests = {i: (d.digest.hex() if d else None) for i, d in delivered.items()}
    distinct = {h for h in digests.values() if h is not None}
    out: dict[str, Any] = dict(
        origin=origin, origin_honest=origin not in byz,
        delivered={str(i): h for i, h in digests.items()}, agreement=len(distinct) <= 1,
        totality=len(distinct) == 0 or all(h is not None for h in digests.values()),
    )
    if origin not in byz:
        out["validity"] = all(d is not None and np.array_equal(d.vector, want)
                              for d in delivered.values())
    return out


def run_broadcast(args: argparse.Namespace) -> dict[str, Any]:
    """Run the ``run`` command; return its JSON-able report (:class:`CommandLineError` or
    the library's ``ValueError`` for bad flags)."""
    n, f = args.n, args.f
    if not 0 <= args.origin < n:
        raise CommandLineError(f"--origin {args.origin} must be in range(--n {n})")
    if not f < n:
        raise CommandLineError(f"--f {f} must be below --n {n}")
    check_output_path("--trace", args.trace)
    byz = [] if args.strategy == "none" else byzantine_ids(args.byzantine_ids, n, f)
    res, vectors = _simulate(args, byz)
    report: dict[str, Any] = dict(
        command="witness" if args.witness else "broadcast", n=n, f=f, seed=args.seed,
        dim=args.dim, scheduler=args.scheduler, strategy=args.strategy, byzantine_ids=byz)
    report["byzantine"] = args.strategy  # the deprecated key of "strategy" (one release)
    if args.witness:
        report.update(witness_fields(res, n, f))
    else:
        report.update(broadcast_fields(res, args.origin, byz, vectors[args.origin]))
    m = res.metrics
    report.update(
        messages=m.messages, bytes=m.bytes,
        messages_by_kind=dict(sorted(m.messages_by_kind.items())),
        faults={k: m.faults_by_kind[k] for k in sorted(m.faults_by_kind)},
        faults_against_honest=len([1 for _, fl in res.faults if fl.sender not in byz]),
        virtual_time=round(res.time, 6), events=res.events,
    )
    return report


def print_human(rep: dict[str, Any]) -> None:
    """The report of :func:`run_broadcast` as text."""
    print(f"{rep['command']}: n={rep['n']} f={rep['f']} seed={rep['seed']} d={rep['dim']} "
          f"scheduler={rep['scheduler']} strategy={rep['strategy']} "
          f"ids={rep['byzantine_ids']}")
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
        print(f"min pairwise overlap: {rep['min_overlap']} (needs >= n-f = "
              f"{rep['n'] - rep['f']})   witness guarantee: {rep['witness_guarantee']}")
    kinds = ", ".join(f"{k} {v}" for k, v in rep["messages_by_kind"].items())
    print(f"messages: {rep['messages']} ({kinds})   bytes: {rep['bytes']}")
    faults = ", ".join(f"{k} {v}" for k, v in rep["faults"].items()) or "none"
    print(f"faults recorded: {faults}")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        argv = plugin_argv(argv)
    except CommandLineError as exc:
        return fail(exc)
    args = build_parser().parse_args(argv)
    try:
        rep = run_broadcast(args)
    except ValueError as exc:  # CommandLineError included
        return fail(translate(exc, _FLAGS))
    if args.json:
        print(json.dumps(rep, sort_keys=True))
    else:
        print_human(rep)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
