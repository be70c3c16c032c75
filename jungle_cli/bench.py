"""``jungle bench NAME [options]``: run one of the benchmarks of a Jungle checkout.

The benchmarks live in the repository's ``benchmarks/`` folder (they are not installed with
the package: they compare against baselines and write ``BENCHMARKS.md``), so this command
runs from the root of a checkout. ``NAME`` is one of :data:`BENCHES`; the options are the
benchmark's own (``jungle bench rules --help``). Every benchmark takes ``--quick`` (tiny sizes,
one repeat, a few seconds: a check that it runs; it never writes BENCHMARKS.md) and
``--no-write`` (full sizes, printed only) and ``--allow-load`` (write BENCHMARKS.md even from a
machine whose load was above its cores).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

BENCHES: dict[str, str] = {
    "broadcast": "simulated reliable broadcast, messages per second",
    "rules": "robust rules against their usual implementations",
    "agreement": "full agreements: message level against round level",
    "learning": "LEARN against D-SGD: time per step (and --accuracy: the grids)",
    "network": "agreement rounds over loopback against the same all-to-all exchange",
    "backend": "CollaborativeSGD over TLS against DDP over gloo, per step",
    "campaign": "campaigns: small runs per second per core, 1 and 2 workers",
}


def _usage() -> str:
    rows = "\n".join(f"  {k:<10} {v}" for k, v in BENCHES.items())
    return (f"usage: jungle bench NAME [--quick] [--no-write] [options]\n\nbenchmarks:\n{rows}"
            "\n\n--quick: tiny sizes, one repeat, a few seconds; never writes BENCHMARKS.md\n"
            "--no-write: the full run, printed only\n"
            "options: the benchmark's own (jungle bench NAME --help)")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "bench":
        args = args[1:]
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in BENCHES:
        print(f"jungle bench: unknown benchmark {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(f"benchmarks.bench_{name}")
    except ModuleNotFoundError as exc:
        if exc.name not in ("benchmarks", f"benchmarks.bench_{name}"):
            raise
        print("jungle bench: run it from the root of a Jungle checkout (benchmarks/ is not "
              "installed with the package)", file=sys.stderr)
        return 2
    saved = sys.argv
    sys.argv = [f"benchmarks/bench_{name}.py", *rest]
    try:
        module.main()
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
