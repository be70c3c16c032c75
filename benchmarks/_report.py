"""Write one benchmark's results into its own section of BENCHMARKS.md.

Each benchmark script owns the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``;
running it again replaces only that section, so scripts never overwrite each other's figures.
"""

from __future__ import annotations

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


def machine() -> str:
    """A one-line description of the machine the figures come from, with its load when the
    benchmark started (:data:`START_LOAD`) and now, at the end (the figures of a loaded
    machine are upper bounds)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average (1, 5, 15 min) {START_LOAD} "
        f"at the start, {loadavg()} at the end"
    )


def command() -> str:
    """The command line that produced the figures, in module form relative to the
    repository (``python -m benchmarks.bench_rules --quick``), whether it ran as ``python -m``
    (whose ``sys.argv[0]`` is the script's absolute path), as ``jungle bench NAME`` or as a
    script."""
    module = "benchmarks." + Path(sys.argv[0]).stem
    return " ".join(["python", "-m", module, *(shlex.quote(a) for a in sys.argv[1:])])


def finish(name: str, body: str, *, quick: bool, no_write: bool) -> None:
    """Print ``body`` and write it into BENCHMARKS.md's section ``name``, except under
    ``--quick`` (tiny sizes, one repeat: a check that the benchmark runs, never figures to
    publish) or ``--no-write``."""
    print(body)
    if quick or no_write:
        why = "--quick" if quick else "--no-write"
        print(f"\n({why}: BENCHMARKS.md not written)")
    else:
        write_section(name, body)
        print(f"\n(written to the section {name!r} of {BENCHMARKS_MD.name})")


def write_section(name: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) the section ``name`` of BENCHMARKS.md with ``body``."""
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
