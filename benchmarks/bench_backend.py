"""CollaborativeSGD over mutual TLS against DistributedDataParallel over gloo: the cost of a
training step when the backend is Byzantine-resilient agreement instead of an all-reduce.

Run: ``python -m benchmarks.bench_backend [--quick] [--no-write]``. n = 4 processes on
loopback (``--n``), f = 1 (``--f``), each with one thread (``torch.set_num_threads(1)``), the
same model built from the same seed, the same batch of ``--batch`` digits (scikit-learn's, as
shipped) per process and step, plain SGD (lr 0.1), for two models:

- ``digits-mlp``: :func:`learning.models.make_model` ``"mlp"`` (64 -> 64 -> 10, d = 4,810);
- ``mlp-1m``: 64 -> 1000 -> 1000 -> 10 (d = 1,076,010).

Three backends, interleaved in one run (per repeat and model: DDP, then 1 + 1, then proven;
``--reps`` repeats), in the same four worker processes:

- ``ddp``: ``torch.nn.parallel.DistributedDataParallel`` over a gloo process group (its
  all-reduce of the gradient overlaps the backward pass);
- ``1+1``: :class:`learning.CollaborativeSGD` over :class:`netsim.net.driver.
  TransportNetwork` (mutual TLS 1.3 over TCP, a fresh cluster per run), ``rounds=1,
  param_rounds=1``: one gradient agreement round and one parameter round per step;
- ``proven``: the optimizer's default ``rounds="proven"`` (the least rounds whose proven
  contraction reaches ``2^-N_t``, docs/theory.md §6) plus the parameter round.

A step is ``zero_grad``, forward, backward and ``step`` (for DDP the all-reduce is inside
``backward``). Each process times its steps after ``--warmup`` of them (which include the TLS
handshakes); the table gives, per backend, the median over processes of each process's
median step, the best of the repeats. Per agreement round: the step time divided by the
rounds of the step (``1 + 1`` = 2; proven: its gradient rounds + 1, median over steps).
CPU: process CPU seconds (user + system) per step, median over processes. Wire bytes per
step and process: for CollaborativeSGD the transport's count of bytes written below TLS
(``TransportStats.wire_bytes_sent``: frames, envelopes, acknowledgements) over the whole run,
counted once every peer acknowledged it, per agreement round (warm-up included), times the
timed steps' mean rounds; for DDP the ring all-reduce's ``2(n-1)/n · 4d`` (computed: gloo
does not count its bytes).

Writes BENCHMARKS.md section "backend". ``--quick`` (a check that it runs, a few seconds):
a tiny MLP (64 -> 8 -> 10, d = 610), 3 steps after 1 warm-up, one repeat, every backend;
it never writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.report import add_arguments, command, finish, machine, markdown_table
from netsim.net.cluster import free_ports, generate

ROOT = Path(__file__).resolve().parent.parent

MODELS: dict[str, tuple[int, ...]] = {
    "tiny-mlp": (64, 8, 10),
    "digits-mlp": (64, 64, 10),
    "mlp-1m": (64, 1000, 1000, 10),
}
"""Layer widths of each benchmarked MLP (ReLU between the linear layers)."""

BACKENDS = ("ddp", "1+1", "proven")


def build_model(name: str) -> Any:
    """The MLP ``name`` of :data:`MODELS` (``digits-mlp`` is learning.models' ``"mlp"``)."""
    import torch
    from torch import nn

    widths = MODELS[name]
    if name == "digits-mlp":
        from learning.models import make_model

        return make_model("mlp", (1, 8, 8), 10, hidden=widths[1])
    layers: list[torch.nn.Module] = [nn.Flatten()]
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def dimension(name: str) -> int:
    """The parameter count of model ``name``: ``sum(a·b + b)`` over its layers."""
    w = MODELS[name]
    return sum(a * b + b for a, b in itertools.pairwise(w))


# -- the worker processes --------------------------------------------------------------------
def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _timed_steps(step: Any, steps: int, warmup: int) -> dict[str, Any]:
    """Run ``step()`` ``warmup + steps`` times; the timed steps' seconds and CPU."""
    for _ in range(warmup):
        step()
    times, cpu0 = [], _cpu()
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"times": times, "cpu": (_cpu() - cpu0) / steps}


def _run_phase(rank: int, plan: dict[str, Any], phase: dict[str, Any], data: Any
               ) -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    from learning.optim import CollaborativeSGD, TransportNetwork

    torch.manual_seed(0)  # the shared seed: every process starts from the same parameters
    model = build_model(phase["model"])
    x, y = data
    gen = torch.Generator().manual_seed(100 + rank)  # the same batches for every backend
    lossf = torch.nn.functional.cross_entropy
    d = dimension(phase["model"])
    if phase["backend"] == "ddp":
        net_model = torch.nn.parallel.DistributedDataParallel(model)
        opt: Any = torch.optim.SGD(net_model.parameters(), lr=0.1)
        net = None
    else:
        net_model = model
        net = TransportNetwork.from_config(phase["config"], rank)
        opt = CollaborativeSGD(model.parameters(), lr=0.1, node=net, f=plan["f"],
                               rounds=1 if phase["backend"] == "1+1" else "proven",
                               param_rounds=1, timeout=300)

    def step() -> None:
        idx = torch.randint(len(x), (plan["batch"],), generator=gen)
        opt.zero_grad()
        lossf(net_model(x[idx]), y[idx]).backward()
        opt.step()

    out = _timed_steps(step, plan["steps"], plan["warmup"])
    if net is not None:
        out["rounds"] = [r + 1 for r in opt.rounds_log[plan["warmup"]:]]
        opt.close(10.0)  # every byte written and acknowledged: the whole run's count
        per_round = net.transport.stats.wire_bytes_sent / sum(r + 1 for r in opt.rounds_log)
        out["wire"] = per_round * statistics.mean(out["rounds"])
    else:
        out["rounds"] = [0] * plan["steps"]
        out["wire"] = 2 * (plan["n"] - 1) / plan["n"] * 4 * d
    dist.barrier()
    return {**phase, **out, "d": d}


def worker(rank: int, plan_path: str) -> None:
    """One of the ``n`` processes: a gloo process group, then every phase of the plan."""
    import numpy as np
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    plan = json.loads(Path(plan_path).read_text())
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{plan['port']}",
                            rank=rank, world_size=plan["n"])
    with np.load(Path(plan["out"], "digits.npz")) as z:  # the parent's load_digits(0)
        data = (torch.from_numpy(z["x"]), torch.from_numpy(z["y"]))
    results = []
    for phase in plan["phases"]:
        dist.barrier()
        results.append(_run_phase(rank, plan, phase, data))
    dist.destroy_process_group()
    Path(plan["out"], f"result-{rank}.json").write_text(json.dumps(results))


# -- the parent ------------------------------------------------------------------------------
def _launch(plan: dict[str, Any], tmp: Path) -> list[list[dict[str, Any]]]:
    import numpy as np

    from learning.data import load_digits

    ds = load_digits(0)  # once, here: the workers do not import scikit-learn
    np.savez(tmp / "digits.npz", x=ds.x_train, y=ds.y_train)
    plan_path = tmp / "plan.json"
    plan_path.write_text(json.dumps(plan))
    procs = []
    for rank in range(plan["n"]):
        log = open(tmp / f"worker-{rank}.log", "wb")  # noqa: SIM115 - closed below
        procs.append((subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_backend", "--worker", str(rank),
             str(plan_path)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log))
    failed = []
    for rank, (p, log) in enumerate(procs):
        try:
            rc = p.wait(timeout=1800)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = -9
        log.close()
        if rc != 0:
            failed.append(rank)
    if failed:
        for _, (p, _log) in enumerate(procs):
            if p.poll() is None:
                p.kill()
        tail = (tmp / f"worker-{failed[0]}.log").read_text()[-3000:]
        raise SystemExit(f"worker(s) {failed} failed; worker {failed[0]}'s log:\n{tail}")
    return [json.loads((tmp / f"result-{r}.json").read_text()) for r in range(plan["n"])]


def _summaries(results: list[list[dict[str, Any]]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (model, backend): the best repeat's median-over-processes of the median step."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for k, phase in enumerate(results[0]):
        per = [r[k] for r in results]
        step = statistics.median(statistics.median(p["times"]) for p in per)
        rnd = [statistics.median(t / r for t, r in zip(p["times"], p["rounds"], strict=True))
               for p in per] if phase["backend"] != "ddp" else [0.0]
        row = {"d": phase["d"], "step": step, "round": statistics.median(rnd),
               "rounds": sorted({r - 1 for r in per[0]["rounds"]}),
               "cpu": statistics.median(p["cpu"] for p in per),
               "wire": statistics.median(p["wire"] for p in per)}
        key = (phase["model"], phase["backend"])
        if key not in best or step < best[key]["step"]:
            best[key] = row
    return best


def _table(best: dict[tuple[str, str], dict[str, Any]], models: list[str],
           backends: list[str]) -> str:
    rows = []
    for model in models:
        ddp = best.get((model, "ddp"))
        for backend in backends:
            s = best[(model, backend)]
            rounds = ("all-reduce" if backend == "ddp" else "1 + 1" if backend == "1+1" else
                      f"{s['rounds'][0]}-{s['rounds'][-1]} + 1" if len(s["rounds"]) > 1
                      else f"{s['rounds'][0]} + 1")
            rows.append([model, f"{s['d']:,}", backend, rounds, f"{1e3 * s['step']:.1f}",
                         "-" if backend == "ddp" else f"{1e3 * s['round']:.1f}",
                         f"{s['step'] / ddp['step']:.1f}x" if ddp else "-",
                         f"{1e3 * s['cpu']:.1f}", f"{s['wire'] / 1e6:.3f}",
                         f"{s['wire'] / ddp['wire']:.1f}x" if ddp else "-"])
    return markdown_table(
        ["model", "d", "backend", "rounds per step", "step ms", "per round ms", "/ DDP step",
         "CPU ms per step", "wire MB per step", "/ DDP bytes"], rows)


def _plan(a: argparse.Namespace, tmp: Path, models: list[str]) -> dict[str, Any]:
    phases = []
    for rep in range(a.reps):
        for model in models:
            for backend in a.backends:
                phase: dict[str, Any] = {"rep": rep, "model": model, "backend": backend}
                if backend != "ddp":
                    cfg = generate(a.n, tmp / f"keys-{len(phases)}", f=a.f)
                    phase["config"] = str(cfg.path)
                phases.append(phase)
    return {"n": a.n, "f": a.f, "batch": a.batch, "steps": a.steps, "warmup": a.warmup,
            "port": free_ports(1)[0], "out": str(tmp), "phases": phases}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap, "a tiny MLP, 3 steps, one repeat: a check that it runs (never writes)")
    ap.add_argument("--n", type=int, default=4, help="processes (default 4)")
    ap.add_argument("--f", type=int, default=1, help="the Byzantine bound (default 1)")
    ap.add_argument("--steps", type=int, help="timed steps per run (default 8; --quick 3)")
    ap.add_argument("--warmup", type=int, help="untimed steps first (default 2; --quick 1)")
    ap.add_argument("--reps", type=int, help="repeats of every run (default 2; --quick 1)")
    ap.add_argument("--batch", type=int, default=32, help="samples per process and step")
    ap.add_argument("--models", nargs="+", choices=list(MODELS),
                    help="default digits-mlp mlp-1m (--quick: tiny-mlp)")
    ap.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS),
                    help="the backends to run (default all; the ratios need ddp)")
    ap.add_argument("--worker", nargs=2, metavar=("RANK", "PLAN"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker is not None:
        worker(int(a.worker[0]), a.worker[1])
        return
    a.steps = a.steps or (3 if a.quick else 8)
    a.warmup = (1 if a.quick else 2) if a.warmup is None else a.warmup
    a.reps = a.reps or (1 if a.quick else 2)
    models = a.models or (["tiny-mlp"] if a.quick else ["digits-mlp", "mlp-1m"])
    if a.n < 3 * a.f + 1 or a.steps < 1 or a.warmup < 0 or a.reps < 1 or a.batch < 1:
        ap.error("need --n >= 3 --f + 1, --steps >= 1, --warmup >= 0, --reps >= 1, "
                 "--batch >= 1")
    with tempfile.TemporaryDirectory(prefix="bench-backend-") as tmpdir:
        tmp = Path(tmpdir)
        plan = _plan(a, tmp, models)
        best = _summaries(_launch(plan, tmp))
    body = "\n\n".join([
        "## Training backend: CollaborativeSGD over TLS against DDP over gloo",
        f"Machine: {machine()}. Command: `{command()}`.",
        f"CollaborativeSGD over mutual TLS against DDP over gloo, n = {a.n} processes on "
        f"loopback, f = {a.f}, one thread each, batch {a.batch} per process, {a.steps} timed "
        f"steps after {a.warmup} warm-up, best of {a.reps} interleaved repeat(s) "
        "(benchmarks/bench_backend.py's docstring says what each column measures).",
        _table(best, models, a.backends)])
    finish("backend", body, quick=a.quick, no_write=a.no_write, allow_load=a.allow_load)


if __name__ == "__main__":
    main()
