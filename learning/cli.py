"""``python -m learning COMMAND`` (also ``jungle train|compare|demo``): LEARN from the shell.

- ``train``: one run; prints honest test accuracy (mean, min), loss, parameter diameter,
  messages, bytes and wall time (``--json``: one JSON object; ``--plot FILE.png``);
- ``compare``: a grid attacks x methods -> Markdown + JSON table and a plot;
- ``sweep``: ALIE's z x Dirichlet α against LEARN -> Markdown + JSON table and a plot;
- ``simulate-byzsgd``: ByzSGD's sans-IO protocols in netsim's simulator, Byzantine servers
  and workers, every gather checked against its rank bound (docs/systems/byzsgd.md);
- ``demo``: the main demo (10 nodes, 3 Byzantine, heterogeneous digits, several attacks,
  LEARN against D-SGD and a trusted server), a few minutes on 2 CPU cores.

A front end: it may import every layer; the libraries never import it. ``--plugin MODULE``
(:mod:`netsim.plugins`) imports a module that registers learning attacks, value attacks,
rules or strategies before the flags are parsed; ``--attack``'s choices and the listings of
``--help`` are the registries'.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agreement import CONFIGS
from agreement.attacks import VALUE_ATTACKS
from agreement.rules import rule_names
from netsim.cli_args import (
    ArgumentParser,
    CommandLineError,
    add_plugin_argument,
    fail,
    nonneg_int,
    plugin_argv,
    positive_float,
    positive_int,
    summary,
)

from .attacks import LEARNING_ATTACKS, attack_names, user_value_attacks
from .data import DATASETS, SPLITS
from .experiments import (
    ATTACKS_ALL,
    DEMO_ATTACKS,
    DEMO_METHODS,
    METHODS_COMPARE,
    parse_value,
    pivot_markdown,
    plot_grid,
    plot_history,
    run_grid,
    sweep_alie,
    write_outputs,
)
from .learn import METHODS, TrainConfig, train
from .methods import SERVER_RULES, protocol_strategies
from .models import MODELS

ATTACK_HELP = {
    "none": "the Byzantine nodes send nothing",
    "sign-flip": "-scale x their own gradient / parameters",
    "gaussian": "honest mean + sigma x N(0, I)",
    "label-flip": "honest behaviour on labels y -> C-1-y",
    "alie": "mean + z x std of the honest vectors (z from n, f: Baruch et al. 2019)",
    "ipm": "-eps x honest mean (inner-product manipulation)",
    "mimic": "a copy of one honest node (target)",
    "dissensus": "values beyond the honest extremes + views that push nodes apart",
    "nan": "non-finite vectors (invalid: never in a view)",
    "label-flip-mean": "mean of the honest gradients on labels y -> C-1-y (byzfl)",
    "sign-flip-mean": "-scale x honest mean",
    "optimal-alie": "mean + z x std, z line-searched against the rule (zmax, evals)",
    "optimal-ipm": "-eps x honest mean, eps line-searched against the rule (emax, evals)",
    "tailored": "per receiver j: x_j + scale x (x_j - mean) (equivocation)",
    "gossip-dissensus": "per receiver j: cancels j's consensus step (eps; ClippedGossip)",
    "adaptive": "best ALIE/IPM/own-direction value, recomputed every round (research, fixed)",
}


def _attack_params(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for it in items:
        key, sep, val = it.partition("=")
        if not sep:
            raise ValueError(f"--attack-param expects KEY=VALUE, got {it!r}")
        try:
            out[key] = int(val) if key == "target" else float(val)
        except ValueError:
            raise ValueError(f"--attack-param {key}: not a number: {val!r}") from None
    return out


def _method_params(items: Sequence[str]) -> dict[str, Any]:
    """``--method-param KEY=VALUE`` items: numbers where they parse, else strings."""
    out: dict[str, Any] = {}
    for it in items:
        key, sep, val = it.partition("=")
        if not sep or not key:
            raise ValueError(f"--method-param expects KEY=VALUE, got {it!r}")
        out[key] = parse_value(val)
    return out


def _common(p: argparse.ArgumentParser, steps: int = 300) -> None:
    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--data-dir", default=None, help="local MNIST IDX / CIFAR-10 python files")
    p.add_argument("--model", default="mlp", choices=MODELS)
    p.add_argument("--hidden", type=positive_int, default=64,
                   help="MLP hidden width (default 64)")
    p.add_argument("--n", type=positive_int, default=10, help="nodes (default 10)")
    p.add_argument("--f", type=nonneg_int, default=3,
                   help="Byzantine nodes, ids 0..f-1 (default 3)")
    p.add_argument("--steps", type=positive_int, default=steps)
    p.add_argument("--batch-size", type=positive_int, default=32, help="per node (default 32)")
    p.add_argument("--lr", type=positive_float, default=0.1)
    p.add_argument("--lr-schedule", default="constant", choices=("constant", "step", "cosine"))
    p.add_argument("--lr-decay-every", type=int, default=100)
    p.add_argument("--lr-gamma", type=float, default=0.2)
    p.add_argument("--momentum", type=float, default=None,
                   help="SGD momentum after agreement (default 0.9, or 0 with --worker-momentum)")
    p.add_argument("--worker-momentum", type=float, default=0.0,
                   help="momentum before agreement instead: nodes agree on momentum vectors "
                        "(the defence against time-coupled attacks such as alie)")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--rounds", default="proven",
                   help="gradient agreement rounds per step: 'proven' (default: the least "
                        "count whose proven contraction reaches docs/theory.md §6's target 2^-N_t, "
                        "N_t = ceil(log2 t); trimmed-mean, mda and ball-mda only), 'log' "
                        "(N_t rounds: the paper's count, NOT covered by the theorem's guarantee) "
                        "or a fixed integer (no guarantee either)")
    p.add_argument("--param-rounds", type=int, default=1)
    p.add_argument("--split", default="dirichlet", choices=SPLITS)
    p.add_argument("--alpha", type=float, default=1.0, help="Dirichlet concentration")
    p.add_argument("--labels-per-node", type=int, default=2, help="for --split shards")
    p.add_argument("--engine", default="round", choices=("round", "message"))
    p.add_argument("--views", default="random", choices=("random", "omniscient"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--unsafe", action="store_true", help="run below the resilience bound")
    g = p.add_argument_group("the seeds' other systems (--method byzsgd, kardam, choco)")
    g.add_argument("--n-servers", type=positive_int, default=7,
                   help="byzsgd: parameter servers (default 7; needs >= 3 x --f-servers + 1)")
    g.add_argument("--f-servers", type=nonneg_int, default=2,
                   help="byzsgd: Byzantine servers among them (default 2)")
    g.add_argument("--gather-every", type=positive_int, default=10,
                   help="byzsgd: steps between two gathers of the servers' models (default 10)")
    g.add_argument("--server-attack", default="auto",
                   help="byzsgd: what Byzantine servers send: auto (--attack applied to "
                        "models), equivocate, stale, or a learning attack's name")
    g.add_argument("--topology", default="ring",
                   help="choco: gossip graph: ring, torus or complete (default ring)")
    g.add_argument("--compression", default="topk:0.01",
                   help="choco: topk:FRACTION, randk:FRACTION, sign or none (default topk:0.01)")
    g.add_argument("--consensus-lr", type=positive_float, default=None,
                   help="choco: consensus step size gamma (default: the method's)")
    g.add_argument("--scheduler", default="heavy-tail",
                   help="kardam, async-sgd: the netsim scheduler whose delays make gradients "
                        "stale (default heavy-tail)")
    g.add_argument("--method-param", action="append", default=[], metavar="KEY=VALUE",
                   help="a method's further knob (see the method's doc), repeatable")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: the simulated models are small, and "
                        "more threads only wait for each other on a busy machine)")


def _config(a: argparse.Namespace, **over: Any) -> TrainConfig:
    if a.rounds in ("proven", "log"):
        rounds: int | str = a.rounds
    else:
        try:
            rounds = int(a.rounds)
        except ValueError:
            raise ValueError(f"--rounds must be proven, log or an integer >= 1, got "
                             f"{a.rounds!r}") from None
    momentum = a.momentum if a.momentum is not None else (0.0 if a.worker_momentum else 0.9)
    kw = dict(
        dataset=a.dataset, data_dir=a.data_dir, model=a.model, hidden=a.hidden, n=a.n, f=a.f,
        steps=a.steps, batch_size=a.batch_size, lr=a.lr, lr_schedule=a.lr_schedule,
        lr_decay_every=a.lr_decay_every, lr_gamma=a.lr_gamma, momentum=momentum,
        worker_momentum=a.worker_momentum, weight_decay=a.weight_decay, rounds=rounds,
        param_rounds=a.param_rounds, split=a.split, alpha=a.alpha,
        labels_per_node=a.labels_per_node, engine=a.engine, views=a.views, seed=a.seed,
        device=a.device, dtype=a.dtype, eval_every=a.eval_every, unsafe=a.unsafe,
        n_servers=a.n_servers, f_servers=a.f_servers, gather_every=a.gather_every,
        server_attack=a.server_attack, topology=a.topology, compression=a.compression,
        consensus_lr=a.consensus_lr, scheduler=a.scheduler,
        method_params=_method_params(a.method_param),
    )
    kw.update(over)
    return TrainConfig(**kw)


def build_parser() -> argparse.ArgumentParser:
    ap = ArgumentParser(
        prog="python -m learning",
        description="LEARN: collaborative SGD from averaging agreement (docs/theory.md §6).",
    )
    sub = ap.add_subparsers(dest="command", required=True)
    helps = {**ATTACK_HELP,
             **{k: summary(v, ATTACK_HELP, k) for k, v in LEARNING_ATTACKS.items()},
             **{k: "value attack: " + summary(VALUE_ATTACKS[k], None, k)
                for k in user_value_attacks()}}
    attacks = "\n".join(f"  {k:<11} {v}" for k, v in helps.items())
    epilog = (
        f"attacks:\n{attacks}\n  protocol-level (--engine message): "
        f"{', '.join(protocol_strategies())}\n\n"
        f"protocols (learn): {', '.join(f'{c.name} ({c.resilience_text})' for c in CONFIGS.values())}\n"  # noqa: E501
        f"rules (server): {', '.join(sorted({*rule_names(), *SERVER_RULES}))}"
    )
    t = sub.add_parser("train", help="one training run", epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train n nodes (f Byzantine) and report honest accuracy.")
    _common(t)
    t.add_argument("--method", default="learn", choices=METHODS)
    t.add_argument("--protocol", default="trimmed-mean",
                   help="learn: agreement protocol; server: robust rule (or zeno); byzsgd: "
                        "the servers' gradient rule")
    t.add_argument("--attack", default="none",
                   choices=sorted({*attack_names(), *protocol_strategies()}),
                   metavar="ATTACK")
    t.add_argument("--attack-param", action="append", default=[], metavar="KEY=VALUE",
                   help="z (alie), eps (ipm), sigma (gaussian), scale, target (mimic)")
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.add_argument("--plot", metavar="FILE.png", help="accuracy and diameter against steps")
    t.add_argument("--no-progress", action="store_true")
    add_plugin_argument(t)

    c = sub.add_parser("compare", help="grid attacks x methods -> table and plot")
    _common(c)
    c.add_argument("--attacks", default=",".join(ATTACKS_ALL))
    c.add_argument("--methods", default=",".join(METHODS_COMPARE),
                   help="learn:PROTOCOL, server:RULE, byzsgd[:RULE], dsgd, local, kardam, "
                        "async-sgd, choco (comma-separated); METHOD@FIELD=VALUE sets a "
                        "field for that method only, e.g. learn:nnm@worker_momentum=0.9")
    c.add_argument("--out", default="learning-results", help="output folder")
    c.add_argument("--rows", default="attack", choices=("attack", "method"),
                   help="what the table's rows are (the columns are the other one)")
    c.add_argument("--seeds", default=None,
                   help="comma-separated seeds: each cell is the mean over them (its min: the "
                        "smallest honest accuracy of any seed); default: --seed")
    c.add_argument("--workers", type=positive_int, default=1,
                   help="training processes in parallel (default 1)")

    s = sub.add_parser("sweep", help="ALIE z x Dirichlet alpha against LEARN -> table, plot")
    _common(s)
    s.add_argument("--protocol", default="trimmed-mean")
    s.add_argument("--method", default="learn", choices=("learn", "dsgd", "server"))
    s.add_argument("--zs", default="0.5,1,2")
    s.add_argument("--alphas", default="0.1,1,100")
    s.add_argument("--out", default="learning-results")

    _simulate_parser(sub)

    d = sub.add_parser("demo", help="the main demo (a few minutes on 2 CPU cores)")
    _common(d)
    d.add_argument("--attacks", default=",".join(DEMO_ATTACKS))
    d.add_argument("--methods", default=",".join(DEMO_METHODS))
    d.add_argument("--out", default="learning-demo", help="output folder (table, plot)")
    return ap


def _simulate_parser(sub: Any) -> None:
    """``simulate-byzsgd``: ByzSGD's sans-IO protocols in netsim's simulator."""
    from netsim.sim.adversary import strategy_names
    from netsim.sim.schedulers import scheduler_names

    from .protocols.byzsgd import BYZSGD_STRATEGIES

    strategies = sorted({*BYZSGD_STRATEGIES, *strategy_names()})
    b = sub.add_parser(
        "simulate-byzsgd", help="ByzSGD's protocols in netsim's simulator (Byzantine servers)",
        description="ByzSGD (docs/systems/byzsgd.md) message by message in netsim's simulator, "
                    "on heterogeneous quadratics whose honest optimum is known; every honest "
                    "server is checked against the gather's rank bound after every gather "
                    "(exit status 1 if one is out of it, or a server did not finish).")
    b.add_argument("--n-servers", type=positive_int, default=7)
    b.add_argument("--f-servers", type=nonneg_int, default=2)
    b.add_argument("--n", type=positive_int, default=10, help="workers (default 10)")
    b.add_argument("--f", type=nonneg_int, default=3, help="Byzantine workers (default 3)")
    b.add_argument("--steps", type=positive_int, default=40)
    b.add_argument("--gather-every", type=positive_int, default=2)
    b.add_argument("--dim", type=positive_int, default=5, help="model dimension (default 5)")
    b.add_argument("--lr", type=positive_float, default=0.2)
    b.add_argument("--rule", default="mda", help="the servers' gradient rule (default mda)")
    b.add_argument("--model-rule", default="median", help="the workers' rule (default median)")
    b.add_argument("--strategy", default="far", choices=strategies, metavar="STRATEGY",
                   help=f"what the Byzantine nodes do: {', '.join(strategies)} (default far)")
    b.add_argument("--scheduler", default="targeted", choices=scheduler_names(),
                   help="default targeted: quorums that differ as much as the adversary can")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--unsafe", action="store_true", help="run below n >= 3f+1")
    b.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_simulate_byzsgd(a: argparse.Namespace) -> int:
    import numpy as np

    from .protocols.byzsgd import ByzSGDConfig, quadratic_oracle, simulate_byzsgd

    config = ByzSGDConfig(n_ps=a.n_servers, f_ps=a.f_servers, n_w=a.n, f_w=a.f,
                          steps=a.steps, gather_every=a.gather_every, lr=a.lr, rule=a.rule,
                          model_rule=a.model_rule, unsafe=a.unsafe)
    oracle = quadratic_oracle(config, a.dim, seed=a.seed)
    res = simulate_byzsgd(config, oracle, np.zeros(a.dim), strategy=a.strategy,
                          scheduler=a.scheduler, seed=a.seed)
    optimum = oracle.optimum(res.honest_workers)
    dist = res.distance_to(optimum) if res.models else float("nan")
    if a.json:
        print(json.dumps({
            "ok": res.ok, "gathers": len(res.checks), "within": sum(c.ok for c in res.checks),
            "worst_violation": max((c.violation for c in res.checks), default=0.0),
            "distance_to_optimum": dist, "start_distance": float(np.linalg.norm(optimum)),
            "messages": res.messages_by_channel, "bytes": res.bytes_by_channel,
            "faults": res.faults_by_kind, "seed": a.seed}))
    else:
        print(res.summary())
        print(f"distance to the honest optimum {dist:.4g} (from "
              f"{np.linalg.norm(optimum):.4g} at the start)")
    return 0 if res.ok else 1


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", disable=not enabled, leave=False,
                file=sys.stderr)


def cmd_train(a: argparse.Namespace) -> int:
    cfg = _config(a, method=a.method, protocol=a.protocol, attack=a.attack,
                  attack_params=_attack_params(a.attack_param))
    show = not a.no_progress and sys.stderr.isatty()
    with _bar(cfg.steps, f"{cfg.method}/{cfg.attack}", show) as bar:
        def tick(step: int, metrics: dict[str, Any]) -> None:
            bar.update(1)
            if metrics.get("accuracy_mean") is not None and step % cfg.eval_every == 0:
                bar.set_postfix(acc=f"{metrics['accuracy_mean']:.3f}")

        res = train(cfg, progress=tick)
    if a.plot:
        plot_history(res.history, a.plot, f"{cfg.method} ({cfg.protocol}), attack "
                     f"{cfg.attack}, n={cfg.n}, f={cfg.f}")
    if a.json:
        print(json.dumps(res.as_dict()))
        return 0
    acc = ("accuracy n/a" if res.accuracy_mean is None else
           f"accuracy mean {res.accuracy_mean:.4f}  min {res.accuracy_min:.4f}")
    print(f"{cfg.method} ({cfg.protocol if METHODS[cfg.method].rule is not None else '-'}) "
          f"attack={cfg.attack} n={cfg.n} f={cfg.f} steps={cfg.steps} seed={cfg.seed}")
    print(f"  honest {acc}")
    print(f"  train loss {res.loss:.4f}  test loss {res.test_loss:.4f}  "
          f"parameter diameter {res.diameter:.3g}")
    print(f"  messages {res.messages:,}  bytes {res.bytes:,}  ({res.traffic})")
    print(f"  wall time {res.wall_time:.2f} s  ({res.step_time * 1e3:.2f} ms/step, "
          f"{res.agreement_rounds} agreement rounds)")
    if res.gradient_rounds:
        g = res.gradient_rounds
        print(f"  gradient rounds per step ({cfg.rounds}): {g[0]} at step 1 .. {g[-1]} at step "
              f"{len(g)}, {sum(g) / len(g):.1f} on average")
    if res.distance_to_optimum is not None:
        print(f"  ||θ̄ - θ*|| {res.distance_to_optimum:.4g}  ||∇L̄(θ̄)|| {res.grad_norm:.4g}")
    return 0


def _grid_progress(total: int) -> Any:
    done = [0]
    t0 = time.perf_counter()

    def on(attack: str, method: str, res: Any) -> None:
        done[0] += 1
        acc = "-" if res.accuracy_mean is None else f"{res.accuracy_mean:.3f}"
        print(f"[{done[0]}/{total}] {attack:<12} {method:<22} accuracy {acc}  "
              f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    return on


def cmd_grid(a: argparse.Namespace, demo: bool) -> int:
    attacks = [x for x in a.attacks.split(",") if x]
    methods = [x for x in a.methods.split(",") if x]
    base = _config(a)
    t0 = time.perf_counter()
    seeds = _seeds(getattr(a, "seeds", None))
    rows = run_grid(base, attacks, methods,
                    _grid_progress(len(attacks) * len(methods) * max(1, len(seeds or ()))),
                    seeds=seeds, workers=getattr(a, "workers", 1))
    which = (f"seeds {','.join(map(str, seeds))} (mean; min over seeds)" if seeds
             else f"seed {base.seed}")
    title = (f"{'Demo' if demo else 'Compare'}: {base.dataset}, {base.model}, n={base.n}, "
             f"f={base.f}, Dirichlet α={base.alpha}, {base.steps} steps, {which}")
    out = Path(a.out)
    row_key = getattr(a, "rows", "attack")
    col_key = "attack" if row_key == "method" else "method"
    legend = {k: v for k, v in ATTACK_HELP.items() if k in attacks}
    md = write_outputs(rows, out, "demo" if demo else "compare", title, row_key, col_key,
                       legend=legend, story=demo)
    print(md)
    print(f"wrote {out / ('demo' if demo else 'compare')}.md, .json, .png "
          f"({time.perf_counter() - t0:.0f} s)")
    return 0


def _seeds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x]
    except ValueError:
        raise ValueError(f"--seeds expects comma-separated integers, got {text!r}") from None


def cmd_sweep(a: argparse.Namespace) -> int:
    zs = [float(z) for z in a.zs.split(",")]
    alphas = [float(x) for x in a.alphas.split(",")]
    base = _config(a, method=a.method, protocol=a.protocol)
    rows = sweep_alie(base, zs, alphas, _grid_progress(len(alphas) * (len(zs) + 1)))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    title = (f"ALIE sweep: {a.method} ({a.protocol}), {base.dataset}, n={base.n}, "
             f"f={base.f}, {base.steps} steps, seed {base.seed}")
    md = (f"## {title}\n\nHonest test accuracy, mean / min; columns: Dirichlet α.\n\n"
          + pivot_markdown(rows, "attack", "alpha") + "\n")
    (out / "sweep.md").write_text(md)
    (out / "sweep.json").write_text(json.dumps(rows, indent=1, default=str))
    plot_grid(rows, out / "sweep.png", title, "attack", "alpha")
    print(md)
    print(f"wrote {out / 'sweep'}.md, .json, .png")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        argv = plugin_argv(argv)
    except CommandLineError as exc:
        return fail(exc)
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", 1) < 1:
        print("error: --threads must be >= 1", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(getattr(args, "threads", 1))
    device = getattr(args, "device", "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        return fail(f"--device {device}: {exc}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        return fail(f"--device {device}: CUDA is not available here (use --device cpu)")
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "sweep":
            return cmd_sweep(args)
        if args.command == "simulate-byzsgd":
            return cmd_simulate_byzsgd(args)
        return cmd_grid(args, demo=args.command == "demo")
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {cli_message(str(exc))}", file=sys.stderr)
        return 2


def cli_message(text: str) -> str:
    """An API error message in command-line terms (flags instead of Python keywords)."""
    for api, flag in (('rounds="proven"', "--rounds proven"), ('rounds="log"', "--rounds log"),
                      ("rounds='proven'", "--rounds proven"),
                      ("an integer number of rounds", "--rounds INTEGER"),
                      ("rounds must be 'proven'", "--rounds must be 'proven'"),
                      ("unsafe=True", "--unsafe"),
                      ("needs n >= 1 and 0 <= f < n", "needs --n >= 1 and 0 <= --f < --n"),
                      ("steps and batch_size must", "--steps and --batch-size must"),
                      ("lr must", "--lr must"), ("param_rounds must", "--param-rounds must"),
                      ("momentum values must", "--momentum and --worker-momentum must"),
                      ("worker_momentum (", "--worker-momentum (")):
        text = text.replace(api, flag)
    # the other systems' keywords, written ``keyword=VALUE`` in the library's errors
    for key in ("n_servers", "f_servers", "gather_every", "server_attack", "topology",
                "compression", "consensus_lr", "scheduler", "method_params"):
        flag = "--method-param" if key == "method_params" else "--" + key.replace("_", "-")
        text = re.sub(rf"(?<![\w-]){key}=", flag + " ", text)
        text = re.sub(rf"(?<![\w-]){key}\b", flag, text)
    # ByzSGD's protocol configuration names its groups n_ps/f_ps (servers), n_w/f_w (workers)
    for api, flag in (("n_ps servers", "--n-servers servers"), ("f_ps Byzantine)",
                      "--f-servers Byzantine)"), ("n_w workers", "--n workers"),
                      ("f_w Byzantine)", "--f Byzantine)")):
        text = text.replace(api, flag)
    return text
