"""``jungle <command> [options]``: dispatch to the command lines of the packages.

| jungle command | runs |
|---|---|
| ``broadcast`` | ``python -m netsim broadcast`` |
| ``simulate`` | ``python -m netsim simulate`` |
| ``verify`` | ``python -m proofs verify`` |
| ``keys`` | ``python -m netsim keys`` |
| ``node`` | ``python -m netsim node`` |
| ``launch`` | ``python -m netsim launch`` |
| ``train`` / ``compare`` / ``demo`` | ``python -m learning train`` / ``compare`` / ``demo`` |
| ``bench NAME`` | ``python -m benchmarks.bench_NAME`` (from the root of a checkout) |
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "broadcast": ("netsim.cli", "one reliable broadcast or witness round under attack"),
    "simulate": ("netsim.cli", "one averaging-agreement run under attack"),
    "verify": ("proofs.cli", "worst-case checks of the bounds of THEORY.md"),
    "train": ("learning.cli", "LEARN (collaborative SGD) or a baseline, under attack"),
    "compare": ("learning.cli", "grid attacks x methods: LEARN, D-SGD, trusted server, local"),
    "demo": ("learning.cli", "the main demo: 10 nodes, 3 Byzantine, digits, several attacks"),
    "keys": ("netsim.cli", "a cluster CA, node certificates and cluster.toml"),
    "node": ("netsim.cli", "one node of the real network (mutual TLS over TCP)"),
    "launch": ("netsim.cli", "n node processes on loopback, reported like simulate"),
    "bench": ("jungle_cli.bench", "a benchmark of this checkout (results in BENCHMARKS.md)"),
}


def _usage() -> str:
    width = max(len(c) for c in COMMANDS)
    rows = "\n".join(f"  {c:<{width}}  {h}" for c, (_, h) in sorted(COMMANDS.items()))
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
    module = __import__(COMMANDS[cmd][0], fromlist=["main"])
    entry: Callable[[Sequence[str]], int] = module.main
    return entry([cmd, *rest])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
