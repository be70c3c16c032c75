"""Schedulers: the adversary's control of *when* messages are delivered (docs/architecture.md).

A scheduler may delay any message by any finite amount, or *hold* it (return ``None``);
it may not drop or forge. The simulator guarantees eventual delivery: held messages are
released when the scheduler heals (at ``heal_at`` in virtual time, if set) or, at the latest,
when nothing else is left to deliver. A run can also be cut before healing (a safety run).

Every random choice uses the simulator's one ``random.Random`` passed in as ``rng``.

A scheduler is part of the adversary: the simulator calls :meth:`Scheduler.bind` with its
omniscient :class:`~netsim.adversary.AdversaryContext` before the run, so a scheduler may
read every honest node's values (:class:`TargetedViews` does, through
``ctx.honest_values``; the others ignore it).

:data:`SCHEDULERS` is the registry by name; :func:`register_scheduler` adds to it (the
command lines list what is registered).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..messages import Message, Ready, Report, Send
from ..registry import build, register

if TYPE_CHECKING:
    from ..adversary import AdversaryContext

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

    def setup(self, n: int, honest: tuple[int, ...], byzantine_ids: tuple[int, ...]) -> None:
        """Called once by the simulator before the run."""

    def bind(self, ctx: AdversaryContext) -> None:
        """Receive the adversary's omniscient context (called once by the simulator, after
        :meth:`setup` and after the honest nodes are built). Default: ignored."""

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

    def setup(self, n, honest, byzantine_ids):  # type: ignore[override]
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

    def setup(self, n, honest, byzantine_ids):  # type: ignore[override]
        if self.victim is None:
            self.victim = max(honest)
        elif self.victim not in honest:
            raise ValueError(f"starve victim {self.victim} is not an honest node")

    def delay(self, src, dst, message, now, rng):  # type: ignore[override]
        if dst == self.victim and not self.healed:
            return None
        return rng.random()


def split_sides(honest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split ``h`` points in two halves along the direction of their widest pair.

    With ``(a, b) = argmax_{j,k} ||x_j - x_k||_2`` and ``u = (x_b - x_a)/||x_b - x_a||``,
    the points are ordered by their projection ``<x_j, u>`` (stably) and return
    ``(side, u)``: ``side[j]`` is 0 for the lower ``floor(h/2)`` points and 1 for the upper
    ``ceil(h/2)``, ``u`` the unit direction (zero when every point is equal, or ``h < 2``).
    The adversary uses it to push the honest nodes apart ("dissensus"): the value attacks of
    :mod:`agreement.attacks`, the round engine's omniscient views and :class:`TargetedViews`.
    """
    honest = np.asarray(honest)
    h = honest.shape[0]
    if h < 2:
        return np.zeros(h, dtype=int), np.zeros(honest.shape[1])
    g = honest @ honest.T
    sq = np.diag(g)
    dist = sq[:, None] + sq[None, :] - 2 * g
    a, b = np.unravel_index(int(np.argmax(dist)), dist.shape)
    u = honest[b] - honest[a]
    norm = float(np.linalg.norm(u))
    u = u / norm if norm > 0 else u
    proj = honest @ u
    order = np.argsort(proj, kind="stable")
    side = np.zeros(h, dtype=int)
    side[order[h // 2:]] = 1
    return side, u


class TargetedViews(Scheduler):
    """A scheduler that makes honest views differ as much as the witness gather allows.

    The message-level counterpart of the round engine's ``omniscient`` views (and the
    default of ``agreement.run`` and ``python -m agreement simulate``). Honest nodes are split
    in two sides along their widest direction (:func:`split_sides`, recomputed each round
    from their current vectors: the scheduler reads the adversary's omniscient context);
    the Byzantine nodes are split in a low half (the first ``ceil(b/2)`` Byzantine ids) and
    a high half, as the value attacks do. Delays per hop: honest instances ``[0, 0.3]``
    (delivered first, so every report names honest origins only); Byzantine instances
    ``[0.3, 0.6]``, except their READYs to the other side, which take ``slow + [0, 1]``;
    reports ``2 + [0, 0.5]`` (views form after each side has its own Byzantine values and
    before it can have the other side's). Each side's view then holds the honest values
    plus its own side's Byzantine values. Under the first-quorum gather (plain SENDs, the
    first ``n - f`` received form the view) Byzantine SENDs take ``[0, 0.1]`` (first in every
    view), honest SENDs ``0.1 + [0, 0.2]`` to their own side and ``0.5 + [0, 0.3]`` to the
    other: each view holds the Byzantine values (equivocated per side) and the honest values
    nearest its side, as the round engine's omniscient first-quorum views. It only delays:
    every message is eventually delivered.

    **Other protocols.** Targeting needs per-round vectors: it applies when the context's
    ``honest_values(0)`` is an ``(h, d)`` array (every honest node a
    :class:`netsim.protocol.ValueHistory` of equal-length 1-D vectors), as the agreement
    protocols are. For any other protocol (a single
    reliable broadcast, one witness round), for a message without an instance id, and when
    no context is bound (a scheduler used outside the simulator), every message gets a plain
    uniform delay in ``[0, 1]`` (as ``random``).
    """

    name = "targeted"

    def __init__(self, slow: float = 5.0) -> None:
        super().__init__()
        if not slow >= 0:
            raise ValueError(f"need slow >= 0, got {slow!r}")
        self.slow = slow
        self.ctx: AdversaryContext | None = None
        self.targeting = False
        self._sides: dict[int, dict[int, int]] = {}

    def bind(self, ctx: AdversaryContext) -> None:
        """Receive the adversary's omniscient context (called by the simulator) and decide
        whether the run's protocol can be targeted (see the class doc)."""
        self.ctx = ctx
        self.targeting = _has_values(ctx)

    def _side_of(self, rnd: int) -> dict[int, int]:
        sides = self._sides.get(rnd)
        if sides is None:
            assert self.ctx is not None
            ids = self.ctx.honest_ids
            rows = self.ctx.honest_values(rnd)
            if rows is None:  # not comparable: no side to favour
                sides = {}
            else:
                side, _ = split_sides(rows.astype(np.float64))
                sides = {i: int(s) for i, s in zip(ids, side, strict=True)}
            self._sides[rnd] = sides
        return sides

    def delay(self, src, dst, message, now, rng):  # type: ignore[override]
        if self.healed or not self.targeting or message is None:
            return rng.random()
        if isinstance(message, Report):
            return 2.0 + 0.5 * rng.random()
        instance = getattr(message, "instance", None)
        if instance is None:
            return rng.random()
        _, rnd, origin = instance
        assert self.ctx is not None
        byz = self.ctx.byzantine_ids
        if type(message) is Send:  # first-quorum gather: the first n - f SENDs are the view
            if origin in byz:
                return 0.1 * rng.random()
            sides = self._side_of(rnd)
            if sides.get(dst, -1) == sides.get(origin, -2):
                return 0.1 + 0.2 * rng.random()
            return 0.5 + 0.3 * rng.random()
        if origin not in byz:
            return 0.3 * rng.random()
        if type(message) is Ready and dst not in byz:
            k = byz.index(origin)
            origin_side = 0 if k < (len(byz) + 1) // 2 else 1
            if self._side_of(rnd).get(dst, origin_side) != origin_side:
                return self.slow + rng.random()
        return 0.3 + 0.3 * rng.random()


def _has_values(ctx: AdversaryContext | None) -> bool:
    """The context shows the honest nodes' vectors (:class:`netsim.protocol.ValueHistory`,
    e.g. agreement); a context that cannot (a real network's) does not."""
    if ctx is None or not ctx.honest_ids:
        return False
    try:
        return ctx.honest_values(0) is not None
    except NotImplementedError:
        return False


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


SchedulerFactory = Callable[..., Scheduler]
"""A scheduler class, or any ``factory(**params) -> Scheduler``."""

SCHEDULERS: dict[str, SchedulerFactory] = {
    "fifo": Fifo,
    "random": UniformDelay,
    "heavy-tail": HeavyTail,
    "partition": Partition,
    "starve": Starve,
    "targeted": TargetedViews,
}
"""Schedulers constructible by name (``reorder`` needs a function, so it is API-only);
extend it with :func:`register_scheduler`."""

SCHEDULER_HELP: dict[str, str] = {
    "fifo": "every message takes one time unit (global send order)",
    "random": "independent uniform delays in [0, 1] (arbitrary reordering)",
    "heavy-tail": "Pareto delays: most messages fast, a few very late",
    "partition": "two halves of the honest nodes cut off from each other until t = 10",
    "starve": "all messages to one honest node held until the others are done",
    "targeted": "agreement: each honest side gets its own Byzantine values first, the other "
    "side's late (views differ most); other protocols: as random",
}
"""One line per scheduler of :data:`SCHEDULERS`, for the command lines' listings."""

assert set(SCHEDULER_HELP) == set(SCHEDULERS)


def register_scheduler(name: str, factory: SchedulerFactory, *, help: str = "",
                       replace: bool = False) -> SchedulerFactory:
    """Register a scheduler: ``factory(**params)`` (a :class:`Scheduler` subclass, or a
    function) builds it for ``make_scheduler(name)``, ``agreement.run(scheduler=name)`` and
    ``--scheduler name``; ``help`` is its line in the command lines' listings. A scheduler
    may only delay or hold (never drop): the simulator releases what it holds at the
    latest at quiescence. A taken name is a ``ValueError`` unless ``replace``."""
    register(SCHEDULERS, name, factory, what="scheduler", replace=replace)
    SCHEDULER_HELP[name] = help or (factory.__doc__ or "").strip().split("\n")[0] or name
    return factory


def scheduler_names() -> list[str]:
    """The registered scheduler names, sorted."""
    return sorted(SCHEDULERS)


def make_scheduler(name: str, **params: Any) -> Scheduler:
    """Build a scheduler by name; raises ``ValueError`` listing the names for an unknown one."""
    return build(SCHEDULERS, name, params, what="scheduler", base=Scheduler,
                 base_name="netsim.sim.schedulers.Scheduler")
