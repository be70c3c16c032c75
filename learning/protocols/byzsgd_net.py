"""ByzSGD over the real network: one node process per server and per worker, mutual TLS over
TCP on netsim's runtime (docs/systems/byzsgd.md, "Over the real network").

- :func:`write_spec` / :func:`read_spec`: the run's specification file (JSON): the
  :class:`~learning.protocols.byzsgd.ByzSGDConfig` and the
  :class:`~learning.protocols.byzsgd.QuadraticOracle`, from which every process builds its
  protocol and its oracle (a process's input ``.npy`` is its ``x0``);
- ``python -m learning.protocols.byzsgd_net node --protocol SPEC.json --rounds STEPS ...``:
  one node (the flags of ``python -m agreement node``: ``--config``, ``--id``, ``--input``,
  ``--output``, ``--history``, ``--report``, ``--strategy`` for a Byzantine process, ...);
- :func:`launch_byzsgd`: ``n_ps + n_w`` such processes on loopback through
  :func:`netsim.net.launch.launch`, every honest server's gathers checked against the bound
  of :mod:`learning.protocols.gather` as in :func:`~learning.protocols.byzsgd.simulate_byzsgd`.

Byzantine processes run netsim's network strategies (:data:`netsim.net.node.
NETWORK_STRATEGIES`: they need no omniscience); ByzSGD's own (``stale``, ``sign-flip``,
``far``) need none either, but netsim's launcher and node flags accept only netsim's names,
so over the network they are not offered.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .byzsgd import (
    ByzSGDConfig,
    ByzSGDServer,
    GatherRecord,
    GatherRun,
    QuadraticOracle,
    default_byzantine_ids,
    gather_checks,
    make_node,
)

SPEC_VERSION = 1


def write_spec(path: str | Path, config: ByzSGDConfig, oracle: QuadraticOracle) -> Path:
    """Write the run's specification (JSON, floats exactly: ``repr`` round-trips them)."""
    spec = {
        "version": SPEC_VERSION,
        "config": asdict(config),
        "oracle": {"centers": np.asarray(oracle.centers, dtype=np.float64).tolist(),
                   "first_worker": oracle.first_worker, "noise": oracle.noise,
                   "seed": oracle.seed},
    }
    p = Path(path)
    p.write_text(json.dumps(spec, sort_keys=True))
    return p


def read_spec(path: str | Path) -> tuple[ByzSGDConfig, QuadraticOracle]:
    """The ``(config, oracle)`` of a file written by :func:`write_spec`; ``ValueError``
    naming the file for anything else."""
    try:
        spec = json.loads(Path(path).read_text())
        if spec.get("version") != SPEC_VERSION:
            raise ValueError(f"version {spec.get('version')!r}, expected {SPEC_VERSION}")
        config = ByzSGDConfig(**spec["config"])
        o = spec["oracle"]
        oracle = QuadraticOracle(np.asarray(o["centers"], dtype=np.float64),
                                 int(o["first_worker"]), float(o["noise"]), int(o["seed"]))
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a ByzSGD specification of learning.protocols."
                         f"byzsgd_net.write_spec ({exc})") from None
    if oracle.centers.shape[0] != config.n_w:
        raise ValueError(f"{path}: the oracle has {oracle.centers.shape[0]} centres for "
                         f"n_w = {config.n_w} workers")
    return config, oracle


# -- one node process ------------------------------------------------------------------------
def _node_protocol(args: argparse.Namespace, n: int, f: int, x: np.ndarray) -> Any:
    from netsim.cli_args import CommandLineError
    from netsim.net.node import StrategyProtocol

    try:
        config, oracle = read_spec(args.protocol)
    except ValueError as exc:
        raise CommandLineError(f"--protocol {exc}") from None
    if (config.n, config.f, config.steps) != (n, f, args.rounds):
        raise CommandLineError(
            f"--protocol {args.protocol}: n={config.n}, f={config.f}, steps={config.steps}, "
            f"but --config has n={n}, --f {f}, --rounds {args.rounds}")

    def factory(i: int, xi: Any) -> Any:
        return make_node(config, oracle, i, xi)

    if args.strategy:
        return StrategyProtocol(args.id, n, f, args.strategy, factory, x, seed=args.seed)
    return factory(args.id, x)


def _report_fields(proto: Any) -> dict[str, Any]:
    """A server's gathers (step, origins, pre and post models) for the report."""
    if not isinstance(proto, ByzSGDServer):
        return {}
    return {"gathers": [{"step": r.step, "origins": list(r.origins), "dtype": r.pre.dtype.name,
                         "pre": r.pre.tolist(), "post": r.post.tolist()}
                        for r in proto.records]}


def run_node(args: argparse.Namespace) -> int:
    """``node``: one ByzSGD process; at the end writes ``--output`` (a server's final model,
    a worker's last estimate), ``--history`` (a server's models entering each step, a
    worker's estimates) and ``--report`` (the runtime's report, a server's gathers)."""
    from netsim.cli import run_vector_node

    def rows(proto: Any) -> tuple[np.ndarray, Sequence[np.ndarray]]:
        got = proto.history if isinstance(proto, ByzSGDServer) else proto.estimates
        return got[-1], got

    return run_vector_node(args, lambda cfg, x, f: _node_protocol(args, cfg.n, f, x), rows,
                           _report_fields)


def build_parser() -> argparse.ArgumentParser:
    """``python -m learning.protocols.byzsgd_net node ...``."""
    from netsim.cli import add_node_arguments
    from netsim.cli_args import positive_int

    parser = argparse.ArgumentParser(
        prog="python -m learning.protocols.byzsgd_net",
        description="One ByzSGD node process over mutual-TLS TCP (docs/systems/byzsgd.md).")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("node", help="one ByzSGD server or worker")
    p.add_argument("--protocol", required=True, metavar="SPEC.json",
                   help="the run's specification (learning.protocols.byzsgd_net.write_spec)")
    p.add_argument("--rounds", type=positive_int, required=True,
                   help="the number of steps (must equal the specification's)")
    add_node_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_node(args)


# -- n processes on loopback -----------------------------------------------------------------
@dataclass
class NetworkResult(GatherRun):
    """What :func:`launch_byzsgd` read back (:class:`~learning.protocols.byzsgd.GatherRun`:
    the honest servers' final ``models`` and ``records`` from their reports, the gather
    ``checks``), every process's ``reports`` and the wall time to the last honest decision."""

    reports: dict[int, dict[str, Any]]
    wall_time: float


def _records(report: dict[str, Any]) -> tuple[GatherRecord, ...]:
    out = []
    for g in report.get("gathers", []):
        dt = np.dtype(g["dtype"])
        out.append(GatherRecord(int(g["step"]), np.asarray(g["pre"], dtype=dt),
                                np.asarray(g["post"], dtype=dt), tuple(g["origins"])))
    return tuple(out)


def launch_byzsgd(config: ByzSGDConfig, oracle: QuadraticOracle, x0: Any, *,
                  byzantine_ids: Sequence[int] | None = None, strategy: str | None = None,
                  seed: int = 0, timeout: float = 120.0, linger: float = 5.0,
                  plaintext: bool = False, workdir: str | Path | None = None
                  ) -> NetworkResult:
    """Run ByzSGD as ``config.n`` processes on 127.0.0.1 (mutual TLS unless ``plaintext``),
    every one starting from ``x0``; the Byzantine ones (default
    :func:`~learning.protocols.byzsgd.default_byzantine_ids`, needing ``strategy``, one of
    netsim's network strategies) run it as a Byzantine process. ``LaunchError`` (netsim)
    when a process fails or ``timeout`` passes."""
    from netsim.net.launch import launch

    x = np.asarray(x0)
    byz = default_byzantine_ids(config) if byzantine_ids is None else tuple(byzantine_ids)
    if byz and strategy is None:
        raise ValueError("byzantine_ids given without a strategy (pass strategy=NAME)")
    tmp = tempfile.TemporaryDirectory(prefix="jungle-byzsgd-") if workdir is None else None
    work = Path(tmp.name if tmp is not None else workdir)  # type: ignore[arg-type]
    try:
        work.mkdir(parents=True, exist_ok=True)
        spec = write_spec(work / "byzsgd.json", config, oracle)
        res = launch(np.tile(x, (config.n, 1)), f=config.f, protocol=str(spec),
                     rounds=config.steps, byzantine_ids=byz, strategy=strategy, seed=seed,
                     workdir=work, linger=linger, timeout=timeout, plaintext=plaintext,
                     node_module="learning.protocols.byzsgd_net")
    finally:
        if tmp is not None:
            tmp.cleanup()
    servers = tuple(i for i in res.honest if i < config.n_ps)
    models = {s: res.histories[s][-1] for s in servers}
    records = {s: _records(res.reports[s]) for s in servers}
    checks, checked = gather_checks(config, records, sum(1 for b in byz if b < config.n_ps))
    return NetworkResult(config=config, byzantine_ids=tuple(res.byzantine_ids),
                         honest_servers=servers,
                         honest_workers=tuple(i for i in res.honest if i >= config.n_ps),
                         models=models, records=records, checks=checks, checked=checked,
                         reports=res.reports, wall_time=res.wall_time)


__all__ = ["NetworkResult", "build_parser", "launch_byzsgd", "main", "read_spec", "run_node",
           "write_spec"]


if __name__ == "__main__":
    sys.exit(main())
