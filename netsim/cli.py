"""Command line of netsim: ``python -m netsim keys`` (also ``jungle keys``), and the network
plumbing that the node commands of the layers above share.

Command:
  keys        a cluster CA, one certificate and key per node, and cluster.toml.

``python -m netsim`` imports only netsim: a command that runs a protocol lives with the
protocol (``python -m broadcast run``; ``python -m agreement simulate|node|launch``), and
the ``jungle`` console script dispatches to each. The old paths ``python -m netsim
simulate|node|launch|broadcast`` are a one-line error naming the new command (exit 2).

The public helpers below are the generic half of a node command (any protocol): the flags
(:func:`add_node_arguments`, :func:`add_launch_arguments`), the checks of a cluster and an
input vector (:func:`load_node`), running one node with the exit codes of the README
(:func:`serve_node`), the launch checks (:func:`launch_byzantine_ids`) and the network
totals of a launch (:func:`network_fields`). ``agreement.cli`` builds its ``node`` and
``launch`` on them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .cli_args import (
    ArgumentParser,
    CommandLineError,
    byzantine_ids,
    check_output_path,
    fail,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    translate,
)
from .net.cluster import DEFAULT_BASE_PORT

MOVED: dict[str, str] = {
    "simulate": "python -m agreement simulate",
    "node": "python -m agreement node",
    "launch": "python -m agreement launch",
    "broadcast": "python -m broadcast run",
}
"""The commands that left ``python -m netsim``, and where each lives now."""

_FLAGS = (
    ("unsafe=True", "--unsafe"),
    ("byzantine_ids", "--byzantine-ids"),
    ("engine='message'", "--engine message"),
)

PLAINTEXT_HELP = (
    "INSECURE: no TLS, no authentication; any local process can claim any node id. "
    "Loopback addresses only, for experiments that measure the cost of TLS"
)


def cli_message(text: object) -> str:
    """An API error message in the network commands' terms (their flags, not Python
    keywords)."""
    return translate(text, _FLAGS)


def plaintext_warning() -> None:
    """The warning every command prints on stderr under ``--insecure-loopback-plaintext``."""
    print("WARNING: --insecure-loopback-plaintext: no TLS and no authentication; any local "
          "process can impersonate any node.", file=sys.stderr)


# keys ------------------------------------------------------------------------------------

def add_keys_parser(sub: Any) -> None:
    k = sub.add_parser(
        "keys", help="write a cluster CA, node certificates and cluster.toml",
        description="Make a certificate authority for a new cluster, one certificate and key "
        "per node (the node id is bound in the certificate), and the cluster configuration "
        "(ids, addresses, certificate fingerprints) that every node reads.",
    )
    k.add_argument("--n", type=positive_int, required=True, help="number of nodes")
    k.add_argument("--f", type=nonneg_int, default=None,
                   help="Byzantine bound written to the config (default (n-1)//3)")
    k.add_argument("--out", required=True, metavar="DIR", help="output folder")
    k.add_argument("--hosts", default=None,
                   help="comma-separated host of each node (default 127.0.0.1 for all)")
    k.add_argument("--base-port", type=positive_int, default=DEFAULT_BASE_PORT,
                   help=f"node i listens on BASE_PORT + i (default {DEFAULT_BASE_PORT}, below "
                   "Linux's ephemeral range 32768-60999 from which outgoing connections take "
                   "their ports; BASE_PORT + n - 1 must be at most 65535)")


def _check_keys(args: argparse.Namespace) -> list[str] | None:
    """The hosts of ``keys`` (``None``: the default), after the checks naming the flags."""
    from .net.cluster import MAX_PORT

    hosts = [h.strip() for h in args.hosts.split(",")] if args.hosts else None
    if hosts is not None and (len(hosts) != args.n or not all(hosts)):
        raise CommandLineError(f"--hosts needs {args.n} comma-separated hosts (one per node, "
                               f"--n {args.n}), got {args.hosts!r}")
    top = args.base_port + args.n - 1
    if top > MAX_PORT:
        raise CommandLineError(
            f"--base-port {args.base_port} with --n {args.n} gives ports up to {top}; the "
            f"largest TCP port is {MAX_PORT} (use --base-port <= {MAX_PORT - args.n + 1})")
    if args.f is not None and args.n < 3 * args.f + 1:
        raise CommandLineError(
            f"--f {args.f} is too large for --n {args.n}: a cluster needs n >= 3f+1 "
            f"(at most --f {(args.n - 1) // 3}, or at least --n {3 * args.f + 1})")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CommandLineError(f"--out {args.out} exists and is not a folder")
    return hosts


def run_keys(args: argparse.Namespace) -> int:
    from .net.cluster import generate

    try:
        hosts = _check_keys(args)
    except CommandLineError as exc:
        return fail(exc)
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


# one node of the real network (generic over the protocol) ----------------------------------

def add_node_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of a node process that do not depend on its protocol: cluster, id, input
    and output files, a Byzantine strategy, lingering, timeout, backend, queue cap."""
    from .net.node import DEFAULT_LINGER, NETWORK_STRATEGIES
    from .net.runtime import BACKENDS

    p.add_argument("--config", required=True, help="cluster.toml (from `python -m netsim keys`)")
    p.add_argument("--id", type=nonneg_int, required=True, help="this node's id")
    p.add_argument("--f", type=nonneg_int, default=None, help="Byzantine bound (default: config)")
    p.add_argument("--input", required=True, metavar="FILE.npy", help="1-D float vector")
    p.add_argument("--output", required=True, metavar="OUT.npy", help="the final vector")
    p.add_argument("--history", metavar="FILE.npy",
                   help="also write the (rounds+1, d) history of this node's vectors")
    p.add_argument("--report", metavar="FILE.json", help="write metrics, faults and timings")
    p.add_argument("--strategy", "--byzantine", dest="strategy", default=None,
                   choices=list(NETWORK_STRATEGIES),
                   metavar="STRATEGY", help="run a Byzantine strategy instead: "
                   + ", ".join(NETWORK_STRATEGIES) + " (--byzantine: its old name, an alias)")
    p.add_argument("--seed", type=int, default=0, help="seed of a Byzantine strategy")
    p.add_argument("--linger", type=nonneg_float, default=DEFAULT_LINGER, metavar="SECONDS",
                   help="after deciding, keep serving the peers that have not decided yet "
                   "(they may still need this node's echoes and fetch replies) until every "
                   "peer has announced its decision, or for at most SECONDS (default "
                   f"{DEFAULT_LINGER:g}); see netsim.net.node")
    p.add_argument("--timeout", type=positive_float, default=600.0, metavar="SECONDS",
                   help="give up after this many seconds (default 600)")
    p.add_argument("--backend", default="asyncio", choices=list(BACKENDS),
                   help="event loop: asyncio (on uvloop's loop when uvloop is installed), "
                   "asyncio-stdlib (asyncio's own loop) or trio (default asyncio)")
    p.add_argument("--max-queue-mb", type=float, default=1024.0,
                   help="cap on unacknowledged bytes queued per peer (default 1024 MiB)")
    p.add_argument("--insecure-loopback-plaintext", action="store_true", help=PLAINTEXT_HELP)


def load_node(args: argparse.Namespace) -> tuple[Any, np.ndarray, int]:
    """``(cluster config, input vector, f)`` of a node command, after every check that
    needs no network (config, ``--id``, ``--input``, output folders, ``--f`` < n);
    :class:`CommandLineError` naming the flag otherwise."""
    from .net.cluster import load_config

    if args.insecure_loopback_plaintext:
        plaintext_warning()
    try:
        cfg = load_config(args.config, plaintext=args.insecure_loopback_plaintext)
    except ValueError as exc:
        raise CommandLineError(f"--config {args.config}: {exc}") from None
    if not 0 <= args.id < cfg.n:
        raise CommandLineError(f"--id {args.id}: node id {args.id} is not in range(n) = "
                               f"range({cfg.n}) of --config {args.config}")
    try:
        cfg.check_node(args.id)
    except ValueError as exc:
        raise CommandLineError(f"--config {args.config}: {exc}") from None
    try:
        x = np.load(args.input, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CommandLineError(f"--input {args.input}: cannot read a .npy array: {exc}") from None
    if x.ndim != 1 or x.dtype not in (np.float32, np.float64) or x.size == 0:
        raise CommandLineError(f"--input {args.input}: need a non-empty 1-D float32 or "
                               f"float64 vector, got dtype {x.dtype} and shape {x.shape}")
    for flag in ("--output", "--history", "--report"):
        check_output_path(flag, getattr(args, flag[2:]))
    f = cfg.f if args.f is None else args.f
    if not f < cfg.n:
        raise CommandLineError(f"--f {f} must be below n = {cfg.n} of --config {args.config}")
    return cfg, x, f


def save_array(path: str, arr: np.ndarray) -> None:
    """Write ``arr`` to ``path`` (.npy) atomically: a reader sees all of it or nothing."""
    tmp = path + ".part.npy"
    np.save(tmp, arr)
    os.replace(tmp, path)


def serve_node(args: argparse.Namespace, cfg: Any, proto: Any, max_message: int,
               on_decided: Callable[[Any], None]) -> Any:
    """Run ``proto`` as node ``args.id`` of ``cfg`` until it is done (the flags of
    :func:`add_node_arguments`); return the runtime's report. A failure of the run is a
    :class:`CommandLineError` with exit code 3 naming what to check."""
    from .net.node import run_node
    from .net.runtime import run_event_loop
    from .net.transport import TransportSettings

    cap = int(args.max_queue_mb * 2**20)
    settings = TransportSettings(max_message=max_message, max_queue_bytes=cap,
                                 high_water=min(cap // 4, 1 << 28))

    async def main() -> Any:
        return await run_node(cfg, args.id, proto, settings=settings, linger=args.linger,
                              timeout=args.timeout, on_decided=on_decided,
                              stop_on_signals=True)

    entry = cfg.node(args.id)
    try:
        return run_event_loop(main, args.backend)
    except TimeoutError:
        raise CommandLineError(f"node {args.id} did not finish within --timeout "
                               f"{args.timeout:g} s (are the other nodes running, with the "
                               "same --config?)", 3) from None
    except RuntimeError as exc:  # the runtime's ProtocolError (logged with its traceback)
        raise CommandLineError(f"node {args.id}: {exc}", 3) from None
    except OSError as exc:  # listening (address in use, no such address) or writing output
        raise CommandLineError(f"node {args.id} ({entry.host}:{entry.port} of --config "
                               f"{args.config}): {exc.strerror or exc}", 3) from None


def run_vector_node(args: argparse.Namespace,
                    build: Callable[[Any, np.ndarray, int], Any],
                    rows: Callable[[Any], tuple[np.ndarray, Sequence[np.ndarray]]],
                    report_fields: Callable[[Any], dict[str, Any]], *,
                    finish: Callable[[dict[str, Any]], None] | None = None) -> int:
    """The ``node`` command of a vector protocol (agreement's, ByzSGD's): load the node
    (:func:`load_node`), ``build(cfg, x, f)`` its protocol, serve it (:func:`serve_node`);
    when it decides, an honest node writes ``--output`` (the first of ``rows(proto)``) and
    ``--history`` (the stacked second); at the end ``--report`` gets the runtime's report
    with the strategy, the backend, the decision's wall time and, for an honest node,
    ``report_fields(proto)`` (then ``finish(report)``, for every node, may add keys). The exit
    status: 0, or the :class:`CommandLineError`'s."""
    import time

    from .codec import VECTOR_OVERHEAD

    try:
        cfg, x, f = load_node(args)
        proto = build(cfg, x, f)
        decided_wall: list[float] = []

        def on_decided(rt: Any) -> None:
            decided_wall.append(time.time())
            if not args.strategy:
                final, history = rows(proto)
                save_array(args.output, np.asarray(final))
                if args.history:
                    save_array(args.history, np.stack(history))

        rep = serve_node(args, cfg, proto, VECTOR_OVERHEAD + x.nbytes + 64, on_decided)
        if args.report:
            out = rep.as_dict()
            out.update(strategy=args.strategy, backend=args.backend,
                       decided_wall=decided_wall[0] if decided_wall else None)
            if not args.strategy:
                out.update(report_fields(proto))
            if finish is not None:
                finish(out)
            write_report(args.report, out)
    except CommandLineError as exc:
        return fail(exc)
    return 0


def write_report(path: str, report: dict[str, Any]) -> None:
    """``report`` as JSON to ``path`` (``--report``); exit code 3 if it cannot be written."""
    try:
        with open(path, "w") as fh:
            json.dump(report, fh, sort_keys=True)
    except OSError as exc:
        raise CommandLineError(f"--report {path}: {exc.strerror or exc}", 3) from None


# n node processes on loopback (generic over the protocol) ----------------------------------

def add_launch_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of a launch that do not depend on the protocol."""
    from .net.node import DEFAULT_LINGER
    from .net.runtime import BACKENDS

    p.add_argument("--n", type=positive_int, default=7)
    p.add_argument("--f", type=nonneg_int, default=2)
    p.add_argument("--strategy", "--byzantine", dest="strategy", default="none",
                   metavar="STRATEGY", help="strategy of the f Byzantine nodes (ids 0..f-1), "
                   "or none (--byzantine: its old name, an alias)")
    p.add_argument("--byzantine-ids", default=None, help="comma-separated Byzantine ids")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="asyncio", choices=list(BACKENDS),
                   help="the nodes' event loop: asyncio (on uvloop's loop when uvloop is "
                   "installed), asyncio-stdlib or trio (default asyncio)")
    p.add_argument("--linger", type=nonneg_float, default=DEFAULT_LINGER, metavar="SECONDS",
                   help="each honest node serves its peers after deciding until every peer "
                   f"has decided, or for at most SECONDS (default {DEFAULT_LINGER:g}: a node "
                   "started or running up to that much later than the others still finishes)")
    p.add_argument("--timeout", type=positive_float, default=300.0, metavar="SECONDS",
                   help="bound on the whole run (default 300)")
    p.add_argument("--workdir", default=None, help="keep keys, inputs, outputs and logs here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--insecure-loopback-plaintext", action="store_true", help=PLAINTEXT_HELP)


def launch_byzantine_ids(args: argparse.Namespace) -> list[int]:
    """The Byzantine ids of a launch after the checks of its flags (``--byzantine-ids``
    needs a strategy; the strategy runs over a network; ``--workdir`` is a folder)."""
    from .net.node import make_network_strategy

    if args.insecure_loopback_plaintext:
        plaintext_warning()
    if args.strategy == "none":
        if args.byzantine_ids is not None:
            byzantine_ids(args.byzantine_ids, args.n, args.f)  # a malformed list first
            raise CommandLineError(f"--byzantine-ids {args.byzantine_ids} needs a --strategy "
                                   "STRATEGY (the default none runs every node honestly)")
        byz: list[int] = []
    else:
        byz = byzantine_ids(args.byzantine_ids, args.n, args.f)
        try:
            make_network_strategy(args.strategy)
        except ValueError as exc:
            raise CommandLineError(f"--strategy {args.strategy}: {exc}") from None
    if args.workdir is not None and os.path.exists(args.workdir) \
            and not os.path.isdir(args.workdir):
        raise CommandLineError(f"--workdir {args.workdir} exists and is not a folder")
    return byz


def launch_failed(exc: BaseException) -> int:
    """Report a failed launch (a node failed): its first line as the error, then the next
    line of the logs' tails; exit code 3."""
    text = cli_message(exc)
    fail(text, 3)
    rest = text.split("\n", 1)[1:]
    if rest:
        print(rest[0], file=sys.stderr)
    return 3


def network_fields(res: Any, byz: Sequence[int]) -> dict[str, Any]:
    """The network totals of a launch (:class:`netsim.net.launch.LaunchResult`) over the
    node reports: messages, bytes, faults (by kind, and those whose sender is honest), wire
    bytes, resent frames, CPU time per node and each honest node's round times."""
    reps = res.reports
    faults: dict[str, int] = {}
    against_honest = 0
    for i in res.honest:
        for kind, c in reps[i]["fault_counts"].items():
            faults[kind] = faults.get(kind, 0) + c
        against_honest += sum(1 for s, _, _ in reps[i]["faults"] if s not in set(byz))
    return dict(
        messages=sum(r["metrics"]["messages"] for r in reps.values()),
        bytes=sum(r["metrics"]["bytes"] for r in reps.values()),
        faults=dict(sorted(faults.items())), faults_against_honest=against_honest,
        wire_bytes=sum(r["transport"]["wire_bytes_sent"] for r in reps.values()),
        resent_frames=sum(r["transport"]["resent_frames"] for r in reps.values()),
        cpu_time_per_node={str(i): round(r["cpu_time"], 4) for i, r in reps.items()},
        round_times={str(i): [round(t, 4) for t in reps[i]["round_times"]]
                     for i in res.honest},
    )


# the command line ------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    moved = "\n".join(f"  {cmd:<10} now `{where}`" for cmd, where in sorted(MOVED.items()))
    parser = ArgumentParser(
        prog="python -m netsim",
        description="Jungle's network layer: the cluster keys of the real network.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="moved commands:\n" + moved,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_keys_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in MOVED:
        return fail(f"`python -m netsim {argv[0]}` has moved: run `{MOVED[argv[0]]}` "
                    f"(or `jungle {argv[0]}`)")
    args = build_parser().parse_args(argv)
    if args.command == "keys":
        return run_keys(args)
    raise AssertionError(args.command)  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
