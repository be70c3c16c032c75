"""Command line of agreement: ``python -m agreement COMMAND`` (also ``jungle COMMAND``).

Commands:
  simulate    one averaging-agreement run under attack (message or round level), with the
              bounds of docs/theory.md and proofs/ beside the measures;
  node        one node of an averaging agreement over the real network (mutual TLS);
  launch      n node processes on loopback (f Byzantine), reported like ``simulate``;
  campaign    a study: a grid of seeded simulations from a spec file, on a local process
              pool or a Dask cluster (:mod:`agreement.campaigns`), with records, a summary
              per cell and the replay command of every failure.

It imports agreement and the layers below (broadcast, netsim) only; the generic half of
``node`` and ``launch`` (cluster checks, running a node, the launch's checks and network
totals) is netsim's (:mod:`netsim.cli`). The libraries never import this module.

``--plugin MODULE`` (:mod:`netsim.plugins`) imports a module that registers value attacks,
strategies or schedulers before the flags are parsed: ``simulate``'s choices and listings
are the registries' at that moment.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from netsim.adversary import STRATEGIES
from netsim.cli_args import (
    ArgumentParser,
    CommandLineError,
    add_plugin_argument,
    check_output_path,
    fail,
    nonneg_int,
    plugin_argv,
    positive_float,
    positive_int,
    summary,
    translate,
)
from netsim.sim.schedulers import SCHEDULER_HELP, SCHEDULERS

from .attacks import VALUE_ATTACKS, value_attack_names
from .claims import BY_NAME, evaluate, role_status
from .inputs import INPUTS, make_inputs
from .protocol import CONFIGS, check_resilience
from .run import (
    DEFAULT_SCHEDULER,
    DEFAULT_STRATEGY,
    DEFAULT_VIEWS,
    AgreementResult,
    _finish,
    run,
)

VALUE_ATTACK_HELP = {
    "push": "every Byzantine value just above the honest maximum (drags one way)",
    "split": "low values to the lower half of the honest nodes, high to the upper half",
    "alie": "mean + z·std of the honest values (z from n and f, Baruch et al. 2019)",
    "outlier": "far outliers in random directions",
    "nan": "non-finite values (must be faults, never used)",
    "omniscient": "split values, and (round engine) the views that most push nodes apart",
}



def _protocol_name(text: str) -> str:
    """A protocol of CONFIGS or a composition (agreement.protocol.get_config), else the
    parser's error listing the names."""
    from .protocol import get_config

    try:
        get_config(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text

def add_simulate_parser(sub: Any) -> argparse.ArgumentParser:
    protos = ", ".join(f"{c.name} ({c.resilience_text})" for c in CONFIGS.values())
    strategies = sorted(set(STRATEGIES) - {"honest"})
    attacks = {**VALUE_ATTACK_HELP, **{k: summary(v, VALUE_ATTACK_HELP, k)
                                       for k, v in VALUE_ATTACKS.items()}}
    epilog = (
        f"protocols: {protos}\n\n"
        "value attacks (both engines):\n"
        + "\n".join(f"  {k:<11} {v}" for k, v in attacks.items())
        + f"\n\nprotocol-level strategies (message engine): {', '.join(strategies)}"
        + "\n\nschedulers (message engine):\n"
        + "\n".join(f"  {k:<11} {SCHEDULER_HELP[k]}" for k in sorted(SCHEDULERS))
        + f"\n\ninput generators: {', '.join(sorted(INPUTS))}"
    )
    p = sub.add_parser(
        "simulate",
        help="one averaging-agreement run under attack",
        description=(
            "Run iterated averaging agreement among n nodes (f Byzantine: ids 0..f-1) and "
            "report the honest diameter after every round and the averaging error, beside "
            "the protocol's bounds."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog,
    )
    p.add_argument("--protocol", default="trimmed-mean", type=_protocol_name,
                   metavar="PROTOCOL", help="see the list below, or a composition such as "
                   "arc+nnm+trimmed-mean (default trimmed-mean)")
    p.add_argument("--n", type=positive_int, default=10, help="number of nodes (default 10)")
    p.add_argument("--f", type=nonneg_int, default=3, help="Byzantine bound f (default 3)")
    p.add_argument("--dim", type=positive_int, default=50,
                   help="vector dimension d (default 50)")
    p.add_argument("--rounds", type=positive_int, default=None,
                   help="rounds T (default: from --delta, else 10)")
    p.add_argument("--delta", type=positive_float, default=None,
                   help="target honest diameter; T from the protocol's proven contraction")
    p.add_argument("--strategy", "--byzantine", dest="strategy", default=DEFAULT_STRATEGY,
                   choices=sorted({"none", *value_attack_names(), *strategies}),
                   metavar="STRATEGY", help="value attack or protocol-level strategy "
                   f"(default {DEFAULT_STRATEGY}); 'none' for an all-honest run; --byzantine is "
                   "its old name, kept as an alias")
    p.add_argument("--scheduler", default=DEFAULT_SCHEDULER,
                   choices=sorted(SCHEDULERS), metavar="SCHEDULER",
                   help=f"delivery schedule (default {DEFAULT_SCHEDULER}: each side of the "
                   "honest nodes gets its own Byzantine values fast and the other side's late)")
    p.add_argument("--inputs", default="gaussian", choices=sorted(INPUTS), metavar="GEN",
                   help="input generator (default gaussian)")
    p.add_argument("--seed", type=int, default=0, help="the one seed of the run (default 0)")
    p.add_argument("--engine", default="message", choices=["message", "round"],
                   help="message level (the truth) or round level (fast)")
    p.add_argument("--views", default=None, choices=["random", "omniscient"],
                   help=f"round engine: how the adversary picks views (default {DEFAULT_VIEWS})")
    p.add_argument("--gather", default=None, choices=["witness", "first-quorum"],
                   help="override the protocol's gather")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="FILE.png", help="plot the diameters per round")
    p.add_argument("--trace", metavar="FILE", help="message engine: JSON-lines trace")
    p.add_argument("--no-codec", action="store_true", help="skip the codec round-trip")
    p.add_argument("--unsafe", action="store_true", help="allow n below the resilience bound")
    add_plugin_argument(p)
    return p


def _report(res: AgreementResult, args: argparse.Namespace) -> dict[str, Any]:
    rep = res.as_dict()
    rep["inputs"] = args.inputs
    rep["diameters"] = [float(x) for x in res.diameters]
    ranges = res.coordinate_ranges()
    # per-coordinate contraction measured in every round (max over coordinates with range)
    ratios = []
    for r in range(res.rounds):
        prev, nxt = ranges[r], ranges[r + 1]
        ok = prev > 1e-12 * max(1.0, float(np.abs(res.history[0]).max()))
        ratios.append(float((nxt[ok] / prev[ok]).max()) if ok.any() else 0.0)
    rep["coordinate_contraction"] = ratios
    # ratios of diameters at rounding level (1e-12 of the start) are noise, reported as 0
    floor = 1e-12 * max(res.diameters[0], float(np.abs(res.history[0]).max()))
    rep["l2_contraction"] = [
        (res.diameters[r + 1] / res.diameters[r]) if res.diameters[r] > floor else 0.0
        for r in range(res.rounds)
    ]
    # the verdicts of the claims table (agreement.claims, the same evaluation as
    # proofs.check); the "within bound" fields derive from it (None: no claim)
    verdicts = evaluate(res)
    def num(x: float) -> float | str | None:  # strict JSON: NaN (no claim) as null
        return None if math.isnan(x) else (x if math.isfinite(x) else str(x))

    rep["verdicts"] = {k: {"status": v.status, "measured": num(v.measured),
                           "bound": num(v.bound), "where": v.where}
                       for k, v in verdicts.items()}
    rep["contraction_within_bound"] = role_status(verdicts, "contraction")
    rep["averaging_within_bound"] = role_status(verdicts, "averaging")
    return rep


def _plot(res: AgreementResult, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("error: --plot needs matplotlib (pip install matplotlib)") from None
    fig, ax = plt.subplots(figsize=(6, 4))
    rounds = np.arange(res.rounds + 1)
    diam = np.array(res.diameters)
    # a diameter below the rounding level of the inputs is exact agreement: drawn on a floor
    floor = 1e-16 * max(float(diam[0]), float(np.abs(res.history[0]).max()), 1e-300)
    exact = diam <= floor
    ax.semilogy(rounds, np.maximum(diam, floor), "o-", label="honest diameter Δ2 (measured)")
    if exact.any():
        ax.semilogy(rounds[exact], np.full(int(exact.sum()), floor), "s", color="tab:green",
                    label="exact agreement (Δ2 at rounding level)")
    lam, measure = None, ""
    for name, v in evaluate(res).items():  # the contraction claim of the table, if any
        claim = BY_NAME.get(name)
        if claim is not None and claim.role == "contraction":
            lam, measure = v.bound, claim.measure
    if lam is not None:
        if measure == "coord-contraction":  # the claim is per coordinate: ||range||·λ^r
            start = float(np.linalg.norm(res.coordinate_ranges()[0]))
            what = "||range_c(x)||·λ^r"
        else:
            start, what = float(diam[0]), "Δ2(x)·λ^r"
        ax.semilogy(rounds, np.maximum(start * lam ** rounds, floor), "--",
                    label=f"bound {what}, λ = {lam:.3g}")
    ax.set_xlabel("round")
    ax.set_ylabel("honest ℓ2 diameter")
    ax.set_title(f"{res.protocol}: n={res.n}, f={res.f}, d={res.d}, "
                 f"{res.strategy}, {res.engine} level")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _print_human(rep: dict[str, Any]) -> None:
    print(
        f"{rep['protocol']}: n={rep['n']} f={rep['f']} d={rep['d']} rounds={rep['rounds']} "
        f"strategy={rep['strategy']} ids={rep['byzantine_ids']} engine={rep['engine']} "
        f"scheduler={rep['scheduler']} inputs={rep['inputs']} seed={rep['seed']}"
    )
    b = rep["bounds"]
    print(f"{'round':>5}  {'diameter':>12}  {'Δ2 ratio':>9}  {'coord. ratio':>12}")
    for r, dm in enumerate(rep["diameters"]):
        if r == 0:
            print(f"{r:>5}  {dm:>12.4e}")
        else:
            print(f"{r:>5}  {dm:>12.4e}  {rep['l2_contraction'][r - 1]:>9.4f}  "
                  f"{rep['coordinate_contraction'][r - 1]:>12.4f}")
    lam = b["contraction"]
    print(f"contraction bound: {lam if lam is not None else 'none claimed'}"
          f"   within: {rep['contraction_within_bound']}")
    c = b["averaging_constant"]
    print(f"averaging error: {rep['averaging_error']:.4e}   ratio to Δ2(x): "
          f"{rep['averaging_ratio']:.4f}   bound C: {c if c is not None else 'none claimed'}"
          f"   within: {rep['averaging_within_bound']}")
    for name, v in rep.get("verdicts", {}).items():  # every claim of the table
        if v["status"] == "no-claim":
            print(f"claim {name}: {v['where']}")
        else:
            print(f"claim {name}: measured {v['measured']:.4g} vs bound {v['bound']:.4g}: "
                  f"{v['status']}{' (' + v['where'] + ')' if v['where'] else ''}")
    if rep["engine"] == "message":
        faults = ", ".join(f"{k} {v}" for k, v in rep["faults"].items()) or "none"
        print(f"messages: {rep['messages']}   bytes: {rep['bytes']}   "
              f"virtual time: {rep['virtual_time']:.3f}   faults: {faults}")
    print(f"wall time: {rep['wall_time']:.3f} s")


_FLAGS = (
    ("unsafe=True", "--unsafe"),
    ("engine='message'", "--engine message"),
    ("give a fixed number of rounds", "give --rounds instead of --delta"),
    ("byzantine_ids", "Byzantine ids"),
)


def cli_message(text: object) -> str:
    """An API error message in ``simulate``'s terms (``--unsafe``, ``--engine message``,
    ``--rounds``), not Python keywords: the one translation of this command line."""
    return translate(text, _FLAGS)


def _check_args(args: argparse.Namespace) -> None:
    """What argparse cannot check alone, as :class:`CommandLineError` naming the flags."""
    if args.f >= args.n:
        raise CommandLineError(f"--f {args.f} must be below --n {args.n}")
    if args.engine == "round" and args.trace:
        raise CommandLineError("--trace needs --engine message (the round engine sends no "
                               "messages)")
    check_output_path("--plot", args.plot)
    check_output_path("--trace", args.trace)


def run_simulate(args: argparse.Namespace) -> int:
    if args.rounds is None and args.delta is None:
        args.rounds = 10
    try:
        _check_args(args)
    except CommandLineError as exc:
        return fail(exc)
    x = make_inputs(args.inputs, args.n, args.dim, args.seed)
    progress = None
    if not args.json and sys.stderr.isatty():
        progress = True
    try:
        res = run(
            x, f=args.f, protocol=args.protocol, rounds=args.rounds, delta=args.delta,
            strategy=args.strategy, scheduler=args.scheduler, seed=args.seed,
            engine=args.engine, views=args.views, gather=args.gather,
            codec=not args.no_codec, trace=args.trace, unsafe=args.unsafe,
            progress=progress,
        )
    except (ValueError, NotImplementedError) as exc:
        return fail(cli_message(exc))
    except OSError as exc:  # the --trace file could not be written after all
        return fail(f"--trace {args.trace}: {exc.strerror or exc}")
    rep = _report(res, args)
    if args.plot:
        try:
            _plot(res, args.plot)
        except OSError as exc:
            return fail(f"--plot {args.plot}: {exc.strerror or exc}")
        rep["plot"] = args.plot
    if args.json:
        print(json.dumps(rep, sort_keys=True, default=_jsonable))
    else:
        _print_human(rep)
        if not res.views_differed:
            print("warning: the honest views never differed (views_differed: false): the run "
                  "tests no contraction; attack with --strategy split and --scheduler "
                  "targeted (message engine) or --views omniscient (round engine)")
    return 0


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    raise TypeError(type(o).__name__)


# node and launch: an averaging agreement over the real network ------------------------------

NETWORK_PROTOCOLS = ["trimmed-mean", "mda", "mve", "median", "krum", "mean"]
"""The protocols ``node`` and ``launch`` run (the registry names of :data:`CONFIGS`)."""


def add_node_parser(sub: Any) -> argparse.ArgumentParser:
    from netsim.cli import add_node_arguments

    p = sub.add_parser(
        "node", help="one node of the real network (mutual TLS over TCP)",
        description="Run one node of an averaging agreement over mutual-TLS TCP until its "
        "output is final and its peers are done (or --linger seconds pass).",
    )
    p.add_argument("--protocol", default="trimmed-mean", choices=NETWORK_PROTOCOLS)
    p.add_argument("--rounds", type=positive_int, required=True, help="rounds T")
    add_node_arguments(p)
    return p


def _node_protocol(args: argparse.Namespace, n: int, f: int, x: np.ndarray) -> Any:
    """This node's protocol: :class:`AveragingAgreement`, or a network strategy around it
    (``--strategy``)."""
    from netsim.net.node import StrategyProtocol

    from .protocol import AveragingAgreement
    from .rules import kernels

    def factory(i: int, xi: Any) -> AveragingAgreement:
        return AveragingAgreement(i, n, f, xi, protocol=args.protocol, rounds=args.rounds)

    if n * x.size >= kernels.MIN_ELEMENTS and any(
            name in args.protocol for name in ("trimmed-mean", "median")):
        kernels.preload()  # the column kernel's load (about 1 s) before the first round
    try:
        if args.strategy:
            return StrategyProtocol(args.id, n, f, args.strategy, factory, x, seed=args.seed)
        return factory(args.id, x)
    except ValueError as exc:
        raise CommandLineError(f"{cli_message(exc)} (--protocol {args.protocol}, n = {n} from "
                               f"--config, --f {f})") from None


def run_node(args: argparse.Namespace) -> int:
    """``node``: one node; writes ``--output`` (and ``--history``) when it decides, and the
    runtime's report with this node's view origins per round to ``--report``."""
    from netsim.cli import run_vector_node

    def fields(proto: Any) -> dict[str, Any]:  # the origins of this node's view per round
        return {"views": {str(r): list(o) for r, o in proto.view_origins().items()}}

    def byzantine_key(out: dict[str, Any]) -> None:
        out["byzantine"] = args.strategy  # the deprecated key of "strategy" (one release)

    return run_vector_node(args, lambda cfg, x, f: _node_protocol(args, cfg.n, f, x),
                           lambda proto: (proto.decision, proto.history), fields,
                           finish=byzantine_key)


def add_launch_parser(sub: Any) -> argparse.ArgumentParser:
    from netsim.cli import add_launch_arguments
    from netsim.net.node import NETWORK_STRATEGIES

    p = sub.add_parser(
        "launch", help="n node processes on loopback, reported like `simulate`",
        description="Spawn n `python -m agreement node` processes on 127.0.0.1 with an "
        "ephemeral cluster CA (f of them Byzantine), wait for the honest outputs and "
        "report the same fields as `python -m agreement simulate`.",
        epilog="Byzantine strategies over a real network: " + ", ".join(NETWORK_STRATEGIES)
        + ". The value attacks (push, split, alie, outlier, nan, omniscient) need the "
        "simulator's omniscient adversary and are refused.",
    )
    add_launch_arguments(p)
    p.add_argument("--protocol", default="trimmed-mean", choices=NETWORK_PROTOCOLS)
    p.add_argument("--dim", type=positive_int, default=1000)
    p.add_argument("--rounds", type=positive_int, default=10)
    p.add_argument("--inputs", default="gaussian", choices=sorted(INPUTS), metavar="GEN",
                   help="input generator (as simulate; default gaussian)")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    return p


def _launch_report(args: argparse.Namespace, res: Any, byz: list[int]) -> dict[str, Any]:
    """The report of ``simulate`` (bounds, verdicts) for the honest histories of a launch,
    with the network totals (:func:`netsim.cli.network_fields`)."""
    from netsim.cli import network_fields

    net = network_fields(res, byz)
    hist = np.stack([res.histories[i] for i in res.honest], axis=1)  # (rounds+1, h, d)
    plain = args.insecure_loopback_plaintext
    common = dict(n=args.n, f=args.f, d=args.dim, protocol=args.protocol, engine="network",
                  rounds=args.rounds, seed=args.seed, strategy=args.strategy,
                  byzantine_ids=byz, honest=res.honest,
                  scheduler="loopback-tcp" + ("" if plain else "-tls"))
    views = [{i: tuple(res.reports[i].get("views", {}).get(str(r), ())) for i in res.honest}
             for r in range(args.rounds)]
    result = _finish(hist, common, messages=net["messages"], bytes=net["bytes"],
                     wall_time=res.wall_time, faults=net["faults"],
                     faults_against_honest=net["faults_against_honest"], complete=True,
                     views=views)
    args.engine = "network"
    rep = _report(result, args)
    rep["backend"] = args.backend
    for key in ("wire_bytes", "cpu_time_per_node", "resent_frames", "round_times"):
        rep[key] = net[key]
    return rep


def run_launch(args: argparse.Namespace) -> int:
    """``launch``: n ``python -m agreement node`` processes on loopback, one report."""
    from netsim.cli import cli_message as net_message
    from netsim.cli import launch_byzantine_ids, launch_failed
    from netsim.net.launch import LaunchError, launch

    try:
        byz = launch_byzantine_ids(args)
    except CommandLineError as exc:
        return fail(exc)
    try:
        check_resilience(args.protocol, args.n, args.f)
        x = make_inputs(args.inputs, args.n, args.dim, args.seed).astype(args.dtype)
        res = launch(
            x, f=args.f, protocol=args.protocol, rounds=args.rounds, byzantine_ids=byz,
            strategy=None if args.strategy == "none" else args.strategy, seed=args.seed,
            workdir=args.workdir, linger=args.linger, timeout=args.timeout,
            backend=args.backend, plaintext=args.insecure_loopback_plaintext,
            node_module="agreement",
        )
    except ValueError as exc:
        return fail(net_message(exc))
    except OSError as exc:
        return fail(f"--workdir {args.workdir}: {exc.strerror or exc}")
    except LaunchError as exc:  # a node failed: the first line, then the logs' tails
        return launch_failed(exc)
    rep = _launch_report(args, res, byz)
    if args.json:
        print(json.dumps(rep, sort_keys=True, default=_jsonable))
    else:
        _print_human(rep)
    return 0


# campaign: a grid of seeded simulations ---------------------------------------------------

def _seed_range(text: str) -> range:
    """``--seeds START:COUNT`` (or ``COUNT``, from 0) as a range."""
    start, _, count = text.rpartition(":")
    try:
        lo, k = int(start or 0), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:COUNT or COUNT, got {text!r}"
                                         ) from None
    if k < 1:
        raise argparse.ArgumentTypeError(f"COUNT must be >= 1, got {k}")
    return range(lo, lo + k)


def add_campaign_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "campaign", help="a grid of seeded simulations from a spec file (a study)",
        description="Run every cell x seed of a campaign spec (TOML) with the simulator, on a "
        "local process pool or a Dask cluster; write records.jsonl, summary.json/.md, "
        "failures.jsonl (each violation or error with its replay command and a reduced "
        "version) and spec.toml under --out. A rerun resumes: finished runs are kept. Exit "
        "status 1 when a run violates a claim or a check, or fails.",
        epilog="The spec format and the Python API: agreement.campaigns (docs/guides/"
        "campaigns.md). Across hosts: start `dask scheduler` and `dask worker "
        "tcp://HOST:8786` on each host (with this package installed), then --cluster "
        "tcp://HOST:8786.")
    p.add_argument("spec", metavar="SPEC", help="the campaign spec, a TOML file")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default campaign-NAME, NAME the spec's name)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="local worker processes (default: the machine's cores; 1: in process)")
    p.add_argument("--cluster", metavar="tcp://HOST:PORT", default=None,
                   help="run on this Dask scheduler instead (pip install \"jungle[dask]\")")
    p.add_argument("--seeds", type=_seed_range, metavar="START:COUNT", default=None,
                   help="override the spec's seed range")
    p.add_argument("--fresh", action="store_true",
                   help="start over (default: resume, keeping the records in --out)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document (summary, failures, paths); no progress bar")
    p.add_argument("--plot", action="store_true",
                   help="also draw diameters.png and heatmap.png in --out (matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_plugin_argument(p)
    return p


_CAMPAIGN_FLAGS = (("resume=False", "--fresh"), ("out folder", "--out DIR"),
                   ("workers must", "--workers must"),
                   ("unsafe = true", "unsafe = true in [fixed] or [axes]"))


def _load_campaign_spec(args: argparse.Namespace) -> Any:
    """The spec of ``SPEC`` (with ``--seeds``), or :class:`CommandLineError` naming the file
    and the key."""
    import dataclasses

    from .campaigns import load_spec

    path = Path(args.spec)
    if not path.is_file():
        raise CommandLineError(f"SPEC {args.spec}: no such file (the campaign spec, a TOML "
                               "file: see `python -m agreement campaign --help`)")
    try:
        spec = load_spec(path)
    except (ValueError, TypeError, KeyError) as exc:
        raise CommandLineError(f"SPEC {args.spec}: {exc}") from None
    if args.seeds is not None:
        spec = dataclasses.replace(spec, seeds=args.seeds)
    return spec


def _campaign_plots(result: Any, spec: Any) -> dict[str, str]:
    """``--plot``: the diameters per round and the heatmap of worst ratios in ``--out``."""
    from .campaigns import plot_diameters, plot_heatmap

    paths = {"diameters_png": str(result.out / "diameters.png"),
             "heatmap_png": str(result.out / "heatmap.png")}
    plot_diameters(result.records, paths["diameters_png"])
    varied = [k for k, v in spec.axes.items() if len(v) > 1]
    x = "strategy" if "strategy" in varied or not varied else varied[0]
    plot_heatmap(result.summary, paths["heatmap_png"], x=x)
    return paths


def _print_campaign(result: Any) -> None:
    from .campaigns import format_summary

    print(f"campaign {result.name}: {len(result.records)} runs ({result.computed} run now, "
          f"{result.resumed} kept from before) in {result.wall_time:.1f} s, {result.where}")
    print(format_summary(result.summary))
    for s in result.skipped:
        print(f"skipped: {s['cell_id']}: {s['reason']}")
    shown = result.failures[:20]
    for fail_ in shown:
        what = ", ".join(fail_["violated"]) or (fail_.get("error") or {}).get("type", "")
        print(f"\n{fail_['status'].upper()} {fail_['key']}: {what}")
        print(f"  replay:  {(fail_.get('replay') or {}).get('command')}")
        red = fail_.get("reduced")
        if red:
            print(f"  reduced ({red.get('what', '')}): {(red.get('replay') or {}).get('command')}")
    if len(result.failures) > len(shown):
        print(f"\n... and {len(result.failures) - len(shown)} more failures in "
              f"{result.paths['failures']}")
    print(f"\nfiles: {result.out}/ (" + ", ".join(Path(p).name for p in
                                                  result.paths.values()) + ")")
    print("all runs within the claims" if result.ok else
          f"{len(result.failures)} failures (violations or errors): exit status 1")
    print(_campaign_stress(result.records))


def _campaign_stress(records: list[dict[str, Any]]) -> str:
    """What the runs tested: those judged by a claim or a check, those among them whose
    honest views differed (only they test a contraction or averaging bound beyond validity),
    and those that checked nothing at all (no claim and no check: they cannot fail)."""
    judged = [r for r in records
              if any(k != "no-claim" for k in r.get("verdicts") or {}) or r.get("checks")]
    differed = sum(bool(r.get("views_differed")) for r in judged)
    text = (f"tested: {len(judged)} of {len(records)} runs judged by a claim or a check, "
            f"{differed} of them with differing honest views")
    nothing = len(records) - len(judged) - sum(r.get("status") == "error" for r in records)
    if nothing:
        text += (f"; WARNING: {nothing} runs checked nothing (no claim about their protocol "
                 "at their (n, f, d), no [checks]): they cannot fail")
    return text


def run_campaign_command(args: argparse.Namespace) -> int:
    """``campaign``: run the spec, print the summary and each failure's replay commands;
    exit 1 on a violation or an error."""
    from .campaigns import run_campaign

    out = args.out
    if args.cluster is not None and args.workers is not None:
        return fail("--workers applies to the local pool; with --cluster the cluster's "
                    "workers run the campaign (drop --workers)")
    try:
        spec = _load_campaign_spec(args)
        out = args.out or f"campaign-{spec.name}"
        if Path(out).exists() and not Path(out).is_dir():
            raise CommandLineError(f"--out {out} is a file; give a folder")
        progress = False if (args.json or args.no_progress) else None
        result = run_campaign(spec, out, workers=args.workers, cluster=args.cluster,
                              progress=progress, resume=not args.fresh)
        plots = _campaign_plots(result, spec) if args.plot else {}
    except CommandLineError as exc:
        return fail(exc)
    except (ValueError, ImportError, OSError) as exc:
        return fail(translate(exc, _CAMPAIGN_FLAGS))
    except KeyboardInterrupt:
        print(f"interrupted: the finished runs are kept in {out or 'the --out folder'}/"
              "records.jsonl; run the same command again to resume", file=sys.stderr)
        return 130
    if args.json:
        doc = result.as_dict()
        doc["paths"].update(plots)
        print(json.dumps(doc, sort_keys=True, default=_jsonable))
    else:
        _print_campaign(result)
        for p in plots.values():
            print(f"plot: {p}")
    return 0 if result.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m agreement",
                            description="Averaging agreement under attack: in the simulator, "
                            "or over the real network.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_simulate_parser(sub)
    add_node_parser(sub)
    add_launch_parser(sub)
    add_campaign_parser(sub)
    return parser


COMMANDS = {"simulate": run_simulate, "node": run_node, "launch": run_launch,
            "campaign": run_campaign_command}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        argv = plugin_argv(argv)
    except CommandLineError as exc:
        return fail(exc)
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
