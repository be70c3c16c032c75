"""A local launcher: n node processes (``python -m NODE_MODULE node``) on loopback.

:func:`launch` makes an ephemeral cluster (a fresh CA, one certificate per node, free
loopback ports) in a work folder, writes each node's input, spawns the n processes, f of
them Byzantine with a strategy of :data:`netsim.net.node.NETWORK_STRATEGIES`, waits for the
honest ones and reads back their histories and reports. Byzantine processes still running
when every honest node has exited get SIGTERM, on which they stop and write their reports
(so their traffic is counted too, as the simulator counts it).

It knows nothing of the protocol beyond the command-line options it passes through (the
node command's package is a parameter, ``node_module``, default ``agreement``), so it stays
in netsim; ``python -m agreement launch`` (a front end) turns the histories into the same
report as ``python -m agreement simulate``.
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

from ..deprecation import deprecated_alias
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
    byzantine_ids: list[int]
    histories: dict[int, np.ndarray]
    reports: dict[int, dict[str, Any]]
    wall_time: float
    workdir: Path

    byzantine = deprecated_alias("byzantine_ids")


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
    whole run (:class:`LaunchError` after it, with every process killed). Each node is
    ``python -m NODE_MODULE node ...`` (``node_module``: the package whose command line runs
    a node; netsim itself names none of the protocols)."""
    x = np.asarray(inputs)
    byz = _check_byzantine(x, f, byzantine_ids, strategy)
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="jungle-launch-")
        work = Path(tmp.name)
    else:
        work = Path(workdir)
        work.mkdir(parents=True, exist_ok=True)
    try:
        spawn = _Spawn(work, x.shape[0], f, byz, protocol, rounds, strategy, seed, linger,
                       timeout, backend, plaintext, python, node_module)
        return spawn.run(x)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _check_byzantine(x: np.ndarray, f: int, byzantine_ids: Sequence[int],
                     strategy: str | None) -> list[int]:
    """The sorted Byzantine ids, after checking the inputs, the ids and the strategy (a clear
    ``ValueError`` before anything is spawned)."""
    if x.ndim != 2:
        raise ValueError(f"inputs must be an (n, d) array, got shape {x.shape}")
    n = x.shape[0]
    byz = sorted(set(byzantine_ids))
    if len(byz) > f or any(not 0 <= b < n for b in byz):
        raise ValueError(f"byzantine_ids must be at most f={f} ids in range({n})")
    if byz:
        if strategy is None:
            raise ValueError("Byzantine ids given without a strategy")
        make_network_strategy(strategy)
    return byz


@dataclass
class _Spawn:
    """One launch in ``work``: the keys and inputs written, the n processes spawned, the
    honest ones awaited, every one stopped, the histories and reports read back."""

    work: Path
    n: int
    f: int
    byz: list[int]
    protocol: str
    rounds: int
    strategy: str | None
    seed: int
    linger: float
    timeout: float
    backend: str
    plaintext: bool
    python: str
    node_module: str

    @property
    def honest(self) -> list[int]:
        return [i for i in range(self.n) if i not in set(self.byz)]

    def command(self, i: int) -> list[str]:
        """Node ``i``'s command line."""
        w = self.work
        cmd = [
            self.python, "-m", self.node_module, "node",
            "--config", str(w / "keys" / "cluster.toml"), "--id", str(i), "--f", str(self.f),
            "--protocol", self.protocol, "--rounds", str(self.rounds),
            "--input", str(w / f"input-{i}.npy"), "--output", str(w / f"out-{i}.npy"),
            "--history", str(w / f"history-{i}.npy"), "--report", str(w / f"report-{i}.json"),
            "--linger", str(self.timeout if i in self.byz else self.linger),
            "--timeout", str(self.timeout), "--backend", self.backend,
        ]
        if i in self.byz:
            cmd += ["--strategy", str(self.strategy), "--seed", str(self.seed)]
        if self.plaintext:
            cmd.append("--insecure-loopback-plaintext")
        return cmd

    def log(self, i: int) -> Path:
        return self.work / f"node-{i}.log"

    def run(self, x: np.ndarray) -> LaunchResult:
        generate(self.n, self.work / "keys", f=self.f)
        for i in range(self.n):
            np.save(self.work / f"input-{i}.npy", x[i])
        t0 = time.time()
        procs: dict[int, subprocess.Popen[bytes]] = {}
        try:
            for i in range(self.n):
                with open(self.log(i), "wb") as log:
                    procs[i] = subprocess.Popen(
                        self.command(i), stdout=log, stderr=subprocess.STDOUT,
                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
            failed = self.wait_honest(procs, t0 + self.timeout + 10.0)
        finally:
            _stop(procs)
        if failed:
            tails = "\n".join(f"--- node {i} ---\n{_tail(self.log(i))}" for i in failed)
            raise LaunchError(f"honest node(s) {failed} failed:\n{tails}")
        return self.collect(t0)

    def wait_honest(self, procs: dict[int, subprocess.Popen[bytes]], deadline: float
                    ) -> list[int]:
        """Wait for every honest process; the ids of those that failed. ``LaunchError``
        (with the node's log) for one still running at ``deadline``."""
        failed: list[int] = []
        for i in self.honest:
            try:
                rc = procs[i].wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                raise LaunchError(f"node {i} did not finish within {self.timeout} s; its "
                                  "log:\n" + _tail(self.log(i))) from None
            if rc != 0:
                failed.append(i)
        return failed

    def collect(self, t0: float) -> LaunchResult:
        """The honest histories and every report written; the wall time to the last honest
        decision."""
        honest = self.honest
        histories = {i: np.load(self.work / f"history-{i}.npy") for i in honest}
        reports = {}
        for i in range(self.n):
            rp = self.work / f"report-{i}.json"
            if rp.exists():
                reports[i] = json.loads(rp.read_text())
        wall = max(reports[i]["decided_wall"] for i in honest) - t0
        return LaunchResult(self.n, self.f, honest, self.byz, histories, reports, wall,
                            self.work)


def _stop(procs: dict[int, subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process still running (a node stops on it and still writes its report),
    then wait; kill one that does not stop within 10 s."""
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    for p in procs.values():
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
