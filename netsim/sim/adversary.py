"""Byzantine strategies: what the (at most f) Byzantine nodes send (docs/architecture.md, "The
adversary").

Strategy authors import from the public module :mod:`netsim.adversary` (the same classes,
the typed :class:`~netsim.adversary.AdversaryContext` and :func:`register_strategy`).

A strategy is omniscient, not omnipotent: through the
:class:`~netsim.adversary.AdversaryContext` it reads all honest values and views and all
in-flight messages, and it writes messages only under the Byzantine ids. It cannot forge an honest
sender (the simulator refuses) nor drop honest messages (that is the scheduler's domain, and
the scheduler may only delay).

Most built-ins are made of *cores*: honest protocol instances (from the run's own factory)
run under a Byzantine id, whose outgoing messages the strategy routes, withholds, duplicates
or corrupts. One mechanism serves every layer: equivocation, twins, crashes and selective
sends work the same on reliable broadcast, witnesses and agreement protocols, since netsim
never needs to know what the messages mean.

Every strategy is bounded (a budget of extra messages), so runs always quiesce.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..codec import encode
from ..dispatch import destinations
from ..messages import (
    DIGEST_SIZE,
    Echo,
    Message,
    Ready,
    Reply,
    Value,
    with_round,
)
from ..protocol import ALL, Protocol
from ..registry import build, register

if TYPE_CHECKING:
    from ..adversary import AdversaryContext

Emission = tuple[int, int, "Message | bytes"]
"""``(byzantine_src, target or ALL, message or raw bytes)``."""


class Strategy:
    """Base class: the Byzantine nodes stay silent.

    A subclass overrides :meth:`start` and :meth:`receive`; each returns the emissions
    ``(byzantine_src, target or ALL, message or raw bytes)`` to send, ``byzantine_src`` one
    of ``ctx.byzantine_ids`` (any other sender is refused). Randomness comes from
    ``self.ctx.rng`` (or ``self.ctx.np_rng()``), so that a run is a function of its seed.
    """

    name = "silent"
    ctx: AdversaryContext

    def setup(self, ctx: AdversaryContext) -> None:
        """Receive the adversary context before the run starts (subclasses call super)."""
        self.ctx = ctx

    def start(self, now: float) -> list[Emission]:
        """The run starts at time ``now``: what the Byzantine nodes send first."""
        return []

    def receive(self, byz: int, sender: int, message: Message, now: float) -> list[Emission]:
        """A message reached Byzantine node ``byz``; return what the adversary sends."""
        return []


class Silent(Strategy):
    """Byzantine nodes never send anything (indistinguishable from very slow honest ones)."""

    name = "silent"


class CoreStrategy(Strategy):
    """Byzantine nodes that run ``cores`` honest cores each and route their messages.

    Subclasses override :meth:`inputs` (the cores' inputs) and :meth:`route` (what actually
    goes out for one message a core wants to send). Self-addressed messages are handled
    locally, by the core that sent them.
    """

    cores = 1

    def setup(self, ctx: AdversaryContext) -> None:
        super().setup(ctx)
        self.core: dict[int, list[Protocol]] = {}
        for b in ctx.byzantine_ids:
            self.core[b] = [ctx.factory(b, x) for x in self.inputs(b)]

    def inputs(self, byz: int) -> list[Any]:
        return [self.ctx.inputs.get(byz)]

    def route(self, byz: int, core: int, target: int, msg: Message) -> Iterable[Emission]:
        """Default: send as an honest node would."""
        return [(byz, target, msg)]

    def _run_core(self, byz: int, c: int, step: Any, now: float) -> list[Emission]:
        """Apply core ``c``'s step at ``byz``: targets expand as everywhere
        (:func:`netsim.dispatch.destinations`), the core's copy to itself is handled by the
        core at once (depth first), the rest goes through :meth:`route` with its original
        target and each emission is expanded the same way (the simulator encodes and counts
        it). A core's outputs and faults are the adversary's business: not recorded."""
        out: list[Emission] = []
        n = self.ctx.n
        pending = [step]
        core = self.core[byz][c]
        while pending:
            st = pending.pop()
            for target, msg in st.messages:
                dsts = destinations(target, byz, n)
                if byz in dsts:
                    pending.append(core.handle(byz, msg, now))
                if target != byz:
                    for em in self.route(byz, c, target, msg):
                        out += [(em[0], d, em[2]) for d in destinations(em[1], byz, n)
                                if d != byz]
        return out

    def start(self, now: float) -> list[Emission]:
        out: list[Emission] = []
        for b in self.ctx.byzantine_ids:
            for c, core in enumerate(self.core[b]):
                out += self._run_core(b, c, core.start(now), now)
        out += self.extra_start(now)
        return out

    def receive(self, byz: int, sender: int, message: Message, now: float) -> list[Emission]:
        out: list[Emission] = []
        for c, core in enumerate(self.core[byz]):
            out += self._run_core(byz, c, core.handle(sender, message, now), now)
        out += self.extra_receive(byz, sender, message, now)
        return out

    def extra_start(self, now: float) -> list[Emission]:
        return []

    def extra_receive(self, byz: int, sender: int, message: Message, now: float) -> list[Emission]:
        return []


class Honest(CoreStrategy):
    """Byzantine ids that behave honestly (a control: faults must be zero)."""

    name = "honest"


class Crash(CoreStrategy):
    """Honest until a crash after ``after`` outgoing messages (default: random in [0, 3n]),
    then silent forever. A crash in the middle of a broadcast reaches only some nodes."""

    name = "crash"

    def __init__(self, after: int | None = None) -> None:
        self.after = after

    def setup(self, ctx: AdversaryContext) -> None:
        super().setup(ctx)
        self.left = {
            b: (self.after if self.after is not None else ctx.rng.randrange(3 * ctx.n + 1))
            for b in ctx.byzantine_ids
        }

    def route(self, byz, core, target, msg):  # type: ignore[override]
        sends = self.ctx.n - 1 if target == ALL else 1
        if self.left[byz] <= 0:
            return []
        if sends > self.left[byz]:  # crash in the middle of a send to all
            dsts = sorted(d for d in range(self.ctx.n) if d != byz)
            chosen = sorted(self.ctx.rng.sample(dsts, self.left[byz]))
            self.left[byz] = 0
            return [(byz, d, msg) for d in chosen]
        self.left[byz] -= sends
        return [(byz, target, msg)]


class Selective(CoreStrategy):
    """Honest core whose messages reach only a fixed subset of ``reach`` nodes (default:
    a random half); e.g. an origin that sends its VALUE to only some nodes."""

    name = "selective"

    def __init__(self, reach: int | None = None) -> None:
        self.reach = reach

    def setup(self, ctx: AdversaryContext) -> None:
        super().setup(ctx)
        self.subset: dict[int, frozenset[int]] = {}
        for b in ctx.byzantine_ids:
            others = [d for d in range(ctx.n) if d != b]
            k = self.reach if self.reach is not None else len(others) // 2
            self.subset[b] = frozenset(ctx.rng.sample(others, min(k, len(others))))

    def route(self, byz, core, target, msg):  # type: ignore[override]
        dsts = self.subset[byz] if target == ALL else self.subset[byz] & {target}
        return [(byz, d, msg) for d in sorted(dsts)]


class Equivocate(CoreStrategy):
    """Two honest cores with different inputs: core 0 talks to ``split`` of the other nodes
    and core 1 to the rest (default: a split of random size and membership). A Byzantine
    origin thus sends different VALUEs (and consistent-looking ECHOs/READYs) to different
    nodes."""

    name = "equivocate"
    cores = 2

    def __init__(self, split: int | None = None) -> None:
        self.split = split

    def inputs(self, byz: int) -> list[Any]:
        return [self.ctx.inputs.get(byz), self.ctx.alt_input(byz)]

    def setup(self, ctx: AdversaryContext) -> None:
        super().setup(ctx)
        self.side: dict[int, dict[int, int]] = {}
        for b in ctx.byzantine_ids:
            others = [d for d in range(ctx.n) if d != b]
            ctx.rng.shuffle(others)
            k = self.split if self.split is not None else ctx.rng.randrange(1, len(others))
            self.side[b] = {d: (0 if i < k else 1) for i, d in enumerate(others)}

    def route(self, byz, core, target, msg):  # type: ignore[override]
        side = self.side[byz]
        if target == ALL:
            return [(byz, d, msg) for d in sorted(side) if side[d] == core]
        return [(byz, target, msg)] if side.get(target) == core else []


class Twins(CoreStrategy):
    """Two honest cores with different inputs under one id, both talking to everyone
    (Bano et al., "Twins"): receivers see two VALUEs, two ECHOs, two READYs, racing."""

    name = "twins"
    cores = 2

    def inputs(self, byz: int) -> list[Any]:
        return [self.ctx.inputs.get(byz), self.ctx.alt_input(byz)]


class _Budgeted(CoreStrategy):
    """A core strategy with a budget of extra hostile messages per Byzantine node."""

    def __init__(self, budget: int | None = None) -> None:
        self.budget = budget

    def setup(self, ctx: AdversaryContext) -> None:
        super().setup(ctx)
        b = self.budget if self.budget is not None else 20 * ctx.n
        self.left = {z: b for z in ctx.byzantine_ids}

    def spend(self, byz: int, k: int = 1) -> bool:
        if self.left[byz] < k:
            return False
        self.left[byz] -= k
        return True


class Replay(_Budgeted):
    """Honest core, plus: every message received is replayed to everyone under the
    Byzantine id (someone else's ECHO, READY, VALUE or REPORT as its own), and its own
    messages are sent twice (duplicates)."""

    name = "replay"

    def route(self, byz, core, target, msg):  # type: ignore[override]
        if self.spend(byz):
            return [(byz, target, msg), (byz, target, msg)]
        return [(byz, target, msg)]

    def extra_receive(self, byz, sender, message, now):  # type: ignore[override]
        if sender != byz and self.spend(byz):
            return [(byz, d, message) for d in range(self.ctx.n) if d != byz]
        return []


class Flood(_Budgeted):
    """Honest core, plus copies of its messages for far-future rounds (round + 10^k and
    random rounds): a node that buffered them would grow without bound."""

    name = "flood"

    def route(self, byz, core, target, msg):  # type: ignore[override]
        out: list[Emission] = [(byz, target, msg)]
        rng = self.ctx.rng
        rnd = msg.instance[1]  # type: ignore[attr-defined]  (a Report's too)
        for jump in (1, 3, 10, 10**3, 10**6, rng.randrange(2**32 - 1)):
            if self.spend(byz) and rnd + jump < 2**32:
                out.append((byz, target, with_round(msg, rnd + jump)))
        return out


class Forge(_Budgeted):
    """Honest core, plus forged and duplicated ECHO/READY: for each instance it sees, ECHOs
    and READYs with random digests, a second conflicting ECHO and READY, premature READYs,
    and VALUEs for instances whose origin it is not."""

    name = "forge"

    def extra_receive(self, byz, sender, message, now):  # type: ignore[override]
        inst = getattr(message, "instance", None)
        if inst is None or not self.spend(byz, 3):
            return []
        rng = self.ctx.rng
        fake = rng.getrandbits(8 * DIGEST_SIZE).to_bytes(DIGEST_SIZE, "little")
        out: list[Emission] = [
            (byz, ALL, Echo(inst, fake)),
            (byz, ALL, Ready(inst, fake)),
        ]
        if isinstance(message, Value):
            out.append((byz, ALL, Value(inst, message.vector + 1.0)))
        if isinstance(message, Echo | Ready):
            out.append((byz, sender, type(message)(inst, message.digest)))
        return out


class BadReply(CoreStrategy):
    """Honest core, except that every FETCH is answered with a wrong vector (same shape)."""

    name = "bad-reply"

    def route(self, byz, core, target, msg):  # type: ignore[override]
        if isinstance(msg, Reply):
            return [(byz, target, Reply(msg.instance, msg.vector + 1.0))]
        return [(byz, target, msg)]


class Garbage(Strategy):
    """Malformed frames: random bytes, valid headers with wrong lengths, unknown kinds and
    dtypes, truncated and bit-flipped copies of messages it receives. Budgeted."""

    name = "garbage"

    def __init__(self, budget: int | None = None) -> None:
        self.budget = budget

    def setup(self, ctx: AdversaryContext) -> None:
        super().setup(ctx)
        b = self.budget if self.budget is not None else 10 * ctx.n
        self.left = {z: b for z in ctx.byzantine_ids}

    def _junk(self, seen: Message | None) -> bytes:
        rng = self.ctx.rng
        choice = rng.randrange(6)
        if choice == 0:
            return rng.randbytes(rng.randrange(64))
        if choice == 1:  # valid header, unknown kind
            return b"JG\x01" + bytes([rng.randrange(8, 256)]) + rng.randbytes(16)
        if choice == 2:  # a vector message whose count lies about its length
            return b"JG\x01\x01" + struct.pack("<IIHBI", 0, 0, 0, 1, 2**31) + rng.randbytes(8)
        if choice == 3:  # bad dtype code
            return b"JG\x01\x01" + struct.pack("<IIHBI", 0, 0, 0, 9, 1) + rng.randbytes(8)
        base = encode(seen) if seen is not None else b"JG\x01\x02" + rng.randbytes(42)
        if choice == 4:  # truncated copy
            return base[: rng.randrange(len(base))]
        junk = bytearray(base)  # bit flips in the header or the fixed fields
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(min(len(junk), 16))
            junk[i] ^= 1 << rng.randrange(8)
        return bytes(junk)

    def _burst(self, byz: int, seen: Message | None) -> list[Emission]:
        out: list[Emission] = []
        for _ in range(2):
            if self.left[byz] <= 0:
                break
            self.left[byz] -= 1
            dst = self.ctx.rng.randrange(self.ctx.n)
            if dst != byz:
                out.append((byz, dst, self._junk(seen)))
        return out

    def start(self, now: float) -> list[Emission]:
        out: list[Emission] = []
        for b in self.ctx.byzantine_ids:
            out += self._burst(b, None)
        return out

    def receive(self, byz, sender, message, now):  # type: ignore[override]
        return self._burst(byz, message)


class Mixed(Strategy):
    """Different strategies for different Byzantine ids: ``Mixed({0: Equivocate(), 3:
    BadReply()})``; ids not named stay silent."""

    name = "mixed"

    def __init__(self, by_node: Mapping[int, Strategy]) -> None:
        self.by_node = dict(by_node)

    def setup(self, ctx: AdversaryContext) -> None:
        super().setup(ctx)
        for b, strat in sorted(self.by_node.items()):
            if b not in ctx.byzantine_ids:
                raise ValueError(f"Mixed names node {b}, which is not Byzantine")
            strat.setup(ctx.only((b,)))

    def start(self, now: float) -> list[Emission]:
        out: list[Emission] = []
        for _b, strat in sorted(self.by_node.items()):
            out += strat.start(now)
        return out

    def receive(self, byz, sender, message, now):  # type: ignore[override]
        strat = self.by_node.get(byz)
        return strat.receive(byz, sender, message, now) if strat is not None else []


StrategyFactory = Callable[..., Strategy]
"""A strategy class, or any ``factory(**params) -> Strategy``."""

STRATEGIES: dict[str, StrategyFactory] = {
    s.name: s
    for s in (
        Silent, Honest, Crash, Selective, Equivocate, Twins, Replay, Flood, Forge, BadReply,
        Garbage,
    )
}
"""Strategies constructible by name (``mixed`` takes a mapping, so it is API-only); extend
it with :func:`register_strategy`."""

BUILTIN_STRATEGIES: frozenset[str] = frozenset(STRATEGIES)
"""The names registered by Jungle itself (the others came from :func:`register_strategy`)."""


def register_strategy(name: str, factory: StrategyFactory, *, replace: bool = False
                      ) -> StrategyFactory:
    """Register a protocol-level strategy: ``factory(**params)`` (a :class:`Strategy`
    subclass, or a function) builds it for ``make_strategy(name, **params)``, for
    ``agreement.run(strategy=name)`` and for ``--strategy name`` on the command lines (with
    ``--plugin``, :mod:`netsim.plugins`). Returns ``factory`` (usable as a decorator through
    ``functools.partial``). A taken name is a ``ValueError`` unless ``replace``."""
    return register(STRATEGIES, name, factory, what="Byzantine strategy", replace=replace)


def strategy_names() -> list[str]:
    """The registered strategy names, sorted (built-ins and registered ones)."""
    return sorted(STRATEGIES)


def make_strategy(name: str, **params: Any) -> Strategy:
    """Build a strategy by name; raises ``ValueError`` listing the names for an unknown one."""
    return build(STRATEGIES, name, params, what="Byzantine strategy", base=Strategy,
                 base_name="netsim.adversary.Strategy")
