"""Registries that users extend: one rule for every ``register_*`` of Jungle.

Rules (:func:`agreement.rules.register_rule`), value attacks
(:func:`agreement.attacks.register_value_attack`), Byzantine strategies
(:func:`netsim.adversary.register_strategy`), schedulers
(:func:`netsim.sim.schedulers.register_scheduler`) and learning attacks
(:func:`learning.attacks.register_learning_attack`) are all plain ``dict`` tables from a name
to a factory; :func:`register` is how each of them adds an entry. A name that is already
taken is a ``ValueError`` (naming the table and the ``replace=True`` way out), so a plugin
cannot silently change what a built-in name means. The command lines read the tables when
they parse, so a registration made by a ``--plugin`` module (:mod:`netsim.plugins`) shows
up in their ``--help`` and in their "unknown X; known: ..." errors.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any, TypeVar

T = TypeVar("T")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def register(table: MutableMapping[str, T], name: str, obj: T, *, what: str,
             replace: bool = False) -> T:
    """Add ``table[name] = obj`` and return ``obj``.

    ``name`` must be a non-empty command-line word (letters, digits, ``_ . + -``, not
    starting with a sign) so that it can be passed as a flag's value; ``what`` names the
    table in errors ("value attack", "scheduler", ...). A name already in ``table`` raises
    ``ValueError`` unless ``replace`` is true.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"a {what} name must be a word of letters, digits and _.+- "
                         f"(usable as a command-line value), got {name!r}")
    if not callable(obj):
        raise ValueError(f"the {what} {name!r} must be callable, got {type(obj).__name__}")
    if name in table and not replace:
        raise ValueError(f"a {what} named {name!r} is already registered; pass replace=True "
                         "to replace it")
    table[name] = obj
    return obj


def build(table: MutableMapping[str, Any], name: str, params: dict[str, Any], *, what: str,
          base: type[T], base_name: str) -> T:
    """``table[name](**params)``, checked: an unknown name is the one :func:`unknown` error,
    and a factory that builds something else than a ``base`` is a ``ValueError`` naming it
    by its public path ``base_name`` (a plugin's mistake surfaces where it is built, not deep
    in a run)."""
    try:
        factory = table[name]
    except KeyError:
        raise unknown(what, name, table) from None
    obj = factory(**params)
    if not isinstance(obj, base):
        raise ValueError(f"the {what} registered as {name!r} built a {type(obj).__name__}, "
                         f"not a {base_name}")
    return obj


def unknown(what: str, name: Any, known: Any) -> ValueError:
    """The one "unknown X" error: ``unknown WHAT 'NAME'; known: a, b, c`` (sorted)."""
    return ValueError(f"unknown {what} {name!r}; known: {', '.join(sorted(known))}")


__all__ = ["build", "register", "unknown"]
