"""Command line of netsim: ``python -m netsim <command>`` (also ``jungle <command>``).

Commands:
  broadcast   one Bracha reliable broadcast (or, with --witness, one witness round of all
              nodes) in the adversarial simulator;
  simulate    one iterated averaging agreement (trimmed-mean, mda, mve, baselines) under
              attack, at the message or the round level (see :mod:`agreement.cli`);
  keys        a cluster CA, one certificate and key per node, and cluster.toml;
  node        one node process of the real network (mutual TLS over TCP);
  launch      n node processes on loopback (f Byzantine), reported like ``simulate``.

This module is a front end: like every ``cli``/``__main__`` module it may import the layers
above netsim (broadcast, agreement); the libraries never do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from .cli_args import (
    ArgumentParser,
    CommandLineError,
    check_output_path,
    fail,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
)
from .sim.adversary import STRATEGIES, make_strategy
from .sim.schedulers import SCHEDULER_HELP, SCHEDULERS, make_scheduler
from .sim.simulator import SimResult, Simulator

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
_SCHEDULER_HELP = SCHEDULER_HELP


def _listing(title: str, items: dict[str, str]) -> str:
    width = max(len(k) for k in items)
    return title + ":\n" + "\n".join(f"  {k:<{width}}  {v}" for k, v in sorted(items.items()))


_positive = positive_int
_nonneg = nonneg_int

_FLAGS = (
    ("; pass unsafe=True to run it anyway", ""),  # no command but simulate has --unsafe
    ("unsafe=True", "--unsafe"),
    ("byzantine_ids", "--byzantine-ids"),
    ("engine='message'", "--engine message"),
)


def cli_message(text: object) -> str:
    """An API error message in this command line's terms (its flags, not Python keywords):
    the one translation of netsim's command line (``simulate`` has its own, with --unsafe)."""
    out = str(text)
    for api, flag in _FLAGS:
        out = out.replace(api, flag)
    return out


def _parse_ids(text: str | None, flag: str = "--byzantine-ids") -> list[int] | None:
    """``"0,3"`` -> ``[0, 3]``; :class:`CommandLineError` naming ``flag`` otherwise."""
    if text is None:
        return None
    try:
        return sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise CommandLineError(
            f"{flag} must be comma-separated integers, got {text!r}"
        ) from None


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
    p.add_argument("--dim", type=_positive, default=8, help="vector dimension (default 8)")
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
    parser = ArgumentParser(
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
    _add_network_parsers(sub)
    return parser


_PLAINTEXT_HELP = (
    "INSECURE: no TLS, no authentication; any local process can claim any node id. "
    "Loopback addresses only, for experiments that measure the cost of TLS"
)


def _add_network_parsers(sub: Any) -> None:
    from .net.node import DEFAULT_LINGER, NETWORK_STRATEGIES

    k = sub.add_parser(
        "keys", help="write a cluster CA, node certificates and cluster.toml",
        description="Make a certificate authority for a new cluster, one certificate and key "
        "per node (the node id is bound in the certificate), and the cluster configuration "
        "(ids, addresses, certificate fingerprints) that every node reads.",
    )
    k.add_argument("--n", type=_positive, required=True, help="number of nodes")
    k.add_argument("--f", type=_nonneg, default=None,
                   help="Byzantine bound written to the config (default (n-1)//3)")
    k.add_argument("--out", required=True, metavar="DIR", help="output folder")
    k.add_argument("--hosts", default=None,
                   help="comma-separated host of each node (default 127.0.0.1 for all)")
    k.add_argument("--base-port", type=_positive, default=47000,
                   help="node i listens on BASE_PORT + i (default 47000; BASE_PORT + n - 1 "
                   "must be at most 65535)")

    protos = ["trimmed-mean", "mda", "mve", "median", "krum", "mean"]
    nd = sub.add_parser(
        "node", help="run one node of the real network",
        description="Run one node of an averaging agreement over mutual-TLS TCP until its "
        "output is final and its peers are done (or --linger seconds pass).",
    )
    nd.add_argument("--config", required=True, help="cluster.toml (from `keys`)")
    nd.add_argument("--id", type=_nonneg, required=True, help="this node's id")
    nd.add_argument("--f", type=_nonneg, default=None, help="Byzantine bound (default: config)")
    nd.add_argument("--protocol", default="trimmed-mean", choices=protos)
    nd.add_argument("--rounds", type=_positive, required=True, help="rounds T")
    nd.add_argument("--input", required=True, metavar="FILE.npy", help="1-D float vector")
    nd.add_argument("--output", required=True, metavar="OUT.npy", help="the final vector")
    nd.add_argument("--history", metavar="FILE.npy",
                    help="also write the (rounds+1, d) history of this node's vectors")
    nd.add_argument("--report", metavar="FILE.json",
                    help="write metrics, faults and timings as JSON")
    nd.add_argument("--byzantine", default=None, choices=list(NETWORK_STRATEGIES),
                    metavar="STRATEGY", help="run a Byzantine strategy instead: "
                    + ", ".join(NETWORK_STRATEGIES))
    nd.add_argument("--seed", type=int, default=0, help="seed of a Byzantine strategy")
    nd.add_argument("--linger", type=nonneg_float, default=DEFAULT_LINGER, metavar="SECONDS",
                    help="after deciding, keep serving the peers that have not decided yet "
                    "(they may still need this node's echoes and fetch replies) until every "
                    "peer has announced its decision, or for at most SECONDS (default "
                    f"{DEFAULT_LINGER:g}); see netsim.net.node")
    nd.add_argument("--timeout", type=positive_float, default=600.0, metavar="SECONDS",
                    help="give up after this many seconds (default 600)")
    nd.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    nd.add_argument("--max-queue-mb", type=float, default=1024.0,
                    help="cap on unacknowledged bytes queued per peer (default 1024 MiB)")
    nd.add_argument("--insecure-loopback-plaintext", action="store_true",
                    help=_PLAINTEXT_HELP)

    la = sub.add_parser(
        "launch", help="n node processes on loopback, reported like `simulate`",
        description="Spawn n `python -m netsim node` processes on 127.0.0.1 with an "
        "ephemeral cluster CA (f of them Byzantine), wait for the honest outputs and "
        "report the same fields as `python -m netsim simulate`.",
        epilog="Byzantine strategies over a real network: " + ", ".join(NETWORK_STRATEGIES)
        + ". The value attacks (push, split, alie, outlier, nan, omniscient) need the "
        "simulator's omniscient adversary and are refused.",
    )
    la.add_argument("--n", type=_positive, default=7)
    la.add_argument("--f", type=_nonneg, default=2)
    from agreement.inputs import INPUTS  # a front end may import upward

    la.add_argument("--protocol", default="trimmed-mean", choices=protos)
    la.add_argument("--dim", type=_positive, default=1000)
    la.add_argument("--rounds", type=_positive, default=10)
    la.add_argument("--byzantine", default="none", metavar="STRATEGY",
                    help="strategy of the f Byzantine nodes (ids 0..f-1), or none")
    la.add_argument("--byzantine-ids", default=None, help="comma-separated Byzantine ids")
    la.add_argument("--inputs", default="gaussian", choices=sorted(INPUTS), metavar="GEN",
                    help="input generator (as simulate; default gaussian)")
    la.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    la.add_argument("--seed", type=int, default=0)
    la.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    la.add_argument("--linger", type=nonneg_float, default=DEFAULT_LINGER, metavar="SECONDS",
                    help="each honest node serves its peers after deciding until every peer "
                    f"has decided, or for at most SECONDS (default {DEFAULT_LINGER:g}: a node "
                    "started or running up to that much later than the others still finishes)")
    la.add_argument("--timeout", type=positive_float, default=300.0, metavar="SECONDS",
                    help="bound on the whole run (default 300)")
    la.add_argument("--workdir", default=None, help="keep keys, inputs, outputs and logs here")
    la.add_argument("--json", action="store_true", help="print one JSON object")
    la.add_argument("--insecure-loopback-plaintext", action="store_true",
                    help=_PLAINTEXT_HELP)


def run_keys(args: argparse.Namespace) -> int:
    from .net.cluster import MAX_PORT, generate

    hosts = [h.strip() for h in args.hosts.split(",")] if args.hosts else None
    if hosts is not None and (len(hosts) != args.n or not all(hosts)):
        return fail(f"--hosts needs {args.n} comma-separated hosts (one per node, --n "
                    f"{args.n}), got {args.hosts!r}")
    top = args.base_port + args.n - 1
    if top > MAX_PORT:
        return fail(f"--base-port {args.base_port} with --n {args.n} gives ports up to {top}; "
                    f"the largest TCP port is {MAX_PORT} (use --base-port <= "
                    f"{MAX_PORT - args.n + 1})")
    if args.f is not None and args.n < 3 * args.f + 1:
        return fail(f"--f {args.f} is too large for --n {args.n}: a cluster needs n >= 3f+1 "
                    f"(at most --f {(args.n - 1) // 3}, or at least --n {3 * args.f + 1})")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        return fail(f"--out {args.out} exists and is not a folder")
    try:
        cfg = generate(args.n, args.out, f=args.f, hosts=hosts,
                       ports=[args.base_port + i for i in range(args.n)])
    except (ValueError, OSError) as exc:
        return fail(f"--out {args.out}: {cli_message(exc)}")
    print(f"wrote a cluster of n={cfg.n} (f={cfg.f}) to {args.out}: ca.pem, ca.key "
          f"(keep it offline), node-<i>.pem/.key, cluster.toml")
    for e in cfg.nodes:
        print(f"  node {e.id}: {e.host}:{e.port}  sha256 {e.fingerprint[:23]}…")
    return 0


def _plaintext_warning() -> None:
    print("WARNING: --insecure-loopback-plaintext: no TLS and no authentication; any local "
          "process can impersonate any node.", file=sys.stderr)


def run_node_command(args: argparse.Namespace) -> int:
    import time

    import anyio

    from agreement import AveragingAgreement

    from .codec import VECTOR_OVERHEAD
    from .net.cluster import load_config
    from .net.node import StrategyProtocol, run_node
    from .net.transport import TransportSettings

    if args.insecure_loopback_plaintext:
        _plaintext_warning()
    try:
        cfg = load_config(args.config, plaintext=args.insecure_loopback_plaintext)
    except ValueError as exc:
        return fail(f"--config {args.config}: {exc}")
    if not 0 <= args.id < cfg.n:
        return fail(f"--id {args.id}: node id {args.id} is not in range(n) = range({cfg.n}) "
                    f"of --config {args.config}")
    try:
        cfg.check_node(args.id)
    except ValueError as exc:
        return fail(f"--config {args.config}: {exc}")
    try:
        x = np.load(args.input, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        return fail(f"--input {args.input}: cannot read a .npy array: {exc}")
    if x.ndim != 1 or x.dtype not in (np.float32, np.float64) or x.size == 0:
        return fail(f"--input {args.input}: need a non-empty 1-D float32 or float64 vector, "
                    f"got dtype {x.dtype} and shape {x.shape}")
    try:
        for flag in ("--output", "--history", "--report"):
            check_output_path(flag, getattr(args, flag[2:]))
    except CommandLineError as exc:
        return fail(exc)
    n = cfg.n
    f = cfg.f if args.f is None else args.f
    if not f < n:
        return fail(f"--f {f} must be below n = {n} of --config {args.config}")

    def factory(i: int, xi: Any) -> AveragingAgreement:
        return AveragingAgreement(i, n, f, xi, protocol=args.protocol, rounds=args.rounds)

    try:
        if args.byzantine:
            proto: Any = StrategyProtocol(args.id, n, f, args.byzantine, factory, x,
                                          seed=args.seed)
        else:
            proto = factory(args.id, x)
    except ValueError as exc:
        return fail(f"{cli_message(exc)} (--protocol {args.protocol}, n = {n} from --config, "
                    f"--f {f})")
    settings = TransportSettings(
        max_message=VECTOR_OVERHEAD + x.nbytes + 64,
        max_queue_bytes=int(args.max_queue_mb * 2**20),
        high_water=min(int(args.max_queue_mb * 2**20) // 4, 1 << 28),
    )
    decided_wall: list[float] = []

    def save(path: str, arr: np.ndarray) -> None:
        tmp = path + ".part.npy"
        np.save(tmp, arr)
        os.replace(tmp, path)

    def on_decided(rt: Any) -> None:
        decided_wall.append(time.time())
        if not args.byzantine:
            save(args.output, np.asarray(proto.decision))
            if args.history:
                save(args.history, np.stack(proto.history))

    async def main() -> Any:
        return await run_node(cfg, args.id, proto, settings=settings, linger=args.linger,
                              timeout=args.timeout, on_decided=on_decided,
                              stop_on_signals=True)

    entry = cfg.node(args.id)
    try:
        rep = anyio.run(main, backend=args.backend)
    except TimeoutError:
        return fail(f"node {args.id} did not finish within --timeout {args.timeout:g} s "
                    "(are the other nodes running, with the same --config?)", 3)
    except RuntimeError as exc:  # the runtime's ProtocolError (logged with its traceback)
        return fail(f"node {args.id}: {exc}", 3)
    except OSError as exc:  # listening (address in use, no such address) or writing output
        return fail(f"node {args.id} ({entry.host}:{entry.port} of --config {args.config}): "
                    f"{exc.strerror or exc}", 3)
    if args.report:
        out = rep.as_dict()
        out.update(byzantine=args.byzantine, decided_wall=decided_wall[0] if decided_wall
                   else None, backend=args.backend)
        if not args.byzantine:  # the origins of this node's view in each round
            out["views"] = {str(r): list(o) for r, o in proto.view_origins().items()}
        try:
            with open(args.report, "w") as fh:
                json.dump(out, fh, sort_keys=True)
        except OSError as exc:
            return fail(f"--report {args.report}: {exc.strerror or exc}", 3)
    return 0


def run_launch(args: argparse.Namespace) -> int:
    from agreement.cli import _jsonable, _print_human, _report
    from agreement.inputs import make_inputs
    from agreement.protocol import check_resilience
    from agreement.run import _finish

    from .net.launch import LaunchError, launch

    if args.insecure_loopback_plaintext:
        _plaintext_warning()
    try:
        ids = _parse_ids(args.byzantine_ids)
    except CommandLineError as exc:
        return fail(exc)
    if args.byzantine == "none":
        if ids:
            return fail(f"--byzantine-ids {args.byzantine_ids} needs a --byzantine STRATEGY "
                        "(the default none runs every node honestly)")
        byz: list[int] = []
    else:
        byz = list(range(args.f)) if ids is None else ids
        if len(byz) > args.f or any(not 0 <= b < args.n for b in byz):
            return fail(f"--byzantine-ids {args.byzantine_ids}: at most --f {args.f} ids in "
                        f"range(--n {args.n})")
    if args.byzantine != "none":
        from .net.node import make_network_strategy

        try:
            make_network_strategy(args.byzantine)
        except ValueError as exc:
            return fail(f"--byzantine {args.byzantine}: {exc}")
    if args.workdir is not None and os.path.exists(args.workdir) \
            and not os.path.isdir(args.workdir):
        return fail(f"--workdir {args.workdir} exists and is not a folder")
    try:
        check_resilience(args.protocol, args.n, args.f)
        x = make_inputs(args.inputs, args.n, args.dim, args.seed).astype(args.dtype)
        res = launch(
            x, f=args.f, protocol=args.protocol, rounds=args.rounds, byzantine_ids=byz,
            strategy=None if args.byzantine == "none" else args.byzantine, seed=args.seed,
            workdir=args.workdir, linger=args.linger, timeout=args.timeout,
            backend=args.backend, plaintext=args.insecure_loopback_plaintext,
        )
    except ValueError as exc:
        return fail(cli_message(exc))
    except OSError as exc:
        return fail(f"--workdir {args.workdir}: {exc.strerror or exc}")
    except LaunchError as exc:  # a node failed: the first line, then the logs' tails
        text = cli_message(exc)
        fail(text, 3)
        rest = text.split("\n", 1)[1:]
        if rest:
            print(rest[0], file=sys.stderr)
        return 3
    hist = np.stack([res.histories[i] for i in res.honest], axis=1)  # (rounds+1, h, d)
    reps = res.reports
    faults: dict[str, int] = {}
    against_honest = 0
    for i in res.honest:
        for kind, c in reps[i]["fault_counts"].items():
            faults[kind] = faults.get(kind, 0) + c
        against_honest += sum(1 for s, _, _ in reps[i]["faults"] if s not in set(byz))
    common = dict(n=args.n, f=args.f, d=args.dim, protocol=args.protocol, engine="network",
                  rounds=args.rounds, seed=args.seed, byzantine=args.byzantine,
                  byzantine_ids=byz,
                  scheduler="loopback-tcp" + ("" if args.insecure_loopback_plaintext
                                              else "-tls"),
                  honest=res.honest)
    result = _finish(
        hist, common, messages=sum(r["metrics"]["messages"] for r in reps.values()),
        bytes=sum(r["metrics"]["bytes"] for r in reps.values()), wall_time=res.wall_time,
        faults=dict(sorted(faults.items())), faults_against_honest=against_honest,
        complete=True,
        views=[{i: tuple(reps[i].get("views", {}).get(str(r), ())) for i in res.honest}
               for r in range(args.rounds)],
    )
    args.engine = "network"
    rep = _report(result, args)
    rep["backend"] = args.backend
    rep["wire_bytes"] = sum(r["transport"]["wire_bytes_sent"] for r in reps.values())
    rep["cpu_time_per_node"] = {str(i): round(r["cpu_time"], 4) for i, r in reps.items()}
    rep["resent_frames"] = sum(r["transport"]["resent_frames"] for r in reps.values())
    rep["round_times"] = {str(i): [round(t, 4) for t in reps[i]["round_times"]]
                          for i in res.honest}
    if args.json:
        print(json.dumps(rep, sort_keys=True, default=_jsonable))
    else:
        _print_human(rep)
    return 0


def _byzantine_ids(args: argparse.Namespace) -> list[int]:
    if args.byzantine == "none":
        return []
    ids = _parse_ids(args.byzantine_ids)
    if ids is None:
        return list(range(args.f))
    if len(ids) > args.f or any(not 0 <= i < args.n for i in ids):
        raise CommandLineError(f"--byzantine-ids {args.byzantine_ids}: at most --f {args.f} "
                               f"ids in range(--n {args.n})")
    return ids


def _fault_counts(res: SimResult) -> dict[str, int]:
    return {k: res.metrics.faults_by_kind[k] for k in sorted(res.metrics.faults_by_kind)}


def run_broadcast(args: argparse.Namespace) -> dict[str, Any]:
    """Run the ``broadcast`` command; return its JSON-able report."""
    from broadcast import Delivered, ReliableBroadcast, View, WitnessGather

    n, f = args.n, args.f
    if not 0 <= args.origin < n:
        raise CommandLineError(f"--origin {args.origin} must be in range(--n {n})")
    if not f < n:
        raise CommandLineError(f"--f {f} must be below --n {n}")
    check_output_path("--trace", args.trace)
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
            return fail(cli_message(exc))
        if args.json:
            print(json.dumps(rep, sort_keys=True))
        else:
            _print_human(rep)
        return 0
    if args.command == "simulate":
        from agreement.cli import run_simulate

        return run_simulate(args)
    if args.command == "keys":
        return run_keys(args)
    if args.command == "node":
        return run_node_command(args)
    if args.command == "launch":
        return run_launch(args)
    raise AssertionError(args.command)  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
