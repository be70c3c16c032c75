"""Trimmed-mean agreement rounds over the real network against a raw loopback socket.

Run: ``python -m benchmarks.bench_network [--dim 1000000] [--quick] [--no-write]``. n = 7
node processes, f = 2 (all running honestly: the cost of the protocol, not of an attack),
float32 vectors of ``--dim`` coordinates, over loopback, through ``python -m agreement
launch`` (mutual TLS 1.3, and again with ``--insecure-loopback-plaintext`` to show what TLS costs).

- Time per round: each honest node records when it completes each round; per node
  ``(t_T - t_1) / (T - 1)`` (the first round, which waits for every process to start and
  connect, is left out); the table gives the median over nodes.
- Baselines, measured in the same run: the same payload bytes per round (each node's vector
  to each of its n-1 peers, ``n(n-1)·4d``) pushed through one raw loopback TCP socket, and
  through one TLS 1.3 socket (the ``ssl`` module, the cluster's certificates), best of 3.
- Bytes per round: the codec bodies the nodes sent (``bytes``, counted as the simulator
  counts them) and everything written to the sockets below TLS (``wire``: plus length
  prefixes, envelopes, acknowledgements), against the minimum ``n(n-1)`` vector messages.
- CPU per node per round: process CPU time (user + system) of each node's run (start-up
  imports excluded, TLS handshakes included) divided by T; the CPU floor is their sum over
  nodes divided by the machine's cores.

Writes BENCHMARKS.md section "network". ``--quick`` (a check that it runs, a few seconds):
n = 4 processes, f = 1, d = 10^4, 3 rounds (``--n``, ``--f``, ``--dim``, ``--rounds`` still
override it); it never writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks._report import add_arguments, command, finish, machine, markdown_table
from netsim.codec import VECTOR_OVERHEAD
from netsim.net.cluster import generate

ROOT = Path(__file__).resolve().parent.parent


def launch(n: int, f: int, d: int, rounds: int, plaintext: bool) -> dict:
    cmd = [sys.executable, "-m", "agreement", "launch", "--n", str(n), "--f", str(f),
           "--dim", str(d), "--dtype", "float32", "--rounds", str(rounds), "--json",
           "--timeout", "500", "--linger", "1"]
    if plaintext:
        cmd.append("--insecure-loopback-plaintext")
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"launch failed:\n{p.stderr}")
    return json.loads(p.stdout)


def _pump(total: int, chunk: int, wrap_server, wrap_client) -> float:
    """Seconds to push ``total`` bytes from a client to a server socket on 127.0.0.1."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    got = [0]

    def serve() -> None:
        conn, _ = srv.accept()
        conn = wrap_server(conn)
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while got[0] < total:
            k = conn.recv_into(view)
            if not k:
                break
            got[0] += k
        conn.close()

    th = threading.Thread(target=serve)
    th.start()
    cli = wrap_client(socket.create_connection(("127.0.0.1", port)))
    payload = b"\x5a" * chunk
    t0 = time.perf_counter()
    sent = 0
    while sent < total:
        cli.sendall(payload)
        sent += chunk
    th.join()
    dt = time.perf_counter() - t0
    cli.close()
    srv.close()
    return dt


def baselines(total: int, chunk: int, keys: Path) -> tuple[float, float]:
    """Best of 3: raw TCP, and TLS 1.3 with the cluster's certificates."""
    cfg = generate(2, keys, ports=[0, 0])
    server_ctx, _ = cfg.ssl_contexts(0)  # type: ignore[misc]
    _, client_ctx = cfg.ssl_contexts(1)  # type: ignore[misc]
    raw = min(_pump(total, chunk, lambda s: s, lambda s: s) for _ in range(3))
    tls = min(
        _pump(total, chunk, lambda s: server_ctx.wrap_socket(s, server_side=True),
              lambda s: client_ctx.wrap_socket(s))
        for _ in range(3)
    )
    return raw, tls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=None, help="node processes (default 7)")
    ap.add_argument("--f", type=int, default=None, help="Byzantine bound (default 2)")
    ap.add_argument("--dim", type=int, default=None, help="coordinates (default 1000000)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds T >= 2 (default 6)")
    add_arguments(ap, "n = 4, f = 1, d = 10^4, 3 rounds; never writes BENCHMARKS.md")
    args = ap.parse_args()
    defaults = (4, 1, 10_000, 3) if args.quick else (7, 2, 1_000_000, 6)
    n, f, d, rounds = (default if value is None else value for value, default in
                       zip((args.n, args.f, args.dim, args.rounds), defaults, strict=True))
    if rounds < 2:
        ap.error("--rounds must be >= 2 (the time per round leaves the first round out)")
    payload = n * (n - 1) * 4 * d
    minimum = n * (n - 1) * (VECTOR_OVERHEAD + 4 * d)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        raw, tls = baselines(payload, 4 * d, Path(tmp) / "keys")
    for plaintext in (False, True):
        rep = launch(n, f, d, rounds, plaintext)
        assert rep["averaging_within_bound"] and rep["contraction_within_bound"]
        per_node = sorted((t[-1] - t[0]) / (rounds - 1) for t in rep["round_times"].values())
        t_round = statistics.median(per_node)
        cpu = [c / rounds for c in rep["cpu_time_per_node"].values()]
        w_round = rep["wire_bytes"] / rounds
        rows.append([
            "plaintext (insecure)" if plaintext else "mutual TLS 1.3",
            f"{t_round:.3f} ({per_node[0]:.3f}-{per_node[-1]:.3f})",
            f"{t_round / raw:.1f}x",
            f"{t_round / tls:.1f}x",
            f"{rep['bytes'] / rounds / 1e6:.2f}",
            f"{w_round / 1e6:.2f}",
            f"{w_round / minimum:.3f}",
            f"{rep['messages'] / rounds:.0f}",
            f"{statistics.mean(cpu):.3f} ({min(cpu):.3f}-{max(cpu):.3f})",
            f"{sum(cpu) / (os.cpu_count() or 1):.3f}",
        ])
        print(rows[-1], flush=True)
    body = "\n".join([
        "## Network: trimmed-mean agreement rounds over loopback",
        "",
        f"Machine: {machine()}. Command: `{command()}`. The {n} node processes share the "
        f"machine's {os.cpu_count()} logical cores.",
        "",
        f"n = {n} processes, f = {f}, d = {d} float32, all honest, T = {rounds} rounds; "
        "time per round: median over nodes of (t_T - t_1)/(T-1) (min-max). Payload per round "
        f"n(n-1)·4d = {payload / 1e6:.1f} MB: raw loopback TCP socket {raw:.3f} s "
        f"({payload / raw / 1e9:.2f} GB/s), TLS 1.3 socket {tls:.3f} s "
        f"({payload / tls / 1e9:.2f} GB/s), best of 3, same run. Minimum bytes per round "
        f"(each vector once to each peer) {minimum / 1e6:.2f} MB.",
        "",
        markdown_table(
            ["transport", "s / round (min-max)", "vs raw TCP", "vs raw TLS", "MB bodies / round",
             "MB wire / round", "wire / minimum", "messages / round",
             "CPU s / node / round (min-max)", "CPU floor s / round"],
            rows,
        ),
        "",
        "Wire bytes count length prefixes, envelopes and acknowledgements, not TLS record "
        "overhead (about 22 bytes per 16 KiB record). Bytes above the minimum are mostly "
        "vectors sent twice: on a real network the small ECHO/READY messages overtake a "
        "megabyte VALUE, a node reaches its READY quorum first and FETCHes the value "
        "(broadcast's FETCH/REPLY path), so the excess varies from run to run. CPU floor = "
        f"the nodes' CPU time per round divided by the machine's cores: with {n} processes on "
        f"{os.cpu_count()} cores a round cannot be faster than that, whatever the transport. "
        "Byzantine nodes would add their own traffic; this is the honest cost.",
    ])
    finish("network", body, quick=args.quick, no_write=args.no_write, allow_load=args.allow_load)


if __name__ == "__main__":
    main()
