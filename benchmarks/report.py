"""Write one benchmark's results into its own section of BENCHMARKS.md.

Each benchmark script owns the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``;
running it again replaces only that section, so scripts never overwrite each other's figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import sys
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def loadavg() -> str:
    """The load averages over 1, 5 and 15 minutes (``os.getloadavg``, what ``uptime`` shows).
    A load above what the benchmark itself uses means other work shared the machine, and the
    times are then upper bounds of an idle machine's."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


START_LOAD = loadavg()  # when the benchmark started: it imports this module first
START_LOAD_1MIN = os.getloadavg()[0]

SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16",
              "avx512_fp16", "amx_tile")
"""The CPU flags worth naming beside a figure: the vector units numpy's, numba's and torch's
kernels dispatch on (an AVX-512 machine runs a column kernel up to twice as wide)."""


def _cpuinfo() -> tuple[str, list[str]]:
    cpu, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and cpu in ("", platform.machine()):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    have = set(line.split(":", 1)[1].split())
                    flags = [f for f in SIMD_FLAGS if f in have]
    except OSError:
        pass
    return cpu, flags


def machine() -> str:
    """A one-line description of the machine the figures come from: CPU model, its vector
    flags (:data:`SIMD_FLAGS`), logical cores, Python and OS, and the load when the benchmark
    started (:data:`START_LOAD`) and now, at the end (the figures of a loaded machine are
    upper bounds)."""
    cpu, flags = _cpuinfo()
    return (
        f"{cpu} (flags: {' '.join(flags) or 'unknown'}), {os.cpu_count()} logical cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; "
        f"load average (1, 5, 15 min) {START_LOAD} at the start, {loadavg()} at the end"
    )


def add_arguments(ap: argparse.ArgumentParser, quick_help: str) -> None:
    """The options every benchmark has: ``--quick`` (tiny sizes, a check that it runs; never
    writes), ``--no-write`` (full sizes, printed only) and ``--allow-load`` (write
    BENCHMARKS.md even from a machine whose load was above its cores at the start)."""
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--allow-load", action="store_true",
                    help="write BENCHMARKS.md even if the machine's 1-minute load was above "
                         "its logical cores when the benchmark started")


def command() -> str:
    """The command line that produced the figures, in module form relative to the
    repository (``python -m benchmarks.bench_rules --quick``), whether it ran as ``python -m``
    (whose ``sys.argv[0]`` is the script's absolute path), as ``jungle bench NAME`` or as a
    script."""
    module = "benchmarks." + Path(sys.argv[0]).stem
    return " ".join(["python", "-m", module, *(shlex.quote(a) for a in sys.argv[1:])])


def overloaded(load: float | None = None, cores: int | None = None) -> bool:
    """Whether the machine was busier than its cores when the benchmark started: a 1-minute
    load above the logical core count means other work took CPU time from the figures."""
    load = START_LOAD_1MIN if load is None else load
    return load > (cores or os.cpu_count() or 1)


def finish(name: str, body: str, *, quick: bool, no_write: bool,
           allow_load: bool = False) -> None:
    """Print ``body`` and write it into BENCHMARKS.md's section ``name``, except under
    ``--quick`` (tiny sizes, one repeat: a check that the benchmark runs, never figures to
    publish) or ``--no-write``, and except from an overloaded machine (:func:`overloaded`)
    unless ``--allow-load`` was given."""
    print(body)
    if quick or no_write:
        why = "--quick" if quick else "--no-write"
        print(f"\n({why}: BENCHMARKS.md not written)")
    elif overloaded() and not allow_load:
        print(f"\n(BENCHMARKS.md not written: the 1-minute load was {START_LOAD_1MIN:.2f} at "
              f"the start, above the {os.cpu_count()} logical cores; rerun on a quieter "
              "machine, or pass --allow-load to write these figures anyway)")
    else:
        write_section(name, body)
        print(f"\n(written to the section {name!r} of {BENCHMARKS_MD.name})")


def write_section(name: str, body: str, path: Path | None = None) -> None:
    """Replace (or append) the section ``name`` of BENCHMARKS.md (or ``path``) with ``body``."""
    path = BENCHMARKS_MD if path is None else path
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else (
        text.rstrip() + "\n\n" + block + "\n"
    )
    path.write_text(text)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)
