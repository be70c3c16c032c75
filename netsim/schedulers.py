"""Schedulers: the adversary's control of *when* messages are delivered (DESIGN.md).

A scheduler may delay any message by any finite amount, or *hold* it (return ``None``);
it may not drop or forge. The simulator guarantees eventual delivery: held messages are
released when the scheduler heals (at ``heal_at`` in virtual time, if set) or, at the latest,
when nothing else is left to deliver. A run can also be cut before healing (a safety run).

Every random choice uses the simulator's one ``random.Random`` passed in as ``rng``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from .messages import Message

Hold = None
"""Returned by :meth:`Scheduler.delay` to hold a message until the scheduler heals."""


class Scheduler:
    """Base scheduler: unit delay for every message (global FIFO order).

    ``delay(src, dst, message, now, rng)`` returns the delay (>= 0) before ``message``
    (``None`` for raw bytes that are not a valid message) from ``src`` reaches ``dst``, or
    ``None`` to hold it. ``healed`` is set by the simulator once the scheduler heals; after
    that the scheduler must not hold anything.
    """

    name = "fifo"
    heal_at: float | None = None

    def __init__(self) -> None:
        self.healed = False

    def setup(self, n: int, honest: tuple[int, ...], byzantine: tuple[int, ...]) -> None:
        """Called once by the simulator before the run."""

    def delay(
        self, src: int, dst: int, message: Message | None, now: float, rng: random.Random
    ) -> float | None:
        return 1.0

    def release_delay(self, src: int, dst: int, now: float, rng: random.Random) -> float:
        """Delay given to a held message when it is released."""
        return rng.random()

    def describe(self) -> str:
        return self.name


class Fifo(Scheduler):
    """Every message takes exactly one time unit: messages arrive in the order sent."""

    name = "fifo"


class UniformDelay(Scheduler):
    """Independent delays uniform in ``[low, high]``: arbitrary reordering."""

    name = "random"

    def __init__(self, low: float = 0.0, high: float = 1.0) -> None:
        super().__init__()
        if not 0 <= low <= high:
            raise ValueError("need 0 <= low <= high")
        self.low, self.high = low, high

    def delay(self, src, dst, message, now, rng):  # type: ignore[override]
        return self.low + (self.high - self.low) * rng.random()


class HeavyTail(Scheduler):
    """Pareto delays ``scale * Pareto(alpha)``: most messages fast, a few very late."""

    name = "heavy-tail"

    def __init__(self, alpha: float = 1.2, scale: float = 0.1) -> None:
        super().__init__()
        if alpha <= 0 or scale <= 0:
            raise ValueError("need alpha > 0 and scale > 0")
        self.alpha, self.scale = alpha, scale

    def delay(self, src, dst, message, now, rng):  # type: ignore[override]
        return self.scale * rng.paretovariate(self.alpha)


class Partition(Scheduler):
    """Split the nodes into groups; messages across groups are held until ``heal_at``.

    ``groups`` defaults to two halves of the honest nodes, the Byzantine nodes reaching
    both sides. Within a group, delays are uniform in ``[0, 1]``.
    """

    name = "partition"

    def __init__(
        self, groups: Iterable[Iterable[int]] | None = None, heal_at: float | None = 10.0
    ) -> None:
        super().__init__()
        self.groups = None if groups is None else [frozenset(g) for g in groups]
        self.heal_at = heal_at
        self._side: dict[int, int] = {}

    def setup(self, n, honest, byzantine):  # type: ignore[override]
        if self.groups is None:
            half = len(honest) // 2
            self.groups = [frozenset(honest[:half]), frozenset(honest[half:])]
        for g, members in enumerate(self.groups):
            for node in members:
                self._side[node] = g

    def delay(self, src, dst, message, now, rng):  # type: ignore[override]
        a, b = self._side.get(src), self._side.get(dst)
        if not self.healed and a is not None and b is not None and a != b:
            return None
        return rng.random()


class Starve(Scheduler):
    """Hold every message *to* ``victim`` until the others have nothing left to do.

    The victim (default: the highest honest id) is the honest node that the asynchronous
    model allows the adversary never to hear in time: the others must finish without it.
    """

    name = "starve"

    def __init__(self, victim: int | None = None) -> None:
        super().__init__()
        self.victim = victim

    def setup(self, n, honest, byzantine):  # type: ignore[override]
        if self.victim is None:
            self.victim = max(honest)
        elif self.victim not in honest:
            raise ValueError(f"starve victim {self.victim} is not an honest node")

    def delay(self, src, dst, message, now, rng):  # type: ignore[override]
        if dst == self.victim and not self.healed:
            return None
        return rng.random()


PriorityFn = Callable[[int, int, "Message | None", float, random.Random], "float | None"]


class Reorder(Scheduler):
    """Delays from a user-supplied function ``priority(src, dst, message, now, rng)``.

    It returns the delay (lower = sooner) or ``None`` to hold the message until quiescence;
    this is how targeted schedules (for example ones that maximise disagreement) are written.
    """

    name = "reorder"

    def __init__(self, priority: PriorityFn) -> None:
        super().__init__()
        self.priority = priority

    def delay(self, src, dst, message, now, rng):  # type: ignore[override]
        if self.healed:
            d = self.priority(src, dst, message, now, rng)
            return rng.random() if d is None else d
        return self.priority(src, dst, message, now, rng)


SCHEDULERS: dict[str, Callable[..., Scheduler]] = {
    "fifo": Fifo,
    "random": UniformDelay,
    "heavy-tail": HeavyTail,
    "partition": Partition,
    "starve": Starve,
}
"""Schedulers constructible by name (``reorder`` needs a function, so it is API-only)."""


def make_scheduler(name: str, **params: Any) -> Scheduler:
    """Build a scheduler by name; raises ``ValueError`` listing the names for an unknown one."""
    try:
        cls = SCHEDULERS[name]
    except KeyError:
        raise ValueError(
            f"unknown scheduler {name!r}; known: {', '.join(sorted(SCHEDULERS))}"
        ) from None
    return cls(**params)
