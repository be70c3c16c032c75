"""Trimmed-mean agreement rounds over the real network against a fair all-to-all exchange.

Run: ``python -m benchmarks.bench_network [--dim 1000000] [--quick] [--no-write]``. n = 7
node processes, f = 2 (all running honestly: the cost of the protocol, not of an attack),
float32 vectors of ``--dim`` coordinates, over loopback, through ``python -m agreement
launch`` (mutual TLS 1.3, and again with ``--insecure-loopback-plaintext``).

- Time per round: each honest node records when it completes each round; per node
  ``(t_T - t_1) / (T - 1)`` (the first round, which waits for every process to start and
  connect, is left out); the table gives the median over nodes.
- The fair baseline, measured in the same run (:mod:`benchmarks.exchange`): the same n
  processes, each holding a float32 vector of d coordinates, exchanging them all-to-all at
  the same time for T rounds (each sends its vector to the n-1 others and receives their
  n-1 vectors, the next round once it has them all), over TLS 1.3 with the cluster's
  certificates and mutual authentication, and over raw TCP; its time per round taken as the
  nodes' is. A Jungle round is compared with the exchange over the same transport (the
  targets: TLS round <= 2x the TLS exchange, plaintext round <= 2x the raw TCP exchange) and
  with the other one. The contenders run interleaved (exchange TLS, Jungle TLS, exchange
  TCP, Jungle plaintext, ``--repeats`` times): each figure is the best of its repeats.
- For continuity with the former figures, one extra line: the same payload bytes per round
  (``n(n-1)·4d``) pushed through a single loopback socket pair, raw and TLS (best of 3).
- Bytes per round: the codec bodies the nodes sent (``bytes``, counted as the simulator
  counts them) and everything written to the sockets below TLS (``wire``: plus length
  prefixes, envelopes, acknowledgements), against the minimum ``n(n-1)`` vector messages.
- CPU per node per round: process CPU time (user + system) of each node's run (start-up
  imports excluded, TLS handshakes included) divided by T, beside the same for an exchange
  process; the CPU floor is their sum over processes divided by the machine's cores.
- Where the CPU goes (``--profile``, on by default at full size when py-spy can attach
  here, off under ``--quick``): one more Jungle TLS run (not timed) with py-spy sampling
  node 0 (:mod:`benchmarks.profile`: busy samples by category, the top 10 leaf functions).

Writes BENCHMARKS.md section "network". ``--quick`` (a check that it runs, a few seconds):
n = 4 processes, f = 1, d = 10^4, 3 rounds, 1 repeat, no profile (``--n``, ``--f``,
``--dim``, ``--rounds`` still override it); it never writes BENCHMARKS.md.
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
from dataclasses import dataclass
from pathlib import Path

from benchmarks import exchange
from benchmarks import profile as prof
from benchmarks.report import add_arguments, command, finish, machine, markdown_table
from netsim.codec import VECTOR_OVERHEAD
from netsim.net.cluster import generate

ROOT = Path(__file__).resolve().parent.parent

TRANSPORTS = (("mutual TLS 1.3", True), ("plaintext (insecure)", False))
"""The table's rows: name, whether TLS; the baseline of each is the exchange over the same
transport (TLS 1.3 for TLS, raw TCP for plaintext)."""


def launch_command(n: int, f: int, d: int, rounds: int, plaintext: bool) -> list[str]:
    cmd = [sys.executable, "-m", "agreement", "launch", "--n", str(n), "--f", str(f),
           "--dim", str(d), "--dtype", "float32", "--rounds", str(rounds), "--json",
           "--timeout", "500", "--linger", "1"]
    return cmd + (["--insecure-loopback-plaintext"] if plaintext else [])


def launch(n: int, f: int, d: int, rounds: int, plaintext: bool) -> dict:
    p = subprocess.run(launch_command(n, f, d, rounds, plaintext), cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"launch failed:\n{p.stderr}")
    rep = json.loads(p.stdout)
    if not (rep["averaging_within_bound"] and rep["contraction_within_bound"]):
        raise SystemExit(f"the launched agreement missed its bounds: {p.stdout[:2000]}")
    return rep


@dataclass(frozen=True)
class JungleRun:
    """One launch's figures: per honest node the time per round and CPU per round."""

    round_time: dict[str, float]
    cpu_per_round: dict[str, float]
    bytes_per_round: float
    wire_per_round: float
    messages_per_round: float

    @property
    def median_round(self) -> float:
        return statistics.median(self.round_time.values())

    @property
    def cpu_floor(self) -> float:
        return sum(self.cpu_per_round.values()) / (os.cpu_count() or 1)


def jungle(n: int, f: int, d: int, rounds: int, plaintext: bool) -> JungleRun:
    rep = launch(n, f, d, rounds, plaintext)
    return JungleRun(
        {i: (t[-1] - t[0]) / (rounds - 1) for i, t in rep["round_times"].items()},
        {i: c / rounds for i, c in rep["cpu_time_per_node"].items()},
        rep["bytes"] / rounds, rep["wire_bytes"] / rounds, rep["messages"] / rounds)


def _pump(total: int, chunk: int, wrap_server, wrap_client) -> float:
    """Seconds to push ``total`` bytes from a client to a server socket on 127.0.0.1."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    got = [0]

    def serve() -> None:
        conn, _ = srv.accept()
        conn = wrap_server(conn)
        view = memoryview(bytearray(1 << 20))
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


def single_pair(total: int, chunk: int, keys: Path) -> tuple[float, float]:
    """The former baseline, best of 3: ``total`` bytes through one raw TCP socket pair, and
    through one TLS 1.3 pair with the cluster's certificates."""
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


def measure(n: int, f: int, d: int, rounds: int, repeats: int
            ) -> tuple[dict[bool, list[JungleRun]], dict[bool, list[exchange.ExchangeResult]]]:
    """The contenders interleaved ``repeats`` times (exchange TLS, Jungle TLS, exchange TCP,
    Jungle plaintext): every run of each, keyed by whether it was over TLS."""
    runs: dict[bool, list[JungleRun]] = {True: [], False: []}
    swaps: dict[bool, list[exchange.ExchangeResult]] = {True: [], False: []}
    for k in range(repeats):
        for name, tls in TRANSPORTS:
            swaps[tls].append(exchange.run(n, d, rounds, tls=tls))
            runs[tls].append(jungle(n, f, d, rounds, plaintext=not tls))
            print(f"repeat {k + 1}/{repeats}, {name}: Jungle "
                  f"{runs[tls][-1].median_round:.4f} s / round, exchange "
                  f"{swaps[tls][-1].median_round:.4f} s / round", flush=True)
    return runs, swaps


def per_repeat(runs: dict[bool, list[JungleRun]],
               swaps: dict[bool, list[exchange.ExchangeResult]]) -> str:
    """Each repeat's own ratio (its Jungle run over the exchange run just before it), to
    show the spread behind the best-of figures."""
    return "; ".join(
        f"{name} " + ", ".join(f"{j.median_round / x.median_round:.1f}x"
                               for j, x in zip(runs[tls], swaps[tls], strict=True))
        for name, tls in TRANSPORTS)


def table(n: int, d: int, runs: dict[bool, list[JungleRun]],
          swaps: dict[bool, list[exchange.ExchangeResult]]) -> str:
    """The Markdown table: one row per transport (see the module docstring), each
    contender's best run (smallest median time per round)."""
    minimum = n * (n - 1) * (VECTOR_OVERHEAD + 4 * d)
    best_j = {t: min(v, key=lambda r: r.median_round) for t, v in runs.items()}
    best_x = {t: min(v, key=lambda r: r.median_round) for t, v in swaps.items()}
    rows = []
    for name, tls in TRANSPORTS:
        j, same, other = best_j[tls], best_x[tls], best_x[not tls]
        per = sorted(j.round_time.values())
        cpu = list(j.cpu_per_round.values())
        xcpu = list(same.cpu_per_round.values())
        rows.append([
            name, f"{j.median_round:.3g} ({per[0]:.3g}-{per[-1]:.3g})",
            f"{same.median_round:.3g}", f"**{j.median_round / same.median_round:.1f}x**",
            f"{j.median_round / other.median_round:.1f}x",
            f"{j.wire_per_round / minimum:.3f}", f"{j.messages_per_round:.0f}",
            f"{statistics.mean(cpu):.3g} ({min(cpu):.3g}-{max(cpu):.3g})",
            f"{statistics.mean(xcpu):.3g}", f"{j.cpu_floor:.3g}", f"{same.cpu_floor:.3g}",
        ])
    return markdown_table(
        ["transport", "Jungle s / round (min-max)", "exchange s / round (same transport)",
         "vs same-transport exchange", "vs the other exchange", "wire / minimum",
         "messages / round", "CPU s / node / round (min-max)",
         "exchange CPU s / process / round", "CPU floor s / round",
         "exchange CPU floor s / round"], rows)


def profile_node(n: int, f: int, d: int, rounds: int, out: Path) -> str:
    """One more Jungle TLS run with py-spy on node 0 (non-blocking, Python frames, 200 Hz);
    the summary as Markdown, or why there is none."""
    why = prof.unavailable(native=False)
    if why is not None:
        return f"No profile: {why}."
    lp = subprocess.Popen(launch_command(n, f, d, rounds, plaintext=False), cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rec, msg = None, ""
    try:
        rec = prof.record(prof.find_process(lp.pid, ["--id", "0"]), out, native=False)
    except (TimeoutError, RuntimeError) as exc:
        msg = str(exc)
    finally:
        _, err = lp.communicate(timeout=600)
    if rec is not None:
        msg = prof.stop(rec)
    if lp.returncode != 0 or not out.exists():
        return f"No profile: the run failed ({err.decode()[-300:]} {msg[-300:]})."
    return prof.summarise(prof.read_raw(out), rate=200).markdown(10)


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, tuple[int, ...]]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_network",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=None, help="node processes (default 7)")
    ap.add_argument("--f", type=int, default=None, help="Byzantine bound (default 2)")
    ap.add_argument("--dim", type=int, default=None, help="coordinates (default 1000000)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds T >= 2 (default 6)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="interleaved repeats of the four contenders, best of them (default 2)")
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                    help="profile node 0 in one more TLS run with py-spy (default: on, except "
                         "under --quick or where py-spy cannot attach)")
    add_arguments(ap, "n = 4, f = 1, d = 10^4, 3 rounds, 1 repeat, no profile; never writes "
                      "BENCHMARKS.md")
    args = ap.parse_args(argv)
    defaults = (4, 1, 10_000, 3, 1) if args.quick else (7, 2, 1_000_000, 6, 2)
    sizes = tuple(default if value is None else value for value, default in
                  zip((args.n, args.f, args.dim, args.rounds, args.repeats), defaults,
                      strict=True))
    n, f, d, rounds, repeats = sizes
    if rounds < 2:
        ap.error("--rounds must be >= 2 (the time per round leaves the first round out)")
    if repeats < 1 or d < 1:
        ap.error("--repeats and --dim must be >= 1")
    if f < 0 or n < 3 * f + 1:
        ap.error(f"--n {n} and --f {f}: the agreement needs n >= 3f+1")
    if args.profile is None:
        args.profile = not args.quick
    return args, sizes


def main(argv: list[str] | None = None) -> None:
    args, (n, f, d, rounds, repeats) = parse(argv)
    payload = n * (n - 1) * 4 * d
    with tempfile.TemporaryDirectory() as tmp:
        raw, tls = single_pair(payload, 4 * d, Path(tmp) / "keys")
        runs, swaps = measure(n, f, d, rounds, repeats)
        summary = profile_node(n, f, d, rounds, Path(tmp) / "node0.txt") if args.profile \
            else "No profile (--no-profile or --quick)."
    cores = os.cpu_count()
    body = "\n".join([
        "## Network: trimmed-mean agreement rounds over loopback",
        "",
        f"Machine: {machine()}. Command: `{command()}`. The {n} processes share the "
        f"machine's {cores} logical cores.",
        "",
        f"n = {n} processes, f = {f}, d = {d} float32, all honest, T = {rounds} rounds; time "
        "per round: median over processes of (t_T - t_1)/(T-1) (min-max over nodes). The "
        f"baseline: the same {n} processes exchanging their vectors all-to-all at the same "
        "time, T rounds, over the same transport (`python -m benchmarks.exchange`); payload "
        f"per round n(n-1)·4d = {payload / 1e6:.1f} MB. Contenders interleaved, best of "
        f"{repeats}. The targets are the bold column: <= 2x.",
        "",
        table(n, d, runs, swaps),
        "",
        f"Each repeat's ratio to the exchange run just before it: {per_repeat(runs, swaps)}.",
        "",
        f"The former baseline, for continuity: the same {payload / 1e6:.1f} MB per round "
        f"through a single loopback socket pair, raw TCP {raw:.3g} s "
        f"({payload / raw / 1e9:.2f} GB/s) and TLS 1.3 {tls:.3g} s "
        f"({payload / tls / 1e9:.2f} GB/s), best of 3, same run: one sender and one "
        "receiver, not the work of n processes.",
        "",
        "Wire bytes count length prefixes, envelopes and acknowledgements, not TLS record "
        "overhead (about 22 bytes per 16 KiB record), against the minimum n(n-1) vector "
        "messages. Bytes above the minimum are mostly vectors sent twice: on a real network "
        "the small ECHO/READY messages overtake a megabyte VALUE, a node reaches its READY "
        "quorum first and FETCHes the value (broadcast's FETCH/REPLY path), so the excess "
        "varies from run to run. CPU floor = the processes' CPU time per round divided by "
        f"the machine's cores: with {n} processes on {cores} cores a round cannot be faster "
        "than that, whatever the transport. Byzantine nodes would add their own traffic; "
        "this is the honest cost.",
        "",
        "### Where a node's CPU goes",
        "",
        "py-spy on node 0 during one more (untimed) Jungle TLS run, Python frames, 200 Hz "
        "(`benchmarks/profile.py`: each busy sample charged to the innermost frame that "
        "matches a category; start-up and the output files written after the last round "
        "left out).",
        "",
        summary,
    ])
    finish("network", body, quick=args.quick, no_write=args.no_write,
           allow_load=args.allow_load)


if __name__ == "__main__":
    main()
