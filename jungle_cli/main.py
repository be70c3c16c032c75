"""``jungle <command> [options]``: dispatch to the command lines of the packages.

The one front end that spans the packages; it only dispatches (each command has one home,
and the module is imported only when its command runs):

| jungle command | runs |
|---|---|
| ``broadcast`` | ``python -m broadcast run`` |
| ``simulate`` | ``python -m agreement simulate`` |
| ``node`` | ``python -m agreement node`` |
| ``launch`` | ``python -m agreement launch`` |
| ``campaign`` | ``python -m agreement campaign`` |
| ``keys`` | ``python -m netsim keys`` |
| ``verify`` | ``python -m proofs verify`` |
| ``train`` / ``compare`` / ``demo`` | ``python -m learning train`` / ``compare`` / ``demo`` |
| ``bench NAME`` | ``python -m benchmarks.bench_NAME`` (from the root of a checkout) |
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

COMMANDS: dict[str, tuple[str, str, str]] = {
    "broadcast": ("broadcast.cli", "run", "one reliable broadcast or witness round under attack"),
    "simulate": ("agreement.cli", "simulate", "one averaging-agreement run under attack"),
    "node": ("agreement.cli", "node", "one node of the real network (mutual TLS over TCP)"),
    "launch": ("agreement.cli", "launch", "n node processes on loopback, reported like simulate"),
    "campaign": ("agreement.cli", "campaign",
                 "a study: a grid of seeded simulations, on a process pool or a Dask cluster"),
    "keys": ("netsim.cli", "keys", "a cluster CA, node certificates and cluster.toml"),
    "verify": ("proofs.cli", "verify", "worst-case checks of the bounds of docs/theory.md"),
    "train": ("learning.cli", "train", "LEARN (collaborative SGD) or a baseline, under attack"),
    "compare": ("learning.cli", "compare",
                "grid attacks x methods: LEARN, D-SGD, trusted server, local"),
    "demo": ("learning.cli", "demo",
             "the main demo: 10 nodes, 3 Byzantine, digits, several attacks"),
    "bench": ("jungle_cli.bench", "bench",
              "a benchmark of this checkout (results in BENCHMARKS.md)"),
}
"""``jungle COMMAND`` -> (module whose ``main(argv)`` runs it, its subcommand there, help)."""


def _usage() -> str:
    width = max(len(c) for c in COMMANDS)
    rows = "\n".join(f"  {c:<{width}}  {h}" for c, (_, _, h) in sorted(COMMANDS.items()))
    return (
        "usage: jungle COMMAND [options]\n\n"
        "Byzantine-resilient collaborative learning as averaging agreement.\n\n"
        f"commands:\n{rows}\n\n"
        "`jungle COMMAND --help` documents each command."
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    cmd, rest = args[0], args[1:]
    if cmd not in COMMANDS:
        print(f"jungle: unknown command {cmd!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module, sub, _ = COMMANDS[cmd]
    entry: Callable[[Sequence[str]], int] = importlib.import_module(module).main
    return entry([sub, *rest])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
