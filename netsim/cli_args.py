"""What every Jungle command line shares for bad input: a one-line error and a flag's name.

The rule (README, "Command lines"): bad input gets one line ``error: ...`` on stderr that
names the flag to change, and a non-zero exit (2 for usage errors, as argparse), never a
traceback.

- :class:`ArgumentParser` is argparse with that one-line usage error (its subparsers
  inherit it), instead of the usage block followed by ``prog: error: ...``;
- the ``type=`` helpers (:func:`positive_int`, :func:`nonneg_int`, :func:`positive_float`,
  :func:`nonneg_float`) refuse a value out of range, or not a number, with a message that
  argparse prefixes with the flag (``argument --n: must be >= 1, got 0``);
- :func:`check_output_path` refuses an output file whose folder does not exist *before*
  a run, instead of a traceback after it;
- :class:`CommandLineError` is raised by the commands' own checks (``str`` is the message,
  with the flag); :func:`fail` prints it and returns the exit code;
- :func:`plugin_argv` loads the ``--plugin`` modules (and the ``jungle.plugins`` entry
  points, :mod:`netsim.plugins`) before a command builds its parser, whose choices and
  listings then read the registries (what the plugins registered included);
  :func:`add_plugin_argument` shows the flag in ``--help``; :func:`summary` is the one-line
  description of a registered object (its help text, else its docstring's first line).

A front end module: the libraries never import it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from .plugins import take_plugins


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line on stderr,
    ``error: MESSAGE (see `PROG --help`)``, with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


class CommandLineError(ValueError):
    """A bad command line found by a command's own checks; the message names the flag.
    ``code`` is the exit status :func:`fail` returns for it (2: usage, 3: the run failed)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def fail(message: object, code: int | None = None) -> int:
    """Print ``error: MESSAGE`` (its first line) on stderr and return ``code`` (default: the
    ``code`` of a :class:`CommandLineError`, else 2)."""
    if code is None:
        code = getattr(message, "code", 2) if isinstance(message, CommandLineError) else 2
    text = str(message).strip().splitlines()
    print(f"error: {text[0] if text else type(message).__name__}", file=sys.stderr)
    return code


def translate(text: object, table: tuple[tuple[str, str], ...]) -> str:
    """``text`` (an API error message) with each Python spelling of ``table`` replaced by
    its flag: ``(("unsafe=True", "--unsafe"),)`` turns ``pass unsafe=True`` into
    ``pass --unsafe``. Each command line keeps its own table."""
    out = str(text)
    for api, flag in table:
        out = out.replace(api, flag)
    return out


def parse_ids(text: str | None, flag: str = "--byzantine-ids") -> list[int] | None:
    """``"0,3"`` -> ``[0, 3]`` (sorted, without repeats), ``None`` -> ``None``;
    :class:`CommandLineError` naming ``flag`` for anything but comma-separated integers."""
    if text is None:
        return None
    try:
        return sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise CommandLineError(
            f"{flag} must be comma-separated integers, got {text!r}"
        ) from None


def byzantine_ids(text: str | None, n: int, f: int) -> list[int]:
    """The ids of ``--byzantine-ids`` (default ``0..f-1``), checked to be at most ``--f``
    ids in ``range(--n)``; :class:`CommandLineError` otherwise."""
    ids = parse_ids(text)
    if ids is None:
        return list(range(f))
    if len(ids) > f or any(not 0 <= i < n for i in ids):
        raise CommandLineError(f"--byzantine-ids {text}: at most --f {f} ids in range(--n {n})")
    return ids


def _number(text: str, kind: type) -> int | float:
    try:
        v = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if kind is float and v != v:  # NaN compares false with every bound
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}")
    return v


def positive_int(text: str) -> int:
    """An integer >= 1."""
    v = int(_number(text, int))
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def nonneg_int(text: str) -> int:
    """An integer >= 0."""
    v = int(_number(text, int))
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def positive_float(text: str) -> float:
    """A number > 0 (``inf`` allowed: no bound)."""
    v = float(_number(text, float))
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def nonneg_float(text: str) -> float:
    """A number >= 0 (``inf`` allowed)."""
    v = float(_number(text, float))
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


def check_output_path(flag: str, path: str | Path | None) -> None:
    """Raise :class:`CommandLineError` naming ``flag`` unless ``path`` (a file to write) is
    in an existing folder and is not itself a folder (``None``: nothing to check)."""
    if path is None:
        return
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise CommandLineError(f"{flag} {path}: the folder {parent} does not exist")
    if p.is_dir():
        raise CommandLineError(f"{flag} {path} is a folder; give a file name")


PLUGIN_HELP = ("import MODULE (a module name or a .py file) before parsing, so that the rules, "
               "attacks, strategies and schedulers it registers are valid values here "
               "(repeatable; installed 'jungle.plugins' entry points load by themselves)")


def add_plugin_argument(p: argparse.ArgumentParser) -> None:
    """``--plugin MODULE`` in ``p``'s ``--help`` (:func:`plugin_argv` has already loaded and
    removed them by the time ``p`` parses)."""
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE.py",
                   help=PLUGIN_HELP)


def plugin_argv(argv: Sequence[str] | None) -> list[str]:
    """``argv`` (default ``sys.argv[1:]``) after loading its ``--plugin`` modules and the
    installed entry points (:func:`netsim.plugins.take_plugins`), without those flags;
    :class:`CommandLineError` naming ``--plugin`` if one cannot be loaded."""
    try:
        return take_plugins(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        raise CommandLineError(str(exc)) from None


def summary(obj: Any, known: dict[str, str] | None = None, name: str = "") -> str:
    """One line about a registered object: ``known[name]`` if given, else the first line of
    its docstring (else its name)."""
    if known and name in known:
        return known[name]
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else (name or getattr(obj, "__name__", "?"))


def exit_with(main: Callable[[], int]) -> NoReturn:
    """``sys.exit(main())`` for a ``python -m PKG`` entry point, where a reader that closes
    the pipe early (``python -m agreement campaign ... | head``) ends the command quietly
    with status 141 (128 + SIGPIPE, as a shell reports it) instead of a ``BrokenPipeError``
    traceback; the rest of the output goes to ``/dev/null`` so the interpreter's final
    flush cannot raise again."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 141
    sys.exit(code)
