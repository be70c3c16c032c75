"""User plugins for the command lines: modules that register rules, attacks, strategies or
schedulers before a command parses its flags.

Every Jungle command line (``python -m broadcast|agreement|learning``, ``jungle ...``) takes
``--plugin MODULE_OR_FILE.py`` (repeatable): an importable module name
(``--plugin mypkg.attacks``) or a path to a Python file (``--plugin my_attack.py``), imported
*before* the rest of the command line is parsed, so that what it registers
(:func:`netsim.adversary.register_strategy`,
:func:`agreement.attacks.register_value_attack`, ...) is a valid ``--strategy``/``--attack``
/``--scheduler`` value and shows in ``--help``. Installed packages can do the same without a
flag through the entry-point group :data:`ENTRY_POINT_GROUP` (``jungle.plugins``): each
entry point is loaded once, at the first command line that looks for plugins.

A plugin is ordinary Python, run with the command's privileges: load only code you trust.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

ENTRY_POINT_GROUP = "jungle.plugins"
"""The entry-point group whose entry points every command line loads."""

FLAG = "--plugin"

_loaded: dict[str, ModuleType] = {}
_entry_points_done = False


class PluginError(ValueError):
    """A plugin could not be loaded; the message names ``--plugin`` and the cause."""


def load_plugin(spec: str) -> ModuleType:
    """Import the plugin ``spec`` (a module name, or a path ending in ``.py``) once, and
    return its module; :class:`PluginError` naming the flag if it cannot be imported."""
    if spec in _loaded:
        return _loaded[spec]
    try:
        if spec.endswith(".py"):
            path = Path(spec)
            if not path.is_file():
                raise PluginError(f"{FLAG} {spec}: no such file")
            name = f"jungle_plugin_{path.stem}_{len(_loaded)}"
            module_spec = importlib.util.spec_from_file_location(name, path)
            if module_spec is None or module_spec.loader is None:  # pragma: no cover
                raise PluginError(f"{FLAG} {spec}: not a Python file")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(spec)
    except PluginError:
        raise
    except Exception as exc:  # a plugin's own error: one line, with its cause
        raise PluginError(f"{FLAG} {spec}: cannot load it: {type(exc).__name__}: {exc}"
                          ) from exc
    _loaded[spec] = module
    return module


def load_entry_points() -> list[str]:
    """Load every entry point of :data:`ENTRY_POINT_GROUP` (once per process); return their
    names. A failing one is a :class:`PluginError` naming it."""
    global _entry_points_done
    if _entry_points_done:
        return []
    _entry_points_done = True
    names = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:
            raise PluginError(f"the {ENTRY_POINT_GROUP} entry point {ep.name!r} ({ep.value}) "
                              f"cannot be loaded: {type(exc).__name__}: {exc}") from exc
        names.append(ep.name)
    return names


def take_plugins(argv: Sequence[str]) -> list[str]:
    """Load the installed entry points and every ``--plugin X`` / ``--plugin=X`` of
    ``argv``, in order; return ``argv`` without them (what the parser still has to read).
    ``--plugin`` without a value is a :class:`PluginError`. Arguments after ``--`` are
    left alone."""
    load_entry_points()
    rest: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg == FLAG:
            if i + 1 >= len(args) or args[i + 1].startswith("-"):
                raise PluginError(f"{FLAG} needs a module name or a .py file")
            load_plugin(args[i + 1])
            i += 2
            continue
        if arg.startswith(FLAG + "="):
            load_plugin(arg[len(FLAG) + 1:])
            i += 1
            continue
        rest.append(arg)
        i += 1
    return rest


__all__ = ["ENTRY_POINT_GROUP", "PluginError", "load_entry_points", "load_plugin",
           "take_plugins"]
