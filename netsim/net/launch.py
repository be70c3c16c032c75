"""A local launcher: n node processes (``python -m netsim node``) on loopback.

:func:`launch` makes an ephemeral cluster (a fresh CA, one certificate per node, free
loopback ports) in a work folder, writes each node's input, spawns the n processes, f of
them Byzantine with a strategy of :data:`netsim.net.node.NETWORK_STRATEGIES`, waits for the
honest ones and reads back their histories and reports. Byzantine processes still running
when every honest node has exited get SIGTERM, on which they stop and write their reports
(so their traffic is counted too, as the simulator counts it).

It knows nothing of the protocol beyond the command-line options it passes through, so it
stays in netsim; ``python -m netsim launch`` (a front end) turns the histories into the
same report as ``python -m netsim simulate``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cluster import generate
from .node import DEFAULT_LINGER, make_network_strategy


class LaunchError(RuntimeError):
    """A node process failed or the run timed out; the message has the logs' tails."""


@dataclass
class LaunchResult:
    """Histories ``(rounds+1, d)`` of the honest nodes, every node's report (the JSON its
    process wrote), the wall time from spawning to the last honest decision."""

    n: int
    f: int
    honest: list[int]
    byzantine: list[int]
    histories: dict[int, np.ndarray]
    reports: dict[int, dict[str, Any]]
    wall_time: float
    workdir: Path


def _tail(path: Path, k: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-k:])
    except OSError:
        return "(no log)"


def launch(
    inputs: np.ndarray,
    *,
    f: int,
    protocol: str,
    rounds: int,
    byzantine_ids: Sequence[int] = (),
    strategy: str | None = None,
    seed: int = 0,
    workdir: str | Path | None = None,
    linger: float = DEFAULT_LINGER,
    timeout: float = 300.0,
    backend: str = "asyncio",
    plaintext: bool = False,
    python: str = sys.executable,
    node_module: str = "agreement",
) -> LaunchResult:
    """Run one agreement among ``n = len(inputs)`` node processes on 127.0.0.1.

    ``inputs[i]`` is node ``i``'s input (a Byzantine node's is the input of its honest-looking
    cores). ``linger``: each honest node serves its peers after deciding until every peer
    has decided, or for at most ``linger`` seconds (:mod:`netsim.net.node`, "Lingering"), so a
    node up to ``linger`` seconds behind the others still finishes. ``timeout`` bounds the
    whole run (:class:`LaunchError` after it, with every process killed)."""
    x = np.asarray(inputs)
    if x.ndim != 2:
        raise ValueError(f"inputs must be an (n, d) array, got shape {x.shape}")
    n = x.shape[0]
    byz = sorted(set(byzantine_ids))
    if len(byz) > f or any(not 0 <= b < n for b in byz):
        raise ValueError(f"byzantine_ids must be at most f={f} ids in range({n})")
    if byz:
        if strategy is None:
            raise ValueError("Byzantine ids given without a strategy")
        make_network_strategy(strategy)  # a clear error before anything is spawned
    honest = [i for i in range(n) if i not in set(byz)]
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="jungle-launch-")
        work = Path(tmp.name)
    else:
        work = Path(workdir)
        work.mkdir(parents=True, exist_ok=True)
    try:
        generate(n, work / "keys", f=f)
        procs: dict[int, subprocess.Popen[bytes]] = {}
        logs: dict[int, Path] = {}
        for i in range(n):
            np.save(work / f"input-{i}.npy", x[i])
        t0 = time.time()
        for i in range(n):
            cmd = [
                python, "-m", node_module, "node", "--config", str(work / "keys" / "cluster.toml"),
                "--id", str(i), "--f", str(f), "--protocol", protocol, "--rounds", str(rounds),
                "--input", str(work / f"input-{i}.npy"), "--output", str(work / f"out-{i}.npy"),
                "--history", str(work / f"history-{i}.npy"),
                "--report", str(work / f"report-{i}.json"),
                "--linger", str(linger if i in honest else timeout),
                "--timeout", str(timeout), "--backend", backend,
            ]
            if i in byz:
                cmd += ["--byzantine", str(strategy), "--seed", str(seed)]
            if plaintext:
                cmd.append("--insecure-loopback-plaintext")
            logs[i] = work / f"node-{i}.log"
            with open(logs[i], "wb") as log:
                procs[i] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = t0 + timeout + 10.0
        failed: list[int] = []
        try:
            for i in honest:
                left = max(0.1, deadline - time.time())
                try:
                    rc = procs[i].wait(timeout=left)
                except subprocess.TimeoutExpired:
                    raise LaunchError(
                        f"node {i} did not finish within {timeout} s; its log:\n"
                        + _tail(logs[i])
                    ) from None
                if rc != 0:
                    failed.append(i)
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.terminate()  # a node stops on SIGTERM and still writes its report
            for p in procs.values():
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if failed:
            tails = "\n".join(f"--- node {i} ---\n{_tail(logs[i])}" for i in failed)
            raise LaunchError(f"honest node(s) {failed} failed:\n{tails}")
        histories = {i: np.load(work / f"history-{i}.npy") for i in honest}
        reports = {}
        for i in range(n):
            rp = work / f"report-{i}.json"
            if rp.exists():
                reports[i] = json.loads(rp.read_text())
        wall = max(reports[i]["decided_wall"] for i in honest) - t0
        return LaunchResult(n, f, honest, byz, histories, reports, wall, work)
    finally:
        if tmp is not None:
            tmp.cleanup()
