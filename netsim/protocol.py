"""The sans-IO protocol interface (docs/architecture.md, "The core idea").

A protocol is a deterministic state machine at one node. It never touches sockets, clocks,
threads or global randomness: time is passed in (``now``) and every effect is returned as a
:class:`Step`. The same objects run in the simulator (:mod:`netsim.sim.simulator`) and over a
real network.

Misbehaviour of a peer is a :class:`Fault` value in the step, never an exception.
"""

from __future__ import annotations

import typing
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, runtime_checkable

from .messages import Message

ALL = -1
"""Target meaning every node, the sender itself included (a node's message to itself is
delivered locally by the runtime and is never on the wire)."""

Target = int
"""A node id in ``range(n)``, or :data:`ALL`."""


@dataclass(frozen=True, slots=True)
class Fault:
    """A recorded misbehaviour: ``sender`` did something of ``kind`` (a stable short tag)."""

    sender: int
    kind: str
    detail: str = ""


class Step:
    """What one call of a protocol produced: messages to send, outputs, faults.

    A step returned to you is read-only by convention: merge it into a step of your own with
    :meth:`extend` rather than appending to its lists (:data:`EMPTY` is shared and immutable).
    """

    __slots__ = ("faults", "messages", "outputs")

    def __init__(
        self,
        messages: list[tuple[Target, Message]] | None = None,
        outputs: list[Any] | None = None,
        faults: list[Fault] | None = None,
    ) -> None:
        self.messages: Sequence[tuple[Target, Message]] = [] if messages is None else messages
        self.outputs: Sequence[Any] = [] if outputs is None else outputs
        self.faults: Sequence[Fault] = [] if faults is None else faults

    def extend(self, other: Step) -> Step:
        """Append ``other``'s messages, outputs and faults to this step; return self."""
        if other.messages:
            self.messages.extend(other.messages)  # type: ignore[attr-defined]
        if other.outputs:
            self.outputs.extend(other.outputs)  # type: ignore[attr-defined]
        if other.faults:
            self.faults.extend(other.faults)  # type: ignore[attr-defined]
        return self

    def __bool__(self) -> bool:
        return bool(self.messages or self.outputs or self.faults)

    def __repr__(self) -> str:
        return (
            f"Step(messages={list(self.messages)!r}, outputs={list(self.outputs)!r}, "
            f"faults={list(self.faults)!r})"
        )


EMPTY = Step((), (), ())  # type: ignore[arg-type]
"""The shared empty step (its sequences are tuples, so it cannot be mutated)."""


class Protocol(ABC):
    """One node's side of a protocol. Subclasses set ``node_id``, ``n`` and ``f``."""

    node_id: int
    n: int
    f: int

    @abstractmethod
    def start(self, now: float) -> Step:
        """Called once, before any message is handled."""

    @abstractmethod
    def handle(self, sender: int, message: Message, now: float) -> Step:
        """Handle one authenticated message from ``sender``."""

    @property
    def done(self) -> bool:
        """True once this node's output is final (it may still serve others)."""
        return False


def require_resilience(
    n: int, f: int, k: int, what: str, unsafe: bool = False
) -> None:
    """Check ``n >= k*f + 1`` (and ``0 <= f``, ``n >= 1``) for ``what``.

    Raises ``ValueError`` naming the condition, unless ``unsafe`` is true, in which case it
    only warns (used to demonstrate what breaks below the resilience bound).
    """
    if n < 1 or f < 0:
        raise ValueError(f"{what} needs n >= 1 and f >= 0, got n={n}, f={f}")
    if f >= n:
        raise ValueError(f"{what} needs f < n, got n={n}, f={f}")
    if n < k * f + 1:
        msg = f"{what} needs n >= {k}f+1 (n={n}, f={f}: {k}f+1 = {k * f + 1})"
        if not unsafe:
            raise ValueError(msg + "; pass unsafe=True to run it anyway")
        warnings.warn(msg + "; running with unsafe=True", RuntimeWarning, stacklevel=3)


@runtime_checkable
class ValueHistory(typing.Protocol):
    """What a protocol that iterates on vectors exposes to the adversary, read-only.

    The adversary's context (:class:`netsim.adversary.AdversaryContext`) reads honest values
    only through this interface, never through a protocol's own attributes, so strategies
    stay valid when a protocol's internals change. Implemented by
    :class:`agreement.protocol.AveragingAgreement` (``x_i^r`` of docs/theory.md §5).

    - ``value_at(r)``: this node's vector entering round ``r`` (a 1-D array, ``r >= 0``); a
      node that has not reached round ``r`` yet returns its latest one;
    - ``view_at(r)``: the view this node applied its rule to in round ``r``, as a mapping
      ``origin -> vector`` in increasing origin order, or ``None`` while that view is not
      formed yet.

    Callers must not mutate what these return.
    """

    def value_at(self, round: int) -> Any:
        """The vector entering round ``round`` (the latest one if not there yet)."""
        ...

    def view_at(self, round: int) -> Any:
        """The view of round ``round`` (``origin -> vector``), or ``None`` if not formed."""
        ...
