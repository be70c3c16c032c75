"""``python -m proofs verify [--json] [--budget SECONDS] [--protocol P] [--seed S]``.

Prints one row per (claim, n, f, d): the bound, the worst value the search found, the
tightness (worst / bound) and holds / VIOLATED (counterexample rows: ``reproduced``). Exit
code 1 when a bound is violated, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .verify import PROTOCOLS, table, verify


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m proofs",
                                description="machine checks of the bounds of THEORY.md")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="search worst cases and compare them with the bounds")
    v.add_argument("--json", action="store_true", help="a JSON list of rows")
    v.add_argument("--budget", type=float, default=60.0, help="search seconds in all")
    v.add_argument("--protocol", action="append", choices=PROTOCOLS,
                   help="only this protocol (repeatable; default: all)")
    v.add_argument("--seed", type=int, default=0, help="seed of the searches")
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.budget <= 0:
        p.error("--budget must be > 0")
    rows = verify(args.budget, tuple(args.protocol) if args.protocol else None, args.seed)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=1))
    else:
        print(table(rows))
    bad = [r for r in rows if r.holds is False]
    if bad and not args.json:
        print(f"\n{len(bad)} bound(s) VIOLATED", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
