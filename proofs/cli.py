"""``python -m proofs verify [--json] [--budget N] [--seconds S] [--protocol P] [--seed S]``.

Prints one row per (claim, n, f, d) of the claims table (:mod:`agreement.claims`) and the
lower-bound and counterexample rows: the bound, the worst value the search found in ``N``
evaluations (the rule applied to one view; the same output on every machine for the same
seed), the tightness (worst / bound), the best known construction and worst / best, and the
status: ``holds``, ``VIOLATED``, ``search-too-short`` (below 0.9 of the best known
construction), ``no-claim`` (counterexample rows: ``reproduced``). Exit code 1 when a bound
is violated, 2 on bad usage. On a terminal a progress bar over the rows runs on stderr; it
stays off under ``--json``, ``--no-progress`` or when stderr is not a terminal (a pipe, a
file, CI), so the output is only the table or the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from .verify import DEFAULT_BUDGET, PROTOCOLS, table, verify


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m proofs",
                                description="machine checks of the bounds of docs/theory.md")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="search worst cases and compare them with the bounds")
    v.add_argument("--json", action="store_true", help="a JSON list of rows")
    v.add_argument("--budget", type=int, default=DEFAULT_BUDGET, metavar="N",
                   help=f"evaluations (the rule on one view) per searched row (default "
                   f"{DEFAULT_BUDGET}); deterministic: the same rows on every machine")
    v.add_argument("--seconds", type=float, default=None, metavar="S",
                   help="safety cap on the whole search in seconds (rows it cuts short are "
                   "marked capped and depend on the machine's speed); default: none")
    v.add_argument("--protocol", action="append", choices=PROTOCOLS,
                   help="only this protocol (repeatable; default: all)")
    v.add_argument("--seed", type=int, default=0, help="seed of the searches")
    v.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is shown only on a terminal, never with --json)")
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.budget < 1:
        p.error("--budget must be a number of evaluations >= 1")
    if args.seconds is not None and not args.seconds > 0:
        p.error("--seconds must be > 0")
    t0 = time.perf_counter()
    progress = not (args.json or args.no_progress) and sys.stderr.isatty()
    rows = verify(args.budget, tuple(args.protocol) if args.protocol else None, args.seed,
                  seconds=args.seconds, progress=progress)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=1))
    else:
        print(table(rows))
        print(f"\n{sum(r.evaluations for r in rows)} evaluations, seed {args.seed}, "
              f"{time.perf_counter() - t0:.1f} s")
    bad = [r for r in rows if r.status == "violated"]
    if bad and not args.json:
        print(f"\n{len(bad)} bound(s) VIOLATED", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
