"""Renamed keywords and attributes, kept for one release with a ``DeprecationWarning``.

The glossary (README.md, "Glossary") names Byzantine *ids* ``byzantine_ids`` and Byzantine
*behaviour* ``strategy`` (``attack`` for value and learning attacks). The old spelling
``byzantine`` meant either; it still works for this release only, and every use warns with
the new name:

    @renamed_keywords(byzantine="byzantine_ids")
    def __init__(self, n, f, *, byzantine_ids=()): ...

    class SimResult:
        byzantine = deprecated_alias("byzantine_ids")

Giving both the old and the new keyword is a ``TypeError`` (which one was meant is unclear).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def warn_renamed(where: str, old: str, new: str, kind: str = "keyword", stacklevel: int = 3
                 ) -> None:
    """Warn that ``where``'s ``old`` is now ``new`` (a ``DeprecationWarning``)."""
    warnings.warn(
        f"{where}: the {kind} {old!r} is deprecated and will be removed in the next release; "
        f"use {new!r}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed_keywords(**renames: str) -> Callable[[F], F]:
    """Accept each old keyword ``old=`` of ``renames`` (``old="new"``) as ``new=``, with a
    ``DeprecationWarning`` naming ``new``; both at once is a ``TypeError``."""

    def decorate(func: F) -> F:
        where = func.__qualname__.removesuffix(".__init__")

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{where}: give {new}= only ({old}= is its "
                                        f"deprecated name)")
                    warn_renamed(where, old, new)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


class deprecated_alias:
    """A read-only attribute ``old`` that returns ``self.<new>`` with a ``DeprecationWarning``
    (``old`` is the name it is bound to in the class body)."""

    def __init__(self, new: str) -> None:
        self.new = new
        self.old = "?"
        self.__doc__ = f"Deprecated: use ``{new}``."

    def __set_name__(self, owner: type, name: str) -> None:
        self.old = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        warn_renamed(type(obj).__name__, self.old, self.new, kind="attribute")
        return getattr(obj, self.new)

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(f"{type(obj).__name__}.{self.old} is read-only and deprecated: "
                             f"set {self.new!r}")
