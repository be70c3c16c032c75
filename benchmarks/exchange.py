"""The fair baseline of the network benchmark: n processes exchanging their vectors all-to-all.

Run: ``python -m benchmarks.exchange [--n 7] [--dim 1000000] [--rounds 6] [--transport
both] [--quick]``. It does the network work of one agreement round and nothing else, written
as plain Python at its best, so that ``benchmarks.bench_network`` can put a Jungle round
beside the same bytes moved by the same processes at the same time:

- n separate OS processes (``python -m benchmarks.exchange worker ...``, spawned like the
  nodes, each with its own interpreter and GIL), each holding a float32 vector of d
  coordinates;
- the nodes' topology: process ``i`` dials every ``j != i`` and that connection carries
  ``i``'s vectors to ``j`` only (one connection per ordered pair, ``n(n-1)`` in all), over raw
  TCP or over TLS 1.3 with the cluster's certificates from
  :func:`netsim.net.cluster.generate`, mutually authenticated as the nodes do (the ``ssl``
  module verifies each side against the cluster CA, then
  :func:`netsim.net.tls.authenticate` checks the pinned fingerprint and the node id);
- blocking sockets (no timeout once connected, so no ``poll`` before each call) and one
  sender and one receiver thread per peer (``sendall`` and ``recv_into`` release the GIL,
  so the n-1 transfers of a process overlap); the kernel's default socket buffers; the receiver
  reads each vector into a preallocated buffer (two per peer, by round parity: a peer is at
  most one round ahead, since its round ``r+1`` needs this process's round-``r`` vector);
- T rounds without a barrier: in round ``r`` a process sends its vector to each of the n-1
  others and receives their n-1 vectors; its round ``r`` ends when it holds all n-1 round-r
  vectors, and only then does it send its round-``r+1`` vector.

Figures, as the network benchmark takes them from the nodes: time per round of a process is
``(t_T - t_1) / (T - 1)`` (the first round, which waits for every process to start and
connect, is left out), the figure is the median over processes; CPU per process per round
is its user + system time (``resource.getrusage``) from before it listens until its last
connection is closed (handshakes included, interpreter start-up excluded), divided by T.
Payload per round: ``n(n-1)·4d`` bytes (TLS adds about 22 bytes per 16 KiB record).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from netsim.net.cluster import ClusterConfig, generate, load_config
from netsim.net.tls import authenticate

ROOT = Path(__file__).resolve().parent.parent

HEADER = struct.Struct("<HH")
"""What a dialer sends first: its own id and the id it meant to reach (little-endian u16)."""

DONE = b"\x01"
"""What a listener sends back after the last round's vector: the dialer closes only then (a
close with unread bytes, such as TLS 1.3 session tickets, would reset the connection and
could cut off the peer's last vector)."""


@dataclass(frozen=True)
class ExchangeResult:
    """One all-to-all exchange: per process, the time per round ``(t_T - t_1)/(T-1)`` and the
    CPU seconds per round (CPU / T); the payload per round ``n(n-1)·4d`` bytes."""

    n: int
    d: int
    rounds: int
    tls: bool
    round_time: dict[int, float]
    cpu_per_round: dict[int, float]
    payload: int

    @property
    def median_round(self) -> float:
        """The figure: the median over processes of their time per round."""
        return statistics.median(self.round_time.values())

    @property
    def cpu_floor(self) -> float:
        """Sum over processes of CPU per round divided by the machine's logical cores: no
        round can take less on this machine, whatever the code."""
        return sum(self.cpu_per_round.values()) / (os.cpu_count() or 1)


def run(n: int, d: int, rounds: int, *, tls: bool, timeout: float = 300.0) -> ExchangeResult:
    """Spawn ``n`` worker processes on 127.0.0.1 exchanging float32 vectors of ``d``
    coordinates all-to-all for ``rounds`` rounds, over TLS 1.3 (``tls``) or raw TCP; wait
    for them and read their reports. ``ValueError`` for ``n < 2``, ``d < 1`` or
    ``rounds < 2`` (the time per round leaves the first one out); ``RuntimeError`` with the
    worker's output when one fails."""
    if n < 2:
        raise ValueError(f"--n must be >= 2 processes, got {n}")
    if d < 1:
        raise ValueError(f"--dim must be >= 1, got {d}")
    if rounds < 2:
        raise ValueError(f"--rounds must be >= 2 (the first round is left out), got {rounds}")
    with tempfile.TemporaryDirectory(prefix="jungle-exchange-") as tmp:
        work = Path(tmp)
        cfg = generate(n, work / "keys", f=(n - 1) // 3)
        procs = []
        for i in range(n):
            cmd = [sys.executable, "-m", "benchmarks.exchange", "worker", "--config",
                   str(cfg.path), "--id", str(i), "--dim", str(d), "--rounds", str(rounds),
                   "--report", str(work / f"report-{i}.json"), "--timeout", str(timeout)]
            if not tls:
                cmd.append("--plaintext")
            procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT))
        try:
            outs = [p.communicate(timeout=timeout + 30)[0] for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        bad = [i for i, p in enumerate(procs) if p.returncode != 0]
        if bad:
            raise RuntimeError(f"exchange worker {bad[0]} failed:\n"
                               + outs[bad[0]].decode(errors="replace")[-3000:])
        reps = [json.loads((work / f"report-{i}.json").read_text()) for i in range(n)]
    times = {i: (r["round_times"][-1] - r["round_times"][0]) / (rounds - 1)
             for i, r in enumerate(reps)}
    cpu = {i: r["cpu_time"] / rounds for i, r in enumerate(reps)}
    return ExchangeResult(n, d, rounds, tls, times, cpu, n * (n - 1) * 4 * d)


class _Worker:
    """One process of the exchange: its listener, n-1 dialled and n-1 accepted connections,
    a sender and a receiver thread per peer, and the round bookkeeping."""

    def __init__(self, cfg: ClusterConfig, me: int, d: int, rounds: int, timeout: float):
        self.cfg, self.me, self.rounds, self.timeout = cfg, me, rounds, timeout
        self.peers = [j for j in range(cfg.n) if j != me]
        self.contexts = cfg.ssl_contexts(me)
        self.vector = np.full(d, float(me), dtype=np.float32)
        self.buffers = {j: np.empty((2, d), dtype=np.float32) for j in self.peers}
        self.lock = threading.Lock()
        self.received = [0] * (rounds + 1)
        self.done = [threading.Event() for _ in range(rounds + 1)]
        self.done[0].set()
        self.round_times: list[float] = []
        self.errors: list[BaseException] = []
        self.deadline = time.monotonic() + timeout

    def _auth(self, sock: socket.socket, expected: int | None) -> int | None:
        if not isinstance(sock, ssl.SSLSocket):
            return expected
        return authenticate(sock.getpeercert(binary_form=True), self.cfg.fingerprints,
                            expected)

    def dial(self, j: int) -> socket.socket:
        """Connect to peer ``j`` (retrying until it listens), authenticate it, say who we are."""
        e = self.cfg.node(j)
        while True:
            try:
                raw = socket.create_connection((e.host, e.port), timeout=self.timeout)
                break
            except OSError:
                if time.monotonic() > self.deadline:
                    raise
                time.sleep(0.01)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = raw if self.contexts is None else self.contexts[1].wrap_socket(raw)
        self._auth(sock, j)
        sock.sendall(HEADER.pack(self.me, j))
        sock.settimeout(None)  # blocking from here: no poll() before each send
        return sock

    def accept(self, listener: socket.socket) -> dict[int, socket.socket]:
        """Accept the n-1 dialers; each one's id comes from its certificate (TLS) or its
        header (plaintext), and must match both."""
        got: dict[int, socket.socket] = {}
        while len(got) < len(self.peers):
            raw, _ = listener.accept()
            raw.settimeout(self.timeout)
            sock = raw if self.contexts is None else self.contexts[0].wrap_socket(
                raw, server_side=True)
            head = _recv_exactly(sock, memoryview(bytearray(HEADER.size)))
            sender, target = HEADER.unpack(head)
            peer = self._auth(sock, sender)
            if target != self.me or peer not in self.peers or peer in got:
                raise ConnectionError(f"bad dialer header {sender}->{target}")
            sock.settimeout(None)  # blocking from here: no poll() before each recv
            got[int(peer)] = sock
        return got

    def send_loop(self, j: int, sock: socket.socket) -> None:
        """Round ``r``'s vector to ``j`` once round ``r-1`` is done here; then wait for DONE."""
        try:
            data = memoryview(self.vector).cast("B")
            for r in range(1, self.rounds + 1):
                if not self.done[r - 1].wait(self.timeout):
                    raise TimeoutError(f"round {r - 1} not done")
                sock.sendall(data)
            if sock.recv(1) != DONE:
                raise ConnectionError(f"peer {j} closed before DONE")
            sock.close()
        except BaseException as exc:  # reported by the main thread
            self.errors.append(exc)
            self.done[-1].set()

    def recv_loop(self, j: int, sock: socket.socket) -> None:
        """Peer ``j``'s vector of each round into its buffer; the round ends at n-1 of them."""
        try:
            for r in range(1, self.rounds + 1):
                _recv_exactly(sock, memoryview(self.buffers[j][r % 2]).cast("B"))
                with self.lock:
                    self.received[r] += 1
                    if self.received[r] == len(self.peers):
                        self.round_times.append(time.perf_counter())
                        self.done[r].set()
            sock.sendall(DONE)
            sock.close()
        except BaseException as exc:  # reported by the main thread
            self.errors.append(exc)
            self.done[-1].set()

    def run(self) -> None:
        e = self.cfg.node(self.me)
        listener = socket.create_server((e.host, e.port), backlog=len(self.peers))
        listener.settimeout(self.timeout)
        accepted: dict[int, socket.socket] = {}
        def accept_all() -> None:
            try:
                accepted.update(self.accept(listener))
            except BaseException as exc:  # reported below
                self.errors.append(exc)

        acceptor = threading.Thread(target=accept_all)
        acceptor.start()
        dialled = {j: self.dial(j) for j in self.peers}
        acceptor.join()
        listener.close()
        if self.errors or len(accepted) != len(self.peers):
            raise self.errors[0] if self.errors else ConnectionError(
                f"accepted {len(accepted)} of {len(self.peers)} peers")
        threads = [threading.Thread(target=self.send_loop, args=(j, s))
                   for j, s in dialled.items()]
        threads += [threading.Thread(target=self.recv_loop, args=(j, s))
                    for j, s in accepted.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.errors:
            raise self.errors[0]


def _recv_exactly(sock: socket.socket, view: memoryview) -> memoryview:
    """Fill ``view`` from ``sock`` (``ConnectionError`` if the peer closes first)."""
    got, size = 0, len(view)
    while got < size:
        k = sock.recv_into(view[got:], size - got)
        if not k:
            raise ConnectionError(f"peer closed after {got} of {size} bytes")
        got += k
    return view


def worker(config: str, me: int, d: int, rounds: int, report: str, plaintext: bool,
           timeout: float) -> None:
    """One exchange process: connect, run the rounds, check that the last round's vectors
    are the peers' (outside the clock), write ``report`` (JSON: the ``perf_counter`` time
    each round ended, CPU seconds, wall seconds)."""
    ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    w = _Worker(load_config(config, plaintext=plaintext), me, d, rounds, timeout)
    w.run()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    # after the clock: peer j's vector is full of j, so a wrong byte count or offset shows
    wrong = [j for j, b in w.buffers.items() if not (b[rounds % 2] == j).all()]
    if wrong:
        raise RuntimeError(f"process {me} received wrong vectors from {wrong}")
    Path(report).write_text(json.dumps({
        "id": me, "round_times": w.round_times, "cpu_time": cpu,
        "wall_time": time.perf_counter() - t0, "verified": True,
    }))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        wp = argparse.ArgumentParser(prog="python -m benchmarks.exchange worker")
        wp.add_argument("--config", required=True)
        wp.add_argument("--id", type=int, required=True)
        wp.add_argument("--dim", type=int, required=True)
        wp.add_argument("--rounds", type=int, required=True)
        wp.add_argument("--report", required=True)
        wp.add_argument("--timeout", type=float, default=300.0)
        wp.add_argument("--plaintext", action="store_true")
        a = wp.parse_args(argv[1:])
        worker(a.config, a.id, a.dim, a.rounds, a.report, a.plaintext, a.timeout)
        return
    from benchmarks.report import machine

    ap = argparse.ArgumentParser(prog="python -m benchmarks.exchange",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=None, help="processes (default 7)")
    ap.add_argument("--dim", type=int, default=None, help="float32 coordinates (default 1e6)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds T >= 2 (default 6)")
    ap.add_argument("--transport", choices=["tls", "tcp", "both"], default="both")
    ap.add_argument("--quick", action="store_true", help="n = 4, d = 10^4, 3 rounds")
    args = ap.parse_args(argv)
    defaults = (4, 10_000, 3) if args.quick else (7, 1_000_000, 6)
    n, d, rounds = (dv if v is None else v for v, dv in
                    zip((args.n, args.dim, args.rounds), defaults, strict=True))
    print(f"Machine: {machine()}.")
    print(f"n = {n} processes, d = {d} float32, T = {rounds} rounds, payload per round "
          f"n(n-1)·4d = {n * (n - 1) * 4 * d / 1e6:.2f} MB")
    for tls in {"tls": (True,), "tcp": (False,), "both": (True, False)}[args.transport]:
        try:
            res = run(n, d, rounds, tls=tls)
        except ValueError as exc:
            ap.error(str(exc))
        per = sorted(res.round_time.values())
        cpu = list(res.cpu_per_round.values())
        print(f"{'TLS 1.3' if tls else 'raw TCP'}: {res.median_round:.4f} s / round "
              f"({per[0]:.4f}-{per[-1]:.4f}), {res.payload / res.median_round / 1e9:.2f} GB/s, "
              f"CPU {statistics.mean(cpu):.4f} s / process / round, CPU floor "
              f"{res.cpu_floor:.4f} s / round")


if __name__ == "__main__":
    main()
